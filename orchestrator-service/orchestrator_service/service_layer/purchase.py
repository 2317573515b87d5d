"""The purchase saga: reserve a seat, pay for it, and the recovery pass that finishes interrupted sagas."""
from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime, timezone

from trcommon.amqp import PublishFailed
from trcommon.errors import AppError, DependencyUnavailable, Forbidden, NotFound
from trcontracts.base import CommonError
from trcontracts.orders import Order, OrderError, OrderStatus, PaymentState

from ..bootstrap import Container
from ..domain import purchase as rules
from ..domain.purchase import Next

log = logging.getLogger("orchestrator.purchase")


def _failpoint(c: Container, name: str) -> None:
    """Die here, as a SIGKILL would, when a crash test asked for it (FAILPOINTS; never in production)."""
    if name in c.settings.failpoint_set:
        log.error("failpoint reached: exiting", extra={"failpoint": name})
        os._exit(137)


def _order_view(order: Order) -> dict:
    fields = order.model_dump(mode="json")
    return {k: fields[k] for k in ("order_id", "seat_id", "event_id", "amount", "status", "held_until",
                                   "created_at", "updated_at", "failure_reason")}


def reserve(c: Container, user_id: str, role: str, seat_id: str) -> dict:
    if role != "fan":
        raise Forbidden("only fans can reserve seats", code=CommonError.WRONG_ROLE)
    order_id = str(uuid.uuid4())
    seat = c.inventory.reserve(seat_id, user_id, hold_id=order_id, hold_seconds=c.settings.hold_ttl_seconds)
    _failpoint(c, "reserve:after_hold")
    order = None
    try:
        order = c.orders.create({"order_id": order_id, "user_id": user_id, "seat_id": seat_id,
                                 "event_id": seat.event_id, "amount": seat.price, "held_until": seat.held_until})
        _failpoint(c, "reserve:after_order")
        c.holds.publish({"seat_id": seat_id, "hold_id": order_id, "order_id": order_id,
                         "held_until": seat.held_until},
                        expiration_ms=c.settings.hold_ttl_seconds * 1000, message_id=order_id)
    except (AppError, PublishFailed) as exc:
        # A hold without its timer (or without its order) must not stand: undo it now. If this clean-up fails
        # too, the hold still ends at held_until (inventory's sweeper) and the recovery pass expires the order.
        log.warning("reserve compensated", extra={"order_id": order_id, "seat_id": seat_id, "error": repr(exc)})
        _quietly(c.inventory.release, seat_id, order_id)
        if order is not None:
            _quietly(c.orders.transition, order_id, OrderStatus.FAILED, "hold timer unavailable")
        if isinstance(exc, PublishFailed):
            raise DependencyUnavailable("the hold timer is unavailable; try again",
                                        code="HOLD_TIMER_UNAVAILABLE") from exc
        raise
    return {"order_id": order_id, "seat_id": seat_id, "event_id": seat.event_id, "amount": seat.price,
            "status": order.status, "held_until": seat.held_until}


def pay(c: Container, user_id: str, order_id: str, otp_code: str | None) -> dict:
    order = c.orders.begin_payment(order_id, user_id)      # records CHARGING before the debit
    if order.status == OrderStatus.CONFIRMED:
        return _confirmation(order)
    _failpoint(c, "pay:after_begin")
    c.users.debit(user_id, order.amount, rules.debit_reference(order_id), "seat purchase",
                  otp_purpose=rules.otp_purpose(order_id), otp_code=otp_code, not_after=order.held_until)
    _failpoint(c, "pay:after_debit")
    return _confirm_or_compensate(c, order)


def _confirm_or_compensate(c: Container, order: Order) -> dict:
    order_id = order.order_id
    try:
        c.inventory.confirm(order.seat_id, order.user_id, hold_id=order_id)
    except AppError as err:
        if not rules.seat_lost(err):
            raise  # inventory unreachable: the charge stands, the recovery pass (or a retried /pay) finishes
        _compensate(c, order, f"seat could not be confirmed: {err.code}")
        raise rules.HoldExpired("the hold expired before the payment completed; the credits were refunded")
    _failpoint(c, "pay:after_confirm_seat")
    confirmed = c.orders.transition(order_id, OrderStatus.CONFIRMED)
    log.info("order confirmed", extra={"order_id": order_id, "seat_id": order.seat_id})
    return _confirmation(confirmed)


def _compensate(c: Container, order: Order, reason: str) -> None:
    order_id = order.order_id
    c.users.credit(order.user_id, order.amount, rules.refund_reference(order_id), "refund: " + reason)
    c.inventory.release(order.seat_id, order_id)
    c.orders.transition(order_id, OrderStatus.FAILED, reason)
    log.warning("order compensated", extra={"order_id": order_id, "reason": reason})


def _confirmation(order: Order) -> dict:
    return {"order_id": order.order_id, "status": order.status, "seat_id": order.seat_id,
            "amount": order.amount}


def get_order(c: Container, user_id: str, order_id: str) -> dict:
    try:
        uuid.UUID(order_id)
    except ValueError:
        raise NotFound("no such order", code=OrderError.ORDER_NOT_FOUND) from None
    order = c.orders.get(order_id)
    if order.user_id != user_id:
        raise NotFound("no such order", code=OrderError.ORDER_NOT_FOUND)   # never reveal another user's order
    return _order_view(order)


def my_orders(c: Container, user_id: str, limit: int, offset: int) -> list[dict]:
    return [_order_view(o) for o in c.orders.list(user_id=user_id, limit=limit, offset=offset)]


def recover(c: Container, order: Order) -> Next:
    """Drive one interrupted or lapsed order to a terminal state. Safe to run concurrently and repeatedly."""
    debited = bool(c.users.ledger(rules.debit_reference(order.order_id))) \
        if order.payment_state == PaymentState.CHARGING else False
    step = rules.next_step(order, debited, datetime.now(timezone.utc), c.settings.debit_fence_seconds)
    if step is Next.EXPIRE:
        # An order whose payment had started ends FAILED (order-service keeps EXPIRED for orders no charge
        # was ever attempted for); either way nobody was charged. The seat needs nothing from here: a lapsed
        # hold already counts as available, its timer releases the row, and inventory's sweeper backs it up.
        to = OrderStatus.EXPIRED if order.payment_state == PaymentState.NONE else OrderStatus.FAILED
        c.orders.transition(order.order_id, to, "hold expired before the payment completed")
        log.info("order ended", extra={"order_id": order.order_id, "seat_id": order.seat_id, "status": to})
    elif step is Next.CONFIRM:
        try:
            _confirm_or_compensate(c, order)
        except rules.HoldExpired:
            pass  # compensated
    return step


def recovery_pass(c: Container, limit: int = 100) -> int:
    """One pass over stale orders; returns how many were examined."""
    orders = c.orders.stale(c.settings.recovery_grace_seconds, limit)
    for order in orders:
        try:
            recover(c, order)
        except AppError as err:
            log.warning("recovery step failed; will retry", extra={"order_id": order.order_id,
                                                                    "code": err.code})
    return len(orders)


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - best-effort clean-up; the recovery pass is the backstop
        log.warning("clean-up step failed", extra={"step": getattr(fn, "__name__", "?"), "error": repr(exc)})
