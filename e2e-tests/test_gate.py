"""The gate through the public API: fans fetch rotating signed codes, scanners check them at a hall, and every
scan is one entry_logs row (docs/design.md, The gate)."""
from __future__ import annotations

import base64
import io
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import sqlalchemy as sa
import zxingcpp
from PIL import Image

from e2e_support import E2E_ENV, log_entries, login, register_and_login, seat_row
from orchestrator_service.adapters.qr import QrCodec
from orchestrator_service.settings import OrchestratorSettings
from test_transfers import buyer_with, confirm, offered, owned_seat

DEV = OrchestratorSettings()
TTL = int(E2E_ENV["QR_TTL_SECONDS"])


@pytest.fixture(scope="module")
def scanner(api):
    return login(api, "scanner@demo.test")


def code_of(api, fan, seat_id) -> str:
    r = api.get(f"/tickets/{seat_id}/qr", fan.token)
    assert r.status_code == 200, r.text
    return r.json()["qr"]


def scan(api, token, qr, hall_id):
    return api.post("/verify", token, json={"qr": qr, "hall_id": hall_id})


def scanned(api, token, qr, hall_id) -> dict:
    r = scan(api, token, qr, hall_id)
    assert r.status_code == 200, r.text
    return r.json()


def scans_at(engines, hall_id: str) -> list[dict]:
    with engines["inventory-service"].connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(
            "SELECT * FROM entry_logs WHERE hall_id = :h ORDER BY id"), {"h": hall_id}).mappings()]


def signed(seat_id, holder, ver, iat) -> str:
    """A code signed with the development key, as the running system (E2E) signs them."""
    return QrCodec(DEV.qr_signing_key, DEV.qr_key_id).sign(seat_id, holder, ver, iat)


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_a_paid_ticket_checks_in_once_then_answers_duplicate_with_when_and_where(api, fresh_event, engines,
                                                                                  scanner):
    ev, fan = owned_seat(api, fresh_event)
    seat_id = ev.seat_ids[0]
    first = scanned(api, scanner, code_of(api, fan, seat_id), ev.hall_id)
    assert first["result"] == "CHECKED_IN", first
    assert first["seat"] == {"section": "A", "row": "1", "number": 1}
    assert first["event"]["event_id"] == ev.event_id and first["event"]["name"].startswith("Gig ")
    assert first["hall_id"] == ev.hall_id and first["checked_in_hall_id"] == ev.hall_id
    assert seat_row(engines, seat_id)["status"] == "CHECKED_IN"

    again = scanned(api, scanner, code_of(api, fan, seat_id), ev.hall_id)
    assert again["result"] == "DUPLICATE", again
    assert again["checked_in_at"] == first["checked_in_at"] and again["checked_in_hall_id"] == ev.hall_id
    assert first["checked_in_at"][:16] in again["message"] and "Hall 1" in again["message"]
    assert [(r["result"], r["ticket_version"]) for r in scans_at(engines, ev.hall_id)] == [
        ("CHECKED_IN", 1), ("DUPLICATE", 1)]


def test_a_held_unpaid_seat_answers_unpaid_and_stays_held(api, fresh_event, engines, scanner):
    ev = fresh_event(seats=1)
    fan = register_and_login(api)
    assert api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).status_code == 201
    reply = scanned(api, scanner, code_of(api, fan, ev.seat_ids[0]), ev.hall_id)
    assert reply["result"] == "UNPAID" and reply["seat"]["number"] == 1, reply
    assert seat_row(engines, ev.seat_ids[0])["status"] == "HELD"
    assert [r["result"] for r in scans_at(engines, ev.hall_id)] == ["UNPAID"]


def test_a_correctly_signed_code_for_no_seat_is_not_found(api, fresh_event, engines, scanner):
    ev = fresh_event(seats=1)
    missing = str(uuid.uuid4())
    reply = scanned(api, scanner, signed(missing, str(uuid.uuid4()), 1, int(time.time())), ev.hall_id)
    assert reply["result"] == "NOT_FOUND" and reply["seat"] is None, reply
    assert [(r["seat_id"], r["result"]) for r in scans_at(engines, ev.hall_id)] == [(missing, "NOT_FOUND")]


def test_the_right_code_at_the_other_hall_is_wrong_hall_and_checks_nothing_in(api, fresh_event, engines, scanner):
    ev, fan = owned_seat(api, fresh_event)
    reply = scanned(api, scanner, code_of(api, fan, ev.seat_ids[0]), ev.other_hall_id)
    assert reply["result"] == "WRONG_HALL", reply
    assert seat_row(engines, ev.seat_ids[0])["status"] == "SOLD"
    assert [r["result"] for r in scans_at(engines, ev.other_hall_id)] == ["WRONG_HALL"]


def test_a_code_older_than_its_ttl_is_expired_and_a_fresh_one_still_works(api, fresh_event, engines, scanner):
    ev, fan = owned_seat(api, fresh_event)
    seat = seat_row(engines, ev.seat_ids[0])
    stale = signed(ev.seat_ids[0], fan.user_id, seat["ticket_version"],
                   int(time.time()) - TTL - DEV.qr_clock_skew_seconds - 2)
    assert scanned(api, scanner, stale, ev.hall_id)["result"] == "EXPIRED"
    assert seat_row(engines, ev.seat_ids[0])["status"] == "SOLD"
    fresh = signed(ev.seat_ids[0], fan.user_id, seat["ticket_version"], int(time.time()) - TTL + 5)
    assert scanned(api, scanner, fresh, ev.hall_id)["result"] == "CHECKED_IN"
    assert [r["result"] for r in scans_at(engines, ev.hall_id)] == ["EXPIRED", "CHECKED_IN"]


def test_altered_truncated_unknown_key_and_random_codes_are_invalid(api, fresh_event, engines, scanner):
    ev, fan = owned_seat(api, fresh_event)
    code = code_of(api, fan, ev.seat_ids[0])
    head, body, sig = code.split(".")
    claims = jwt.decode(code, options={"verify_signature": False})
    forged = [
        f"{head}.{b64url({**claims, 'sid': ev.seat_ids[1]})}.{sig}",       # another seat, same signature
        f"{head}.{body}.{sig[:-6]}",                                        # truncated signature
        f"{b64url({'alg': 'EdDSA', 'kid': 'retired-long-ago', 'typ': 'TRQR'})}.{body}.{sig}",
        QrCodec(base64.b64encode(bytes(range(32))).decode(), DEV.qr_key_id).sign(
            ev.seat_ids[0], fan.user_id, claims["ver"], int(time.time())),  # our kid, another key
        base64.b64encode(uuid.uuid4().bytes * 3).decode(),                  # random bytes
        f"{b64url({'alg': 'none', 'typ': 'TRQR'})}.{body}.",
    ]
    for qr in forged:
        reply = scanned(api, scanner, qr, ev.hall_id)
        assert reply["result"] == "INVALID" and reply["seat"] is None, (qr, reply)
    assert seat_row(engines, ev.seat_ids[0])["status"] == "SOLD"
    assert [r["result"] for r in scans_at(engines, ev.hall_id)] == ["INVALID"] * len(forged)
    assert scanned(api, scanner, code, ev.hall_id)["result"] == "CHECKED_IN"


def test_the_sellers_code_dies_with_the_transfer_and_the_buyers_code_works(api, fresh_event, engines, scanner):
    ev, seller = owned_seat(api, fresh_event)
    seat_id = ev.seat_ids[0]
    sellers_code = code_of(api, seller, seat_id)
    buyer = buyer_with(api, 500)
    transfer_id = offered(api, seller, seat_id, buyer, ev.price)
    r = confirm(api, engines, buyer, transfer_id, seller, buyer)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text

    assert api.get(f"/tickets/{seat_id}/qr", seller.token).status_code == 404
    reply = scanned(api, scanner, sellers_code, ev.hall_id)
    assert reply["result"] == "INVALID", reply
    assert seat_row(engines, seat_id)["status"] == "SOLD"
    assert scanned(api, scanner, code_of(api, buyer, seat_id), ev.hall_id)["result"] == "CHECKED_IN"
    assert [r["result"] for r in scans_at(engines, ev.hall_id)] == ["INVALID", "CHECKED_IN"]


def test_only_the_owner_or_holder_gets_a_new_code_each_time_and_others_learn_nothing(api, fresh_event):
    ev, fan = owned_seat(api, fresh_event)
    first, second = code_of(api, fan, ev.seat_ids[0]), code_of(api, fan, ev.seat_ids[0])
    assert first != second
    stranger = register_and_login(api)
    answers = [api.get(f"/tickets/{seat}/qr", stranger.token) for seat in
               (ev.seat_ids[0], ev.seat_ids[1], str(uuid.uuid4()))]
    assert [r.status_code for r in answers] == [404] * 3
    assert len({json.dumps(r.json()) for r in answers}) == 1        # the same answer whatever the seat
    assert api.get("/tickets/not-a-seat/qr", stranger.token).status_code == 400     # no seat id at all
    assert api.get(f"/tickets/{ev.seat_ids[0]}/qr").status_code == 401


def test_the_published_keys_verify_a_fetched_code_with_pyjwt(api, fresh_event):
    ev, fan = owned_seat(api, fresh_event)
    r = api.get(f"/tickets/{ev.seat_ids[0]}/qr", fan.token)
    code, expires_at = r.json()["qr"], r.json()["expires_at"]
    keys = api.get("/verify/keys").json()["keys"]
    header = jwt.get_unverified_header(code)
    assert header == {"alg": "EdDSA", "kid": header["kid"], "typ": "TRQR"}
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    assert {k: jwk[k] for k in ("kty", "crv", "alg", "use")} == {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
                                                                 "use": "sig"}
    claims = jwt.decode(code, jwt.PyJWK(jwk).key, algorithms=["EdDSA"])
    assert claims["sid"] == ev.seat_ids[0] and claims["sub"] == fan.user_id and claims["ver"] >= 1
    assert abs(claims["iat"] - time.time()) < 10 and claims["jti"]
    assert expires_at.startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(claims["iat"] + TTL)))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(code[:-8] + ("A" * 8 if not code.endswith("A" * 8) else "B" * 8), jwt.PyJWK(jwk).key,
                   algorithms=["EdDSA"])


def test_the_png_holds_exactly_the_code(api, fresh_event, scanner):
    ev, fan = owned_seat(api, fresh_event)
    r = api.get(f"/tickets/{ev.seat_ids[0]}/qr", fan.token, headers={"Accept": "image/png"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(r.content)))
    assert len(decoded) == 1 and decoded[0].format == zxingcpp.BarcodeFormat.QRCode
    code = decoded[0].text
    claims = jwt.decode(code, options={"verify_signature": False})
    assert claims["sid"] == ev.seat_ids[0] and claims["sub"] == fan.user_id
    assert scanned(api, scanner, code, ev.hall_id)["result"] == "CHECKED_IN"


def test_ten_scanners_at_once_let_one_in_and_log_ten_scans(api, fresh_event, engines, scanner):
    ev, fan = owned_seat(api, fresh_event)
    code = code_of(api, fan, ev.seat_ids[0])
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: scanned(api, scanner, code, ev.hall_id), range(10)))
    results = sorted(r["result"] for r in replies)
    assert results == ["CHECKED_IN"] + ["DUPLICATE"] * 9, results
    assert len({r["checked_in_at"] for r in replies}) == 1
    with engines["inventory-service"].connect() as conn:
        logged = conn.execute(sa.text("SELECT result FROM entry_logs WHERE seat_id = :s"),
                              {"s": ev.seat_ids[0]}).scalars().all()
    assert sorted(logged) == results


def test_fans_and_anonymous_callers_cannot_scan_and_leave_no_row(api, fresh_event, engines, scanner):
    ev, fan = owned_seat(api, fresh_event)
    code = code_of(api, fan, ev.seat_ids[0])
    assert scan(api, fan.token, code, ev.hall_id).status_code == 403
    assert scan(api, None, code, ev.hall_id).status_code == 401
    assert scans_at(engines, ev.hall_id) == []
    assert seat_row(engines, ev.seat_ids[0])["status"] == "SOLD"
    admin = login(api, "admin@demo.test")
    assert scanned(api, admin, code, ev.hall_id)["result"] == "CHECKED_IN"


def test_bad_scan_input_is_400_and_leaves_no_row(api, fresh_event, engines, scanner):
    ev = fresh_event(seats=1)
    for body in ({"qr": "x", "hall_id": "hall-1"}, {"hall_id": ev.hall_id}, {"qr": "x" * 3000, "hall_id": ev.hall_id},
                 {"qr": "", "hall_id": ev.hall_id}):
        r = api.post("/verify", scanner, json=body)
        assert r.status_code == 400, (body, r.text)
    assert scans_at(engines, ev.hall_id) == []


def calls_of(process: str, rid: str) -> list[str]:
    return [e.get("method", "") + " " + e.get("path", "") for e in log_entries(process)
            if e.get("logger") == "access" and e.get("request_id") == rid]


def test_the_scans_request_id_reaches_every_service_it_asks(api, fresh_event, scanner):
    ev, fan = owned_seat(api, fresh_event)
    rid = uuid.uuid4().hex
    r = api.post("/verify", scanner, json={"qr": code_of(api, fan, ev.seat_ids[0]), "hall_id": ev.hall_id},
                 headers={"X-Request-ID": rid})
    assert r.status_code == 200 and r.json()["result"] == "CHECKED_IN", r.text

    def calls(process):
        return calls_of(process, rid)

    inventory = calls("inventory-service")
    assert any(c.endswith("/VerifyTicket ") for c in inventory) and any(c.endswith("/MarkCheckedIn ")
                                                                        for c in inventory), inventory
    assert "GET /internal/orders" in calls("order-service")
    assert f"GET /events/{ev.event_id}" in calls("event-service")


def test_a_forged_or_expired_code_asks_no_service_but_logs_its_scan(api, fresh_event, scanner):
    ev, fan = owned_seat(api, fresh_event)
    code = code_of(api, fan, ev.seat_ids[0])
    stale = signed(ev.seat_ids[0], fan.user_id, 1, int(time.time()) - TTL - DEV.qr_clock_skew_seconds - 2)
    for qr, expected in ((code[:-10], "INVALID"), (stale, "EXPIRED")):
        rid = uuid.uuid4().hex
        r = api.post("/verify", scanner, json={"qr": qr, "hall_id": ev.hall_id}, headers={"X-Request-ID": rid})
        assert r.status_code == 200 and r.json()["result"] == expected, r.text
        assert [c.rsplit("/", 1)[1] for c in calls_of("inventory-service", rid)] == ["RecordScan "]
        assert calls_of("order-service", rid) == calls_of("event-service", rid) == []
