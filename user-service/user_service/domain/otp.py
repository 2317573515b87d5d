"""One-time codes: 6 digits, bound to a user and a purpose, single use, short-lived, locked after a few wrong
tries, sends capped per hour, and stored only as an HMAC. The code and purpose formats are trcontracts.users'."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from trcontracts.users import OTP_CODE_DIGITS

from .errors import OtpAlreadyUsed, OtpExpired, OtpInvalid, OtpLocked, OtpSendLimit

SEND_WINDOW = timedelta(hours=1)
# What checking a code can answer besides success: none sent, already used, wrong, locked, expired.
REFUSALS = (OtpInvalid, OtpExpired, OtpLocked)


def generate_code() -> str:
    return f"{secrets.randbelow(10**OTP_CODE_DIGITS):0{OTP_CODE_DIGITS}d}"


def hash_code(secret: str, user_id: str, purpose: str, code: str) -> str:
    """The stored form of a code. User and purpose are part of the MAC, so a stored hash only ever matches the
    code sent to that user for that purpose."""
    message = f"{user_id}\x1f{purpose}\x1f{code}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def message_body(code: str, purpose: str, ttl_seconds: int) -> str:
    if ttl_seconds % 60 == 0:
        minutes = ttl_seconds // 60
        lifetime = f"{minutes} minute{'s' if minutes != 1 else ''}"
    else:
        lifetime = f"{ttl_seconds} second{'s' if ttl_seconds != 1 else ''}"
    return f"TicketRemaster code {code} ({purpose}). It expires in {lifetime}."


@dataclass(frozen=True)
class OtpChallenge:
    """A code that was sent. `code_hash` is None when the external provider holds the code (OTP_PROVIDER=smu)."""

    otp_id: str
    user_id: str
    purpose: str
    code_hash: str | None
    expires_at: datetime
    attempts: int
    used_at: datetime | None
    created_at: datetime

    def ensure_usable(self, now: datetime, max_attempts: int) -> None:
        """Refuse a used, locked or expired code before looking at what the caller typed. A locked code stays
        locked even for the right code, or the lock would only slow guessing down."""
        if self.used_at is not None:
            raise OtpAlreadyUsed()
        if self.attempts >= max_attempts:
            raise OtpLocked()
        if now >= self.expires_at:
            raise OtpExpired()

    def matches_hash(self, candidate_hash: str) -> bool:
        return self.code_hash is not None and hmac.compare_digest(self.code_hash, candidate_hash)

    def tries_left_after_failure(self, max_attempts: int) -> int:
        return max(0, max_attempts - (self.attempts + 1))


def wrong_code(challenge: OtpChallenge, max_attempts: int) -> OtpInvalid:
    left = challenge.tries_left_after_failure(max_attempts)
    return OtpInvalid(f"wrong code; {left} {'try' if left == 1 else 'tries'} left")


def ensure_send_allowed(sent_in_window: int, oldest_in_window: datetime | None, now: datetime, cap: int) -> None:
    """At most `cap` codes per user in any hour."""
    if sent_in_window >= cap:
        retry_after = None
        if oldest_in_window is not None:
            retry_after = max(1, int((oldest_in_window + SEND_WINDOW - now).total_seconds()) + 1)
        raise OtpSendLimit(retry_after_seconds=retry_after)
