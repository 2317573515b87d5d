from datetime import datetime, timedelta, timezone

import pytest

from trcontracts import users
from user_service.domain import otp
from user_service.domain.errors import OtpExpired, OtpInvalid, OtpLocked, OtpSendLimit
from user_service.domain.otp import OtpChallenge

SECRET = "s" * 32
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def _challenge(code="123456", purpose="order:1", attempts=0, used_at=None, expires_in=300):
    return OtpChallenge("otp-1", "user-1", purpose, otp.hash_code(SECRET, "user-1", purpose, code),
                        NOW + timedelta(seconds=expires_in), attempts, used_at, NOW)


def test_codes_are_six_digits_and_vary():
    codes = {otp.generate_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150


def test_the_stored_hash_does_not_contain_the_code_and_is_keyed():
    stored = otp.hash_code(SECRET, "user-1", "order:1", "123456")
    assert "123456" not in stored
    assert stored != otp.hash_code("t" * 32, "user-1", "order:1", "123456")


def test_a_hash_matches_only_the_same_code_user_and_purpose():
    challenge = _challenge()
    assert challenge.matches_hash(otp.hash_code(SECRET, "user-1", "order:1", "123456"))
    assert not challenge.matches_hash(otp.hash_code(SECRET, "user-1", "order:1", "123457"))
    assert not challenge.matches_hash(otp.hash_code(SECRET, "user-1", "order:2", "123456"))
    assert not challenge.matches_hash(otp.hash_code(SECRET, "user-2", "order:1", "123456"))


def test_a_code_held_by_the_provider_never_matches_a_local_hash():
    challenge = OtpChallenge("o", "u", "order:1", None, NOW, 0, None, NOW)
    assert not challenge.matches_hash(otp.hash_code(SECRET, "u", "order:1", "123456"))


def test_a_fresh_code_is_usable_until_it_expires():
    challenge = _challenge(expires_in=300)
    challenge.ensure_usable(NOW + timedelta(seconds=299), max_attempts=5)
    with pytest.raises(OtpExpired):
        challenge.ensure_usable(NOW + timedelta(seconds=300), max_attempts=5)


def test_a_used_code_is_refused():
    with pytest.raises(OtpInvalid):
        _challenge(used_at=NOW).ensure_usable(NOW, max_attempts=5)


def test_a_code_locks_after_the_maximum_number_of_wrong_tries():
    _challenge(attempts=4).ensure_usable(NOW, max_attempts=5)
    with pytest.raises(OtpLocked):
        _challenge(attempts=5).ensure_usable(NOW, max_attempts=5)


def test_the_wrong_code_error_counts_down_the_tries_left():
    assert "4 tries left" in otp.wrong_code(_challenge(attempts=0), 5).message
    assert "1 try left" in otp.wrong_code(_challenge(attempts=3), 5).message
    assert "0 tries left" in otp.wrong_code(_challenge(attempts=4), 5).message


def test_sends_are_capped_per_hour_with_a_retry_after():
    otp.ensure_send_allowed(9, NOW - timedelta(minutes=50), NOW, cap=10)
    with pytest.raises(OtpSendLimit) as raised:
        otp.ensure_send_allowed(10, NOW - timedelta(minutes=50), NOW, cap=10)
    assert 590 <= raised.value.retry_after <= 601


def test_the_sms_body_carries_the_code_the_purpose_and_the_lifetime():
    assert otp.message_body("042137", "order:abc", 300) == \
        "TicketRemaster code 042137 (order:abc). It expires in 5 minutes."
    assert otp.message_body("042137", "order:abc", 1).endswith("It expires in 1 second.")


@pytest.mark.parametrize("purpose", ["order:6f1c2a7e-3b8d-4c55-9e0a-5d7b9c1e2f30", "transfer:abc", "login:x:y"])
def test_order_and_transfer_purposes_are_well_formed(purpose):
    assert users.OTP_PURPOSE_PATTERN.fullmatch(purpose)


@pytest.mark.parametrize("purpose", ["", "order", "order:", ":x", "order:a b", "ORDER:x", "order:x\n"])
def test_malformed_purposes_are_refused(purpose):
    assert not users.OTP_PURPOSE_PATTERN.fullmatch(purpose)
