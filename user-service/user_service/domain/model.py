"""Users and the credit ledger. Plain data and rules: no framework imports. The input rules (password, phone,
email case, amounts) are the contract's: trcontracts.users."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trcontracts.users import Account

ROLES = ("fan", "scanner", "admin")


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    password_hash: str
    phone: str
    role: str
    credit_balance: int
    pending_credits: int
    is_flagged: bool
    created_at: datetime


@dataclass(frozen=True)
class LedgerEntry:
    """One change of one of the user's two balances (`account`). `amount` is signed: debits are negative."""

    entry_id: str
    user_id: str
    amount: int
    balance_after: int | None
    reason: str
    reference: str
    account: Account
    created_at: datetime

    def is_same_request(self, user_id: str, amount: int, account: Account) -> bool:
        """A reference names one change: reusing it for another user, amount or account is a caller bug, not a
        retry."""
        return self.user_id == user_id and self.amount == amount and self.account == account


@dataclass(frozen=True)
class BalanceChange:
    """The answer to a debit or credit: the entry for the reference and whether this call applied it."""

    entry: LedgerEntry
    applied: bool
