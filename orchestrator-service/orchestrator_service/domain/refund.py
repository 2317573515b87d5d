"""Rules of the refund saga, free of any transport: who may refund an order and until when, how an order's record
reads as the refund saga's state, and which answers of inventory mean a seat cannot be taken back. The steps are in
service_layer/refunds.py; the design is in docs/sagas.md."""
from __future__ import annotations

from datetime import datetime, timedelta

from trcommon.errors import AppError, Conflict
from trcommon.saga import Outcome, SagaState
from trcontracts.inventory import InventoryError
from trcontracts.orders import Order, OrderStatus

# The refund saga's steps, in order: the seats first (the one step that can be refused), then the credits.
TAKE_BACK, REFUND = "take-back", "refund"
STEPS = (TAKE_BACK, REFUND)

# Answers of ReturnSeats that mean a seat is no longer the fan's ticket to give back.
SEAT_KEPT_CODES = frozenset({InventoryError.SEAT_CHECKED_IN, InventoryError.NOT_OWNER,
                             InventoryError.SEAT_NOT_FOUND})


class RefundCutoffPassed(Conflict):
    code = "REFUND_CUTOFF_PASSED"


class OrderNotRefundable(Conflict):
    code = "ORDER_NOT_REFUNDABLE"


class TicketNotRefundable(Conflict):
    code = "TICKET_NOT_REFUNDABLE"


def seat_kept(err: AppError) -> bool:
    return err.code in SEAT_KEPT_CODES


def check_refundable(order: Order, role: str, event_starts_at: datetime, now: datetime,
                     cutoff_seconds: int) -> None:
    """A CONFIRMED order (one whose refund has begun or ended is answered as it is); a fan's only until
    `cutoff_seconds` before the event starts, an admin's any time."""
    if order.status not in (OrderStatus.CONFIRMED, OrderStatus.REFUNDING, OrderStatus.REFUNDED):
        raise OrderNotRefundable(f"this order is {order.status}; only a CONFIRMED order can be refunded")
    if order.status == OrderStatus.CONFIRMED and role != "admin":
        closes = event_starts_at - timedelta(seconds=cutoff_seconds)
        if now >= closes:
            raise RefundCutoffPassed(f"refunds of this event closed at {closes.isoformat()} "
                                     f"({cutoff_seconds} s before it starts)")


def refund_state(order: Order) -> SagaState:
    """The refund saga's state an order records. CONFIRMED: not begun (it waits for a refund request). REFUNDING:
    the request began taking the seats back; whether it did is not recorded, so the step is run again (keyed:
    a repeat returns the seats as they are), then the credit (keyed: once). REFUNDED: completed. Back to CONFIRMED
    after a refusal: nothing was taken, nothing to undo."""
    if order.status == OrderStatus.REFUNDED:
        return SagaState(done=len(STEPS), outcome=Outcome.COMPLETED)
    if order.status == OrderStatus.REFUNDING:
        return SagaState(done=0, begun=True)
    return SagaState(done=0)


def final_status(state: SagaState) -> OrderStatus:
    return OrderStatus.REFUNDED if state.outcome is Outcome.COMPLETED else OrderStatus.CONFIRMED
