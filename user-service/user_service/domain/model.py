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
    # The admin who granted it (an admin's grant); None for the system's own changes.
    actor_user_id: str | None = None

    def is_same_request(self, user_id: str, amount: int, account: Account, actor_user_id: str | None = None) -> bool:
        """A reference names one change: reusing it for another user, amount, account or actor is a caller bug,
        not a retry."""
        return (self.user_id == user_id and self.amount == amount and self.account == account
                and self.actor_user_id == actor_user_id)


@dataclass(frozen=True)
class BalanceChange:
    """The answer to a debit or credit: the entry for the reference and whether this call applied it."""

    entry: LedgerEntry
    applied: bool


@dataclass(frozen=True)
class AdminAction:
    """One entry of the admin audit trail (trcontracts.users.AdminAction)."""

    action_id: str
    admin_id: str
    action: str
    target_type: str
    target_id: str
    request: dict
    before: dict | None
    after: dict | None
    outcome: str
    error_code: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class NotificationRecord:
    notification_id: str
    kind: str
    data: dict
    occurred_at: datetime
    delivered_at: datetime
