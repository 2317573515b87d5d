"""Users, their credentials and the credit ledger. Plain data and rules: no framework imports."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

ROLES = ("fan", "scanner", "admin")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
PHONE_PATTERN = re.compile(r"^\+[1-9]\d{7,14}$")
# Debits and credits are bounded so that no request can overflow a bigint balance.
MAX_AMOUNT = 10**12


def normalize_email(email: str) -> str:
    """Emails are compared and stored lower-cased, so Fan@X.com and fan@x.com are one account."""
    return email.strip().lower()


def password_problem(password: str, email: str) -> str | None:
    """Why a password is unacceptable, or None when it is fine."""
    if len(password) < PASSWORD_MIN:
        return f"password must be at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"password must be at most {PASSWORD_MAX} characters"
    if normalize_email(password) == normalize_email(email):
        return "password must not be the email address"
    return None


def phone_problem(phone: str) -> str | None:
    if not PHONE_PATTERN.fullmatch(phone):
        return "phone must be in E.164 format, e.g. +6591234567"
    return None


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    password_hash: str
    phone: str
    role: str
    credit_balance: int
    is_flagged: bool
    created_at: datetime

    def to_dict(self) -> dict:
        return {"user_id": self.user_id, "email": self.email, "phone": self.phone, "role": self.role,
                "credit_balance": self.credit_balance, "is_flagged": self.is_flagged,
                "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class LedgerEntry:
    """One balance change. `amount` is signed: debits are negative."""

    entry_id: str
    user_id: str
    amount: int
    balance_after: int | None
    reason: str
    reference: str
    created_at: datetime

    def is_same_request(self, user_id: str, amount: int) -> bool:
        """A reference names one change: reusing it for another user or amount is a caller bug, not a retry."""
        return self.user_id == user_id and self.amount == amount

    def to_dict(self) -> dict:
        return {"entry_id": self.entry_id, "user_id": self.user_id, "amount": self.amount,
                "balance_after": self.balance_after, "reason": self.reason, "reference": self.reference,
                "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class BalanceChange:
    """The answer to a debit or credit: the entry for the reference and whether this call applied it."""

    entry: LedgerEntry
    applied: bool

    def to_dict(self) -> dict:
        return {"entry_id": self.entry.entry_id, "user_id": self.entry.user_id, "amount": self.entry.amount,
                "balance": self.entry.balance_after, "reference": self.entry.reference, "applied": self.applied}
