import base64
import json

import jwt
import pytest

from orchestrator_service.adapters.qr import MAX_CODE_LENGTH, InvalidCode, QrCodec, public_jwk
from orchestrator_service.domain.gate import QrClaims, SeatState, judge_age, judge_ticket
from trcommon.settings import DEV_QR_SIGNING_KEY
from trcontracts.inventory import ScanResult

SEAT, FAN, OTHER, HALL, ELSEWHERE = "seat-1", "fan-1", "fan-2", "hall-1", "hall-2"
OTHER_KEY = base64.b64encode(bytes(range(32))).decode()


def claims(ver=1, holder=FAN, iat=1000):
    return QrClaims(SEAT, holder, ver, iat, "j")


def sold(owner=FAN, ver=1, status="SOLD"):
    return SeatState(status, owner, "", ver)


def result(verdict):
    return verdict.result if verdict else None


def test_a_code_is_fresh_through_its_ttl_and_the_skew_then_expired():
    assert judge_age(claims(iat=1000), 1000 + 30 + 5, ttl=30, skew=5) is None
    assert result(judge_age(claims(iat=1000), 1000 + 30 + 6, ttl=30, skew=5)) == ScanResult.EXPIRED
    assert judge_age(claims(iat=1005), 1000, ttl=30, skew=5) is None
    assert result(judge_age(claims(iat=1006), 1000, ttl=30, skew=5)) == ScanResult.INVALID


@pytest.mark.parametrize("seat, paid, event_hall, expected", [
    (None, False, None, ScanResult.NOT_FOUND),
    (sold(), True, HALL, None),
    (sold(), False, HALL, ScanResult.UNPAID),
    (sold(), True, ELSEWHERE, ScanResult.WRONG_HALL),
    (sold(status="CHECKED_IN"), True, HALL, ScanResult.DUPLICATE),
    (sold(owner=OTHER), True, HALL, ScanResult.INVALID),
    (sold(ver=2), True, HALL, ScanResult.INVALID),
    (SeatState("HELD", "", FAN, 1), False, HALL, ScanResult.UNPAID),
    (SeatState("HELD", "", OTHER, 1), False, HALL, ScanResult.INVALID),
    (SeatState("AVAILABLE", "", "", 1), False, HALL, ScanResult.INVALID),
])
def test_the_seat_its_order_and_its_event_decide_the_scan(seat, paid, event_hall, expected):
    assert result(judge_ticket(claims(), seat, paid, event_hall, HALL)) == expected


def test_a_code_of_a_refunded_ticket_says_so_and_one_of_a_ticket_sold_on_says_it_changed_hands():
    refunded = judge_ticket(claims(ver=1), SeatState("AVAILABLE", "", "", 2), False, HALL, HALL)
    resold = judge_ticket(claims(ver=1), sold(owner=OTHER, ver=3), True, HALL, HALL)
    assert (refunded.result, refunded.message) == (ScanResult.INVALID, "the ticket was refunded; its codes admit nobody")
    assert (resold.result, resold.message) == (ScanResult.INVALID, "code issued before the ticket changed hands")


def test_a_signed_code_reads_back_and_every_alteration_is_refused():
    codec = QrCodec(DEV_QR_SIGNING_KEY, "k1")
    code = codec.sign(SEAT, FAN, 3, 1000)
    assert codec.read(code) == QrClaims(SEAT, FAN, 3, 1000, codec.read(code).jti)
    assert jwt.get_unverified_header(code) == {"alg": "EdDSA", "kid": "k1", "typ": "TRQR"}
    head, body, sig = code.split(".")
    forged_body = base64.urlsafe_b64encode(json.dumps({**jwt.decode(code, options={"verify_signature": False}),
                                                       "sid": "seat-2"}).encode()).decode().rstrip("=")
    for bad in (f"{head}.{forged_body}.{sig}", code[:-4], "x" * 40, "", "a.b.c",
                QrCodec(OTHER_KEY, "k1").sign(SEAT, FAN, 3, 1000),   # right kid, wrong key
                QrCodec(DEV_QR_SIGNING_KEY, "k9").sign(SEAT, FAN, 3, 1000),   # unknown kid
                code + "A" * MAX_CODE_LENGTH):
        with pytest.raises(InvalidCode):
            codec.read(bad)


def test_a_retired_key_in_the_public_keys_still_verifies_and_is_published():
    old = QrCodec(OTHER_KEY, "old")
    jwks = json.dumps({"keys": [public_jwk("old", old._key.public_key())]})
    codec = QrCodec(DEV_QR_SIGNING_KEY, "new", jwks)
    assert codec.read(old.sign(SEAT, FAN, 1, 5)).seat_id == SEAT
    assert {k["kid"] for k in codec.jwks()["keys"]} == {"old", "new"}
    with pytest.raises(ValueError):
        QrCodec(DEV_QR_SIGNING_KEY, "new", '{"keys": [{"kty": "oct", "k": "AA", "kid": "x"}]}')
    with pytest.raises(ValueError):
        QrCodec("not base64!", "new")


def test_production_refuses_the_development_qr_key():
    from orchestrator_service.settings import OrchestratorSettings

    with pytest.raises(ValueError, match="QR_SIGNING_KEY"):
        OrchestratorSettings(environment="production", jwt_secret="p" * 40, internal_service_token="q" * 40)
    OrchestratorSettings(environment="production", jwt_secret="p" * 40, internal_service_token="q" * 40,
                         qr_signing_key=OTHER_KEY)
