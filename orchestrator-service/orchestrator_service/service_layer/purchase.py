"""The purchase saga on the shared saga mechanism (docs/sagas.md): reserve 1-8 seats of one event, pay for them.

Steps, each called with the key `order:{order_id}:{step}` (the order id is also the hold id):
  hold          ReserveSeat of every seat, FOR UPDATE NOWAIT in ascending seat_id, all or nothing
                undo: ReleaseSeat of every seat (a hold also lapses by itself at held_until)
  order         the order PENDING: the saga's record, in orders_db
  timer         the hold timer, published with confirms (per-message TTL = HOLD_TTL_SECONDS)
  debit         the sum of the seats' prices, once (OTP for flagged fans; refused after held_until)
                undo: refund `order:{id}:refund`
                `/pay` begins it: order-service records payment_state CHARGING first
  confirm-seat  ConfirmSeat of every seat, all or nothing, only while the hold is live; a lost seat fails the saga
                (refund, release, FAILED)
The order ends CONFIRMED, FAILED, or EXPIRED (its hold ran out and nobody tried to charge it).
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from trcommon.amqp import PublishFailed
from trcommon.errors import AppError, DependencyUnavailable, Forbidden
from trcommon.saga import Outcome, Saga, SagaState, Step, always
from trcontracts.base import CommonError
from trcontracts.orders import Order, OrderError, OrderStatus

from ..adapters.inventory import SeatView
from ..bootstrap import Container
from ..domain import purchase as rules
from .order_records import find_order, order_view, stale_orders

log = logging.getLogger("orchestrator.purchase")

@dataclass
class Purchase:
    """The context of one purchase saga: its id (the order id), the fan, and what its steps learnt."""

    c: Container
    saga_id: str
    user_id: str
    seat_ids: list[str] | None = None  # ascending: the order in which inventory locks them
    order: Order | None = None         # the saga's record, as order-service last returned it
    seats: list[SeatView] | None = None
    otp_code: str | None = None


def _hold(p: Purchase, key: str) -> None:
    p.seats = p.c.inventory.reserve(p.seat_ids, p.user_id, hold_id=p.saga_id,
                                    hold_seconds=p.c.settings.hold_ttl_seconds)


def _release(p: Purchase, key: str) -> None:
    p.c.inventory.release(p.seat_ids, p.saga_id)


def _create_order(p: Purchase, key: str) -> None:
    first = p.seats[0]
    p.order = p.c.orders.create({"order_id": p.saga_id, "user_id": p.user_id, "seat_id": p.seat_ids[0],
                                 "seat_ids": p.seat_ids, "event_id": first.event_id,
                                 "amount": sum(s.price for s in p.seats), "held_until": first.held_until})


def _publish_timer(p: Purchase, key: str) -> None:
    try:
        p.c.holds.publish({"seat_id": p.seat_ids[0], "seat_ids": p.seat_ids, "hold_id": p.saga_id,
                           "order_id": p.saga_id, "held_until": p.seats[0].held_until},
                          expiration_ms=p.c.settings.hold_ttl_seconds * 1000, message_id=key)
    except PublishFailed as exc:
        raise DependencyUnavailable("the hold timer is unavailable; try again", code="HOLD_TIMER_UNAVAILABLE") from exc


def _debit(p: Purchase, key: str) -> None:
    o = p.order
    p.c.users.debit(o.user_id, o.amount, key, rules.purchase_reason(len(o.seat_ids)),
                    otp_purpose=rules.otp_purpose(p.saga_id),
                    otp_code=p.otp_code, not_after=o.held_until)


def _debited(p: Purchase, key: str) -> bool:
    return bool(p.c.users.ledger(key))


def _refund(p: Purchase, key: str) -> None:
    p.c.users.credit(p.order.user_id, p.order.amount, key, "refund: the seats could not be confirmed")


def _confirm_seat(p: Purchase, key: str) -> None:
    p.c.inventory.confirm(p.order.seat_ids, p.order.user_id, hold_id=p.saga_id)


def _begin_payment(p: Purchase, step: str) -> None:
    p.order = p.c.orders.begin_payment(p.saga_id, p.user_id)     # records CHARGING before the debit
    p.seat_ids = list(p.order.seat_ids)


def _state(p: Purchase, now) -> SagaState:
    return rules.purchase_state(p.order, now, p.c.settings.debit_fence_seconds)


def _finish(p: Purchase, state: SagaState, reason: str | None) -> None:
    if p.order is None:
        return      # the saga ended before its record existed; the hold it may have taken lapses by itself
    to = rules.final_status(p.order, state)
    if state.failed_by_deadline:
        reason = "hold expired before the payment completed"
    p.order = p.c.orders.transition(p.saga_id, to, None if to == OrderStatus.CONFIRMED else reason)
    log.info("order ended", extra={"order_id": p.saga_id, "seat_ids": p.order.seat_ids, "status": str(to)})


def _context(c: Container, o: Order) -> Purchase:
    return Purchase(c, o.order_id, o.user_id, seat_ids=list(o.seat_ids), order=o)


PURCHASE: Saga[Purchase] = Saga(
    name="purchase", record="order",
    steps=(
        # A hold that cannot be taken leaves nothing to undo: its error is the answer.
        Step(rules.HOLD, _hold, compensation=_release, compensation_name="release", lapses=True),
        Step(rules.ORDER, _create_order, fatal=always),
        Step(rules.TIMER, _publish_timer, fatal=always),
        # 402, 428 or a wrong OTP leave the order CHARGING: the fan may pay again until the hold ends.
        Step(rules.DEBIT, _debit, compensation=_refund, compensation_name="refund", waits_for_user=True,
             happened=_debited),
        Step(rules.CONFIRM_SEAT, _confirm_seat, fatal=rules.seat_lost),
    ),
    state_of=_state, finish=_finish, begin=_begin_payment, stale=stale_orders, context=_context,
    wants=lambda o: o.status == OrderStatus.PENDING)

assert tuple(s.name for s in PURCHASE.steps) == rules.STEPS


def reserve(c: Container, user_id: str, role: str, seat_ids: list[str]) -> dict:
    """Hold 1-8 distinct seats of one event (the edge checked the count and that none repeats) under one order."""
    if role != "fan":
        raise Forbidden("only fans can reserve seats", code=CommonError.WRONG_ROLE)
    p = Purchase(c, str(uuid.uuid4()), user_id, seat_ids=sorted(seat_ids))
    run = c.sagas.start(PURCHASE, p)
    if run.failure is not None:
        raise run.failure          # compensated: the hold is released and the order (if any) FAILED
    o = p.order
    return {"order_id": o.order_id, "seat_id": o.seat_id, "seat_ids": o.seat_ids, "event_id": o.event_id,
            "amount": o.amount, "status": o.status, "held_until": p.seats[0].held_until}


def pay(c: Container, user_id: str, order_id: str, otp_code: str | None) -> dict:
    p = Purchase(c, order_id, user_id, otp_code=otp_code)
    run = c.sagas.resume(PURCHASE, p, rules.DEBIT)
    if run.state.outcome is Outcome.COMPLETED:
        return _confirmation(p.order)
    if run.failure is not None:
        raise rules.HoldExpired("the hold expired before the payment completed; the credits were refunded")
    raise DependencyUnavailable("the payment could not be completed now; try again")


def cancel(c: Container, user_id: str, order_id: str) -> dict:
    """The fan calls off a hold they have not begun paying. The request fails the saga: the order is recorded
    CANCELLED first (refused once /pay has recorded CHARGING, so a cancel never overtakes a debit), then the runner
    compensates — every seat released at once — and records the end. Cancelling again runs the same compensation
    (keyed by the hold id: it releases nothing another hold has taken since) and answers the same order."""
    order = _mine(c, user_id, order_id)
    rules.check_cancellable(order)
    try:
        order = call_off(c, order, "cancelled by the fan")
    except AppError as err:
        if err.code != OrderError.INVALID_TRANSITION:
            raise
        # It moved since it was read (a /pay began, or it ended): answer with why, from the order as it is now.
        order = _mine(c, user_id, order_id)
        rules.check_cancellable(order)
        order = call_off(c, order, "cancelled by the fan")
    return order_view(order)


def call_off(c: Container, order: Order, reason: str) -> Order:
    """Record a PENDING order CANCELLED (order-service refuses once a payment has begun: INVALID_TRANSITION), then
    let the runner compensate — every seat of the hold released at once — and record the end. Again on a CANCELLED
    order: the same compensation, keyed, changing nothing."""
    if order.status != OrderStatus.CANCELLED:
        order = c.orders.transition(order.order_id, OrderStatus.CANCELLED, reason)
    p = Purchase(c, order.order_id, order.user_id, seat_ids=list(order.seat_ids), order=order)
    c.sagas.recover(PURCHASE, p)
    log.info("order cancelled", extra={"order_id": order.order_id, "seat_ids": order.seat_ids, "reason": reason})
    return p.order


def _confirmation(order: Order) -> dict:
    return {"order_id": order.order_id, "status": order.status, "seat_id": order.seat_id, "seat_ids": order.seat_ids,
            "amount": order.amount}


def get_order(c: Container, user_id: str, order_id: str) -> dict:
    return order_view(_mine(c, user_id, order_id))


def _mine(c: Container, user_id: str, order_id: str) -> Order:
    return find_order(c, order_id, user_id)


def my_orders(c: Container, user_id: str, limit: int, offset: int) -> list[dict]:
    return [order_view(o) for o in c.orders.list(user_id=user_id, limit=limit, offset=offset)]
