"""The gate page (GET /scanner) in a real browser against the running system: Debian's Chromium driven by
Playwright, with a fake camera playing a video of a real ticket code. The page checks each code's signature
itself (a forged one never reaches POST /verify) and shows the server's verdict full-screen.

Screenshots of each result screen are kept in build/e2e-logs/screenshots/."""
from __future__ import annotations

import base64
import io
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from e2e_support import LOG_DIR, register_and_login, seat_row
from orchestrator_service.adapters.qr import QrCodec
from test_gate import DEV, b64url, code_of, scans_at
from test_transfers import owned_seat

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = LOG_DIR / "screenshots"
SCANNER = "scanner@demo.test"
# A phone held upright.
VIEWPORT = {"width": 390, "height": 844}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
FRAME = (640, 480)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def playwright():
    if not Path(CHROMIUM).is_file():
        pytest.fail("Chromium is missing: apt-get install -y chromium (.ci/run installs it)")
    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser(playwright, api, tmp_path_factory):
    """Opens the gate page in a fresh browser profile (nothing remembered), optionally with a camera video."""
    opened = []

    def open_page(camera_video: Path | None = None):
        args = list(CHROMIUM_ARGS)
        if camera_video is not None:
            args.append(f"--use-file-for-fake-video-capture={camera_video}")
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("scanner-profile")), executable_path=CHROMIUM, headless=True, args=args,
            viewport=VIEWPORT)
        opened.append(context)
        context.grant_permissions(["camera"], origin=api.base)
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(api.base + "/scanner")
        return page

    yield open_page
    for context in opened:
        context.close()


def sign_in(page, email: str, password: str) -> None:
    page.fill("#signin-email", email)
    page.fill("#signin-password", password)
    page.click("#signin-submit")


def choose_hall(page, hall_id: str) -> None:
    page.click(f'#hall-list button[data-hall-id="{hall_id}"]')
    expect(page.locator("#view-scan")).to_be_visible()


def type_code(page, code: str) -> None:
    """Types a code as staff do: a tap first closes a verdict still on screen (it would close itself in 2.5 s)."""
    overlay = page.locator("#result")
    if overlay.is_visible():
        overlay.click()
        expect(overlay).to_be_hidden()
    page.fill("#manual-code", code)
    page.click("#manual-submit")


def shown(page, result: str, screenshot: str, scans: int):
    """Waits until the page has shown its `scans`-th result, which must be `result`; returns the overlay."""
    expect(page.locator("#history li")).to_have_count(scans, timeout=15_000)
    overlay = page.locator("#result")
    expect(overlay).to_have_attribute("data-result", result)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if overlay.is_visible():
        page.screenshot(path=str(SCREENSHOTS / f"{screenshot}.png"))
    return overlay


def verify_calls(urls: list[str]) -> list[str]:
    return [u for u in urls if urlsplit(u).path == "/verify"]


def y4m_of(png: bytes, path: Path, frames: int = 5) -> Path:
    """A few frames of a still video (YUV4MPEG2, 4:2:0) of the code centred on white, for the fake camera."""
    code = Image.open(io.BytesIO(png)).convert("L")
    side = min(FRAME) - 40
    code = code.resize((side, side), Image.NEAREST)
    still = Image.new("L", FRAME, 255)
    still.paste(code, ((FRAME[0] - side) // 2, (FRAME[1] - side) // 2))
    y, cb, cr = still.convert("RGB").convert("YCbCr").split()
    half = (FRAME[0] // 2, FRAME[1] // 2)
    planes = y.tobytes() + cb.resize(half, Image.BOX).tobytes() + cr.resize(half, Image.BOX).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{FRAME[0]} H{FRAME[1]} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + planes)
    return path


def test_a_scanner_types_a_valid_code_and_sees_green_checked_in_with_the_seat(api, fresh_event, engines, browser):
    ev, fan = owned_seat(api, fresh_event)
    page = browser()
    sign_in(page, SCANNER, "demo-password")
    choose_hall(page, ev.hall_id)
    type_code(page, code_of(api, fan, ev.seat_ids[0]))

    overlay = shown(page, "CHECKED_IN", "checked-in-typed", 1)
    expect(overlay).to_have_attribute("data-tone", "green")
    expect(page.locator("#result-word")).to_have_text("CHECKED IN")
    expect(page.locator("#result-seat")).to_have_text("Section A · Row 1 · Seat 1")
    expect(page.locator("#result-event")).to_have_text(f"Gig {ev.event_id[:8]}")
    assert seat_row(engines, ev.seat_ids[0])["status"] == "CHECKED_IN"
    assert [r["result"] for r in scans_at(engines, ev.hall_id)] == ["CHECKED_IN"]

    # The same ticket again: red, and the server's message says when and where it went in.
    type_code(page, code_of(api, fan, ev.seat_ids[0]))
    overlay = shown(page, "DUPLICATE", "duplicate", 2)
    expect(overlay).to_have_attribute("data-tone", "red")
    expect(page.locator("#result-message")).to_contain_text("Hall 1")


def test_the_camera_reads_a_real_ticket_code_and_the_page_shows_its_verdict(api, fresh_event, engines, browser,
                                                                            tmp_path):
    ev, fan = owned_seat(api, fresh_event)
    r = api.get(f"/tickets/{ev.seat_ids[0]}/qr", fan.token, headers={"Accept": "image/png"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png", r.text
    page = browser(camera_video=y4m_of(r.content, tmp_path / "ticket.y4m"))
    sign_in(page, SCANNER, "demo-password")
    choose_hall(page, ev.hall_id)

    overlay = shown(page, "CHECKED_IN", "checked-in-camera", 1)
    expect(overlay).to_have_attribute("data-tone", "green")
    expect(page.locator("#result-seat")).to_have_text("Section A · Row 1 · Seat 1")
    assert seat_row(engines, ev.seat_ids[0])["status"] == "CHECKED_IN"
    # The code stays in front of the camera: it is not checked again while it is held there.
    time.sleep(1.5)
    expect(page.locator("#history li")).to_have_count(1)
    assert [r["result"] for r in scans_at(engines, ev.hall_id)] == ["CHECKED_IN"]


def test_forged_codes_are_red_invalid_at_once_without_asking_the_server_even_offline(api, fresh_event, engines,
                                                                                      browser):
    ev, fan = owned_seat(api, fresh_event)
    code = code_of(api, fan, ev.seat_ids[0])
    head, _body, sig = code.split(".")
    claims = jwt.decode(code, options={"verify_signature": False})
    other_key = QrCodec(base64.b64encode(bytes(range(32))).decode(), DEV.qr_key_id)
    forged_key = other_key.sign(ev.seat_ids[0], fan.user_id, claims["ver"], int(time.time()))
    tampered = f"{head}.{b64url({**claims, 'sid': ev.seat_ids[1]})}.{sig}"

    page = browser()
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    sign_in(page, SCANNER, "demo-password")
    choose_hall(page, ev.hall_id)

    type_code(page, forged_key)
    overlay = shown(page, "INVALID", "invalid-forged", 1)
    expect(overlay).to_have_attribute("data-tone", "red")
    expect(overlay).to_have_attribute("data-checked-by", "device")
    # With no network at all the page still knows a forgery (the keys are kept on the device)...
    page.context.set_offline(True)
    type_code(page, tampered)
    shown(page, "INVALID", "invalid-tampered-offline", 2)
    expect(page.locator("#result")).to_have_attribute("data-checked-by", "device")
    assert verify_calls(requests) == []
    assert scans_at(engines, ev.hall_id) == []
    # ...but never admits anyone on its own: a good code without the server is "no connection", not green.
    type_code(page, code)
    overlay = shown(page, "NO_CONNECTION", "no-connection", 3)
    expect(overlay).to_have_attribute("data-tone", "grey")
    page.context.set_offline(False)
    assert seat_row(engines, ev.seat_ids[0])["status"] == "SOLD"

    type_code(page, code)
    shown(page, "CHECKED_IN", "checked-in-after-reconnect", 4)
    assert len(verify_calls(requests)) >= 1
    assert [r["result"] for r in scans_at(engines, ev.hall_id)] == ["CHECKED_IN"]


def test_a_fan_account_cannot_get_past_sign_in(api, browser):
    fan = register_and_login(api)
    page = browser()
    sign_in(page, fan.email, fan.password)
    expect(page.locator("#signin-message")).to_contain_text("only scanner and admin")
    expect(page.locator("#view-signin")).to_be_visible()
    expect(page.locator("#view-hall")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('trScanner.tokens')") is None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "fan-refused.png"))


def test_a_rejected_access_token_is_refreshed_once_and_a_dead_refresh_token_means_sign_in_again(api, browser):
    r = api.post("/auth/login", json={"email": SCANNER, "password": "demo-password"})
    assert r.status_code == 200, r.text
    refresh_token = r.json()["refresh_token"]
    page = browser()
    tokens = {"access_token": "not-a-valid-token", "refresh_token": refresh_token}
    page.evaluate("t => sessionStorage.setItem('trScanner.tokens', JSON.stringify(t))", tokens)
    page.reload()
    expect(page.locator("#view-hall")).to_be_visible()
    stored = page.evaluate("JSON.parse(sessionStorage.getItem('trScanner.tokens'))")
    assert stored["access_token"] != "not-a-valid-token"

    page.evaluate("t => sessionStorage.setItem('trScanner.tokens', JSON.stringify(t))",
                  {"access_token": "not-a-valid-token", "refresh_token": "not-a-refresh-token-either"})
    page.reload()
    expect(page.locator("#view-signin")).to_be_visible()
    expect(page.locator("#signin-message")).to_have_text("Please sign in.")
    assert page.evaluate("sessionStorage.getItem('trScanner.tokens')") is None
