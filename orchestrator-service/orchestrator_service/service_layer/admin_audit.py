"""The admins' audit trail: every admin action is recorded (who, what, on which object, the request, the object before)
in users_db before it is carried out, and finished with its outcome and the object after. An action whose record
cannot be written is not carried out (503). If the outcome cannot be written afterwards, the record stays PENDING:
"carried out or not, unknown" — never missing.

Ids: an action repeated with the same `Idempotency-Key` gets the same action id (and, where it creates an object, the
same object id), so a retried request is recorded once and does its work once."""
from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

from trcommon.errors import AppError

from ..bootstrap import Container

log = logging.getLogger("orchestrator.admin")

# Names the ids derived from an admin's Idempotency-Key.
ADMIN_NAMESPACE = uuid.UUID("5b0f3a9e-6a1c-4c7b-9b55-1d2e4b7a9c01")


def derived_id(admin_id: str, action: str, key: str | None) -> str:
    """The same id for the same admin, action and Idempotency-Key; a fresh one without a key."""
    if key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(ADMIN_NAMESPACE, f"{admin_id}\x1f{action}\x1f{key}"))


def audited(c: Container, admin_id: str, action: str, target_type: str, target_id: str, request: dict,
            act: Callable[[], dict], *, before: dict | None = None, key: str | None = None) -> dict:
    """Record the action, carry it out (`act` returns the object after, JSON-ready), record the outcome."""
    action_id = derived_id(admin_id, f"audit:{action}:{target_id}", key)
    c.users.record_admin_action({"action_id": action_id, "admin_id": admin_id, "action": action,
                                 "target_type": target_type, "target_id": target_id, "request": request,
                                 "before": before})
    try:
        after = act()
    except AppError as err:
        _finish(c, action_id, "FAILED", None, err.code)
        raise
    _finish(c, action_id, "SUCCEEDED", after, None)
    return after


def as_admin_action(c: Container, principal, action: str, target_type: str, target_id: str, request: dict,
                    act: Callable[[], dict]) -> dict:
    """`act` as an audited action when an admin calls a route other roles may call too (an admin's refund, a
    transfer's reversal); anyone else's call is not an admin action (and a route only admins may take refuses it
    inside `act`)."""
    if principal.role != "admin":
        return act()
    return audited(c, principal.user_id, action, target_type, target_id, request, act)


def _finish(c: Container, action_id: str, outcome: str, after: Any, error_code: str | None) -> None:
    try:
        c.users.finish_admin_action(action_id, outcome, after=after, error_code=error_code)
    except AppError as err:
        log.warning("the outcome of an admin action could not be recorded; it stays PENDING",
                    extra={"action_id": action_id, "outcome": outcome, "code": err.code})
