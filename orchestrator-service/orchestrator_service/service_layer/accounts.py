"""What admins do with accounts: find one by e-mail, flag or unflag it (a flagged fan needs an OTP to pay), grant
credits (a ledger row naming the admin and the reason, once per Idempotency-Key), read its ledger. Every change is an
audited admin action."""
from __future__ import annotations

from trcommon.errors import NotFound
from trcontracts import users

from ..bootstrap import Container
from .admin_audit import audited, derived_id

# What admins see of an account (users.User has the password hash's absence, timestamps, ...).
ACCOUNT_FIELDS = {"user_id", "email", "phone", "role", "credit_balance", "pending_credits", "is_flagged", "created_at"}


def _account(user: users.User) -> dict:
    return user.model_dump(mode="json", include=ACCOUNT_FIELDS)


def find(c: Container, email: str) -> dict:
    user = c.users.find_by_email(email)
    if user is None:
        raise NotFound("no account has this e-mail address", code=users.UserError.USER_NOT_FOUND)
    return _account(user)


def get(c: Container, user_id: str) -> dict:
    return _account(c.users.get_user(user_id))


def set_flag(c: Container, admin_id: str, user_id: str, flagged: bool) -> dict:
    before = _account(c.users.get_user(user_id))
    return audited(c, admin_id, "user.flag" if flagged else "user.unflag", "user", user_id, {"flagged": flagged},
                   lambda: _account(c.users.set_flag(user_id, flagged)), before=before)


def grant(c: Container, admin_id: str, user_id: str, amount: int, reason: str, key: str) -> dict:
    """Credits added to the account once per Idempotency-Key (the ledger reference names the admin and the key)."""
    before = _account(c.users.get_user(user_id))
    reference = f"grant:{admin_id}:{derived_id(admin_id, 'user.grant', key)}"

    def act() -> dict:
        change = c.users.grant(user_id, amount, reference, reason, actor_user_id=admin_id)
        return {**_account(c.users.get_user(user_id)), "reference": reference, "applied": change.applied}

    return audited(c, admin_id, "user.grant", "user", user_id, {"amount": amount, "reason": reason}, act,
                   before=before, key=key)


def ledger(c: Container, user_id: str, limit: int, offset: int) -> dict:
    c.users.get_user(user_id)          # 404 for an unknown account rather than an empty list
    return {"entries": [e.model_dump(mode="json") for e in c.users.user_ledger(user_id, limit, offset)]}


def audit_trail(c: Container, **query) -> dict:
    return {"actions": [a.model_dump(mode="json") for a in c.users.admin_actions(**query)]}


def notifications(c: Container, user_id: str, limit: int, offset: int) -> dict:
    return {"notifications": [n.model_dump(mode="json") for n in c.users.notifications(user_id, limit, offset)]}
