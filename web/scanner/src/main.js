// The gate page (GET /scanner): sign in as a scanner, pick the hall, scan with the camera or type a code.
// Every code is checked offline first (codes.js); only an intact one goes to POST /verify, and only the
// server's CHECKED_IN turns the screen green. All text is set with textContent: nothing from a code, the
// server or the user is ever parsed as HTML.
import { ApiError, get, NetworkError, Session, SignedOut } from "./api.js";
import { Camera } from "./camera.js";
import { checkLocally, KeyRing } from "./codes.js";

const STAFF_ROLES = new Set(["scanner", "admin"]);
const HALL_KEY = "trScanner.hall";
const RESULT_MS = 2500;
// The camera sees the same code many times a second while it is held up: it is checked once, and again only
// after it has been out of sight this long.
const SAME_CODE_MS = 3000;
const VENUE_PAGE = 200;
const MAX_VENUE_PAGES = 25;
const HISTORY_LENGTH = 6;

const WORDS = {
  CHECKED_IN: "CHECKED IN", DUPLICATE: "DUPLICATE", UNPAID: "UNPAID", NOT_FOUND: "NOT FOUND",
  WRONG_HALL: "WRONG HALL", EXPIRED: "EXPIRED", INVALID: "INVALID", NO_CONNECTION: "NO CONNECTION",
  ERROR: "NOT CHECKED",
};
// Green is CHECKED_IN's alone; amber: a real ticket that cannot enter here and now; grey: no answer.
const TONES = { CHECKED_IN: "green", UNPAID: "amber", WRONG_HALL: "amber", EXPIRED: "amber",
  NO_CONNECTION: "grey", ERROR: "grey" };

const $ = (id) => document.getElementById(id);
const session = new Session();
const keys = new KeyRing();
let camera = null;
let hall = null;
let scanSeq = 0;
let resultTimer = null;
const recent = new Map();

function show(view) {
  for (const id of ["view-signin", "view-hall", "view-scan"]) $(id).hidden = id !== view;
  $("sign-out").hidden = view === "view-signin";
  if (view !== "view-scan" && camera) camera.stop();
}

function savedHall() {
  try {
    const h = JSON.parse(localStorage.getItem(HALL_KEY));
    return h && typeof h.hall_id === "string" && typeof h.label === "string" ? h : null;
  } catch {
    return null;
  }
}

// ---- sign-in -------------------------------------------------------------------------------------------------

function showSignIn(message = "") {
  hideResult();
  show("view-signin");
  $("signin-message").textContent = message;
  $("signin-password").value = "";
}

async function onSignIn(event) {
  event.preventDefault();
  const button = $("signin-submit");
  button.disabled = true;
  $("signin-message").textContent = "";
  try {
    await session.signIn($("signin-email").value.trim(), $("signin-password").value);
    await enter();
  } catch (err) {
    session.clear();
    if (err instanceof NetworkError) $("signin-message").textContent = "No connection. Try again.";
    else if (err instanceof ApiError && err.status === 401) $("signin-message").textContent = "Wrong email or password.";
    else $("signin-message").textContent = err.message || "Could not sign in.";
  } finally {
    button.disabled = false;
  }
}

// With tokens in hand: only scanner and admin accounts get past this point.
async function enter() {
  let me;
  try {
    me = await session.call("GET", "/me");
  } catch (err) {
    if (err instanceof NetworkError) return showSignIn("No connection. Try again.");
    session.clear();
    return showSignIn(err instanceof SignedOut ? "Please sign in." : err.message);
  }
  if (!me || !STAFF_ROLES.has(me.role)) {
    session.clear();
    return showSignIn(`This is a ${me && me.role ? me.role : "non-staff"} account: only scanner and admin `
      + "accounts can check tickets at the gate.");
  }
  keys.refresh();
  hall = savedHall();
  if (hall) showScan();
  else showHalls();
}

function signOut() {
  session.clear();
  showSignIn("Signed out.");
}

// ---- hall choice ---------------------------------------------------------------------------------------------

async function allVenues() {
  const venues = [];
  for (let page = 0; page < MAX_VENUE_PAGES; page++) {
    const body = await get(`/venues?limit=${VENUE_PAGE}&offset=${page * VENUE_PAGE}`);
    const batch = body && Array.isArray(body.venues) ? body.venues : [];
    venues.push(...batch);
    if (batch.length < VENUE_PAGE) break;
  }
  return venues;
}

function hallItem(venue, h) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.hallId = h.hall_id;
  const label = `${venue.name} — ${h.name}`;
  button.append(label);
  if (venue.address) {
    const address = document.createElement("span");
    address.className = "address";
    address.textContent = venue.address;
    button.append(address);
  }
  button.addEventListener("click", () => {
    hall = { hall_id: h.hall_id, label };
    localStorage.setItem(HALL_KEY, JSON.stringify(hall));
    showScan();
  });
  li.dataset.search = `${label} ${venue.address || ""}`.toLowerCase();
  li.append(button);
  return li;
}

async function showHalls() {
  show("view-hall");
  const list = $("hall-list");
  list.replaceChildren();
  $("hall-message").textContent = "Loading halls…";
  let venues;
  try {
    venues = await allVenues();
  } catch (err) {
    $("hall-message").textContent = err instanceof NetworkError ? "No connection. Reload to try again."
      : `Could not load the halls: ${err.message}`;
    return;
  }
  for (const venue of venues) {
    for (const h of venue.halls || []) list.append(hallItem(venue, h));
  }
  $("hall-message").textContent = list.children.length ? "" : "No venues yet.";
  filterHalls();
}

function filterHalls() {
  const words = $("hall-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const li of $("hall-list").children) li.hidden = !words.every((w) => li.dataset.search.includes(w));
}

// ---- scanning ------------------------------------------------------------------------------------------------

function showScan() {
  show("view-scan");
  $("hall-name").textContent = hall.label;
  $("manual-code").value = "";
  startCamera();
}

async function startCamera() {
  if (!camera) camera = new Camera($("camera-video"), (code) => onCode(code, true));
  $("camera-start").hidden = true;
  $("camera-message").textContent = "Starting the camera…";
  try {
    await camera.start();
    $("camera-message").textContent = "Hold the ticket's code in front of the camera.";
  } catch (err) {
    camera.stop();
    $("camera-message").textContent = `No camera: ${err.message || err.name}. Type the code below.`;
    $("camera-start").hidden = false;
  }
}

function onManual(event) {
  event.preventDefault();
  const input = $("manual-code");
  onCode(input.value, false);
  input.value = "";
}

function seenRecently(code) {
  const now = Date.now();
  for (const [c, at] of recent) if (now - at > SAME_CODE_MS) recent.delete(c);
  const seen = recent.has(code);
  recent.set(code, now);
  return seen;
}

async function onCode(raw, fromCamera) {
  const code = String(raw).trim();
  if (!code || !hall || (fromCamera && seenRecently(code))) return;
  const seq = ++scanSeq;
  $("scan-status").textContent = "Checking…";
  const local = await checkLocally(code, keys);
  if (seq !== scanSeq) return;
  if (local.ok === false) {
    // Forged or malformed: nobody is asked, nothing is sent.
    return showResult({ result: "INVALID", message: local.reason, seat: null, event: null }, "device");
  }
  let verdict;
  try {
    verdict = await session.call("POST", "/verify", { qr: code, hall_id: hall.hall_id });
  } catch (err) {
    if (seq !== scanSeq) return;
    if (err instanceof SignedOut) return showSignIn("Your session ended. Sign in again.");
    if (err instanceof NetworkError) {
      return showResult({ result: "NO_CONNECTION", message: "No connection. Try again.", seat: null, event: null });
    }
    return showResult({ result: "ERROR", message: `The code was not checked: ${err.message}. Try again.`,
      seat: null, event: null });
  }
  if (seq !== scanSeq) return;
  showResult(verdict, "server");
}

function seatText(seat) {
  return seat ? `Section ${seat.section} · Row ${seat.row} · Seat ${seat.number}` : "";
}

function showResult(verdict, checkedBy = "") {
  const result = String(verdict.result || "ERROR");
  const tone = TONES[result] || "red";
  const overlay = $("result");
  overlay.dataset.result = result;
  overlay.dataset.tone = tone;
  overlay.dataset.checkedBy = checkedBy;
  $("result-word").textContent = WORDS[result] || result.replace(/_/g, " ");
  $("result-seat").textContent = seatText(verdict.seat);
  $("result-event").textContent = verdict.event && verdict.event.name ? verdict.event.name : "";
  $("result-message").textContent = verdict.message || "";
  overlay.hidden = false;
  clearTimeout(resultTimer);
  resultTimer = setTimeout(hideResult, RESULT_MS);
  $("scan-status").textContent = "";
  addHistory(result, tone, verdict);
}

function hideResult() {
  clearTimeout(resultTimer);
  $("result").hidden = true;
}

function addHistory(result, tone, verdict) {
  const li = document.createElement("li");
  li.dataset.result = result;
  li.dataset.tone = tone;
  const word = document.createElement("span");
  word.className = "word";
  word.textContent = WORDS[result] || result;
  const time = new Date().toLocaleTimeString();
  li.append(word, ` ${time} ${seatText(verdict.seat)}`);
  const history = $("history");
  history.prepend(li);
  while (history.children.length > HISTORY_LENGTH) history.lastElementChild.remove();
}

// ---- start ---------------------------------------------------------------------------------------------------

function start() {
  $("signin-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", signOut);
  $("change-hall").addEventListener("click", showHalls);
  $("hall-filter").addEventListener("input", filterHalls);
  $("manual-form").addEventListener("submit", onManual);
  $("camera-start").addEventListener("click", startCamera);
  $("result").addEventListener("click", hideResult);
  if (session.signedIn) enter();
  else showSignIn();
}

start();
