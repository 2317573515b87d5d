"""Rules of the purchase saga, free of any transport: how an order's record reads as a saga state, and which
answers of inventory mean the seat is lost. The steps themselves are in service_layer/purchase.py; the design is
in docs/sagas.md."""
from __future__ import annotations

from datetime import datetime, timedelta

from trcommon.errors import AppError, Conflict, Gone
from trcommon.saga import Outcome, SagaState
from trcontracts.inventory import InventoryError
from trcontracts.orders import Order, OrderError, OrderStatus, PaymentState

# The purchase saga's steps, in order (service_layer/purchase.py binds each to its participant call).
HOLD, ORDER, TIMER, DEBIT, CONFIRM_SEAT = "hold", "order", "timer", "debit", "confirm-seat"
STEPS = (HOLD, ORDER, TIMER, DEBIT, CONFIRM_SEAT)

# Answers of ConfirmSeat that mean the seat can no longer be confirmed for this order.
SEAT_LOST_CODES = frozenset({InventoryError.HOLD_EXPIRED, InventoryError.SEAT_UNAVAILABLE,
                             InventoryError.SEAT_NOT_FOUND})


def purchase_reason(seats: int) -> str:
    """The ledger's reason for an order's one debit."""
    return "seat purchase" if seats == 1 else f"purchase of {seats} seats"


def otp_purpose(order_id: str) -> str:
    return f"order:{order_id}"


class HoldExpired(Gone):
    code = OrderError.HOLD_EXPIRED


class OrderNotCancellable(Conflict):
    code = "ORDER_NOT_CANCELLABLE"


class PaymentInProgress(Conflict):
    code = "PAYMENT_IN_PROGRESS"


def check_cancellable(order: Order) -> None:
    """Only a hold nobody has begun paying can be called off (a CANCELLED one again, changing nothing): once the
    debit may be under way, only the purchase saga ends the order."""
    if order.status == OrderStatus.PENDING and order.payment_state == PaymentState.CHARGING:
        raise PaymentInProgress("the payment of this order has begun; it can no longer be cancelled")
    if order.status not in (OrderStatus.PENDING, OrderStatus.CANCELLED):
        raise OrderNotCancellable(f"this order is {order.status}; only a PENDING order can be cancelled")


def seat_lost(err: AppError) -> bool:
    return err.code in SEAT_LOST_CODES


def purchase_state(order: Order, now: datetime, fence_seconds: float) -> SagaState:
    """The saga state an order records.

    An order exists once the hold and the order steps took effect; its timer is published in the same request
    (a missing timer changes nothing below: the hold lapses at held_until, and inventory's sweeper ends it).
    A PENDING order then waits for the fan's /pay, which records payment_state CHARGING before the debit.
    user-service refuses a debit once held_until has passed, so for a CHARGING order "no debit" is final once
    held_until plus a small fence (for a debit transaction already under way) has passed.
    """
    if order.status == OrderStatus.CONFIRMED:
        return SagaState(done=len(STEPS), outcome=Outcome.COMPLETED)
    if order.status == OrderStatus.CANCELLED:
        # The fan's cancel failed the saga before any charge: what it holds is released (again: the release is
        # keyed by the hold id, so a repeat changes nothing), and the end stays CANCELLED.
        return SagaState(done=STEPS.index(DEBIT), outcome=Outcome.FAILED)
    if order.status != OrderStatus.PENDING:
        return SagaState(outcome=Outcome.COMPENSATED)
    charging = order.payment_state == PaymentState.CHARGING
    deadline = order.held_until
    if charging:
        deadline += timedelta(seconds=fence_seconds)
    return SagaState(done=STEPS.index(DEBIT), begun=charging, deadline_passed=deadline <= now)


def final_status(order: Order, state: SagaState) -> OrderStatus:
    """CONFIRMED, or how a compensated order ends: CANCELLED when the fan called it off, EXPIRED when its hold ran
    out and nobody tried to charge it, FAILED otherwise (a charge was attempted, or a step failed)."""
    if state.outcome is Outcome.COMPLETED:
        return OrderStatus.CONFIRMED
    if order.status == OrderStatus.CANCELLED:
        return OrderStatus.CANCELLED
    if state.failed_by_deadline and order.payment_state == PaymentState.NONE:
        return OrderStatus.EXPIRED
    return OrderStatus.FAILED
