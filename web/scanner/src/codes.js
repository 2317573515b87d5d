// The offline check of a gate code before anything is sent: a JWS compact string with the header
// {"alg": "EdDSA", "kid", "typ": "TRQR"} whose Ed25519 signature holds under a key of GET /verify/keys
// (orchestrator-service/orchestrator_service/adapters/qr.py signs them). Age, seat and hall are the server's to
// judge: a code that passes here is still only admitted by POST /verify.
import { compactVerify, decodeProtectedHeader, importJWK } from "jose";
import { get, NetworkError } from "./api.js";

export const TYP = "TRQR";
export const ALG = "EdDSA";
const MAX_CODE_LENGTH = 2048;
const JWKS_KEY = "trScanner.jwks";
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

// The published keys, kept in localStorage so the check works with no network; fetched again when a code
// names a key id we do not know (a rotation), if the network allows.
export class KeyRing {
  constructor(storage = localStorage) {
    this.storage = storage;
    this.imported = new Map();
    this.jwks = null;
    try {
      this.jwks = JSON.parse(storage.getItem(JWKS_KEY));
    } catch {
      this.jwks = null;
    }
  }

  get known() {
    return Boolean(this.jwks && Array.isArray(this.jwks.keys));
  }

  // True when the keys were fetched; false when the network or the server failed (the cached keys stay).
  async refresh() {
    try {
      const doc = await get("/verify/keys");
      if (!doc || !Array.isArray(doc.keys)) return false;
      this.jwks = { keys: doc.keys };
      this.imported.clear();
      this.storage.setItem(JWKS_KEY, JSON.stringify(this.jwks));
      return true;
    } catch (err) {
      if (err instanceof NetworkError) return false;
      return false;
    }
  }

  jwk(kid) {
    if (!this.known) return null;
    return this.jwks.keys.find((k) => k && k.kid === kid && k.kty === "OKP" && k.crv === "Ed25519") || null;
  }

  async key(kid) {
    if (!this.imported.has(kid)) {
      const jwk = this.jwk(kid);
      if (!jwk) return null;
      this.imported.set(kid, await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, ALG));
    }
    return this.imported.get(kid);
  }
}

function claimsAreWellFormed(payload) {
  let claims;
  try {
    claims = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    return false;
  }
  return Boolean(claims) && typeof claims === "object"
    && typeof claims.sid === "string" && typeof claims.sub === "string" && typeof claims.jti === "string"
    && Number.isInteger(claims.ver) && Number.isInteger(claims.iat);
}

// {ok: true} when the code is ours and intact; {ok: false, reason} when it is forged or malformed;
// {ok: null, reason} when it cannot be judged here (no keys were ever fetched): the server decides.
export async function checkLocally(code, ring) {
  if (code.length > MAX_CODE_LENGTH || !COMPACT.test(code)) return { ok: false, reason: "not a ticket code" };
  let header;
  try {
    header = decodeProtectedHeader(code);
  } catch {
    return { ok: false, reason: "not a ticket code" };
  }
  if (header.typ !== TYP) return { ok: false, reason: "not a ticket code" };
  if (header.alg !== ALG) return { ok: false, reason: "not signed the way ticket codes are" };
  if (typeof header.kid !== "string" || !header.kid) return { ok: false, reason: "the code names no key" };

  if (!ring.jwk(header.kid)) {
    const fetched = await ring.refresh();
    if (!ring.known) return { ok: null, reason: "the signing keys are not loaded yet" };
    if (!ring.jwk(header.kid)) {
      return fetched ? { ok: false, reason: "signed with an unknown key" }
        : { ok: null, reason: "unknown key and the keys could not be fetched" };
    }
  }
  let verified;
  try {
    verified = await compactVerify(code, await ring.key(header.kid), { algorithms: [ALG] });
  } catch {
    return { ok: false, reason: "the signature does not match: forged or altered code" };
  }
  if (!claimsAreWellFormed(verified.payload)) return { ok: false, reason: "the code's contents are malformed" };
  return { ok: true };
}
