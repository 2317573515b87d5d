"""Rules of the purchase saga (reserve → pay), free of any transport.

Saga steps, and the state recorded around each remote call (in orders_db, by order-service):
  reserve:  ReserveSeat (inventory) → create order PENDING (orders) → publish the hold timer (broker)
  pay:      begin-payment: payment_state CHARGING (orders) → debit `order:{id}:debit` (users, refused after
            held_until) → ConfirmSeat (inventory) → CONFIRMED (orders)
  compensate: credit `order:{id}:refund` (users) → ReleaseSeat (inventory) → FAILED (orders)

Every step is idempotent (the order id is the hold id and the ledger references derive from it), so the
recovery pass can re-run a step it is unsure about; which step to take next is decided from what the other
services say, never from the orchestrator's memory.
"""
from __future__ import annotations

import enum
from datetime import datetime, timedelta

from trcommon.errors import AppError, Gone
from trcontracts.inventory import InventoryError
from trcontracts.orders import Order, OrderError, OrderStatus, PaymentState

# Answers of ConfirmSeat that mean the seat can no longer be confirmed for this order.
SEAT_LOST_CODES = frozenset({InventoryError.HOLD_EXPIRED, InventoryError.SEAT_UNAVAILABLE,
                             InventoryError.SEAT_NOT_FOUND})


def debit_reference(order_id: str) -> str:
    return f"order:{order_id}:debit"


def refund_reference(order_id: str) -> str:
    return f"order:{order_id}:refund"


def otp_purpose(order_id: str) -> str:
    return f"order:{order_id}"


class HoldExpired(Gone):
    code = OrderError.HOLD_EXPIRED


def seat_lost(err: AppError) -> bool:
    return err.code in SEAT_LOST_CODES


class Next(enum.Enum):
    WAIT = "wait"              # nothing to do yet (hold still live, nobody charged)
    EXPIRE = "expire"          # hold lapsed and nobody was charged: order EXPIRED, seat released
    CONFIRM = "confirm"        # charged: confirm the seat (and compensate if that is no longer possible)
    DONE = "done"              # terminal already


def next_step(order: Order, debited: bool, now: datetime, fence_seconds: float) -> Next:
    """What the recovery pass does with an order, given whether its debit exists in the ledger.

    user-service refuses a debit once the order's held_until has passed, so for a CHARGING order "no debit"
    is final once held_until plus a small fence (for a debit transaction already under way) has passed.
    """
    if order.status != OrderStatus.PENDING:
        return Next.DONE
    if debited:
        return Next.CONFIRM
    deadline = order.held_until
    if order.payment_state == PaymentState.CHARGING:
        deadline += timedelta(seconds=fence_seconds)
    return Next.EXPIRE if deadline <= now else Next.WAIT
