"""The internal API of order-service: orders and their states (transfers are stored here too; their routes are
not built yet)."""
from __future__ import annotations

import uuid
from enum import StrEnum, auto

from pydantic import BaseModel, Field, model_validator

from .base import Credits, ErrorCode, Route, Timestamp, UtcTimestamp
from .inventory import InventoryError


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    REFUNDED = "REFUNDED"


class PaymentState(StrEnum):
    NONE = "NONE"
    # Written before the debit is requested, so a saga interrupted after that point is found and settled by
    # the recovery pass. It is kept when the order leaves PENDING: it records that a charge was attempted.
    CHARGING = "CHARGING"


class TransferStatus(StrEnum):
    PENDING_OTP = "PENDING_OTP"
    COMPLETED = "COMPLETED"
    DISPUTED = "DISPUTED"
    REVERSED = "REVERSED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class TransferStep(StrEnum):
    """The last saga step a transfer's record says was begun. Written before the step's first remote call, so a
    saga interrupted after that point is found by the recovery pass; it never goes back, so it stays as a trace of
    what was attempted once the transfer has ended."""

    INITIATED = "INITIATED"
    # The confirm request has begun the buyer's debit.
    CONFIRMING = "CONFIRMING"
    # An admin's reversal has begun giving the ticket and the credits back.
    REVERSING = "REVERSING"


class OrderError(ErrorCode):
    ORDER_NOT_FOUND = auto(), 404
    # The same order_id created again with other details.
    ORDER_CONFLICT = auto(), 409
    HOLD_EXPIRED = InventoryError.HOLD_EXPIRED
    INVALID_TRANSITION = auto(), 409
    # Another order already holds the one CONFIRMED slot of this seat.
    SEAT_ALREADY_CONFIRMED = auto(), 409
    TRANSFER_NOT_FOUND = auto(), 404
    # The same transfer_id created again with other details.
    TRANSFER_CONFLICT = auto(), 409
    # Another PENDING_OTP transfer already offers this seat.
    TRANSFER_ALREADY_OPEN = auto(), 409
    TRANSFER_EXPIRED = auto(), 410
    DISPUTE_WINDOW_CLOSED = auto(), 410


# --- requests ----------------------------------------------------------------------------------------------------

class CreateOrderBody(BaseModel):
    order_id: uuid.UUID
    user_id: uuid.UUID
    seat_id: uuid.UUID
    event_id: uuid.UUID
    amount: Credits
    held_until: Timestamp


class BeginPaymentBody(BaseModel):
    user_id: uuid.UUID


class TransitionBody(BaseModel):
    to: OrderStatus
    reason: str | None = Field(None, max_length=500)


class OrderQuery(BaseModel):
    """At least one of user_id, seat_id."""

    user_id: uuid.UUID | None = None
    seat_id: uuid.UUID | None = None
    status: OrderStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _needs_user_or_seat(self):
        if self.user_id is None and self.seat_id is None:
            raise ValueError("give user_id, seat_id or both")
        return self


class StaleQuery(BaseModel):
    grace_seconds: int = Field(0, ge=0, le=366 * 24 * 3600)
    limit: int = Field(100, ge=1, le=1000)


# --- answers -----------------------------------------------------------------------------------------------------

class Order(BaseModel):
    order_id: str
    user_id: str
    seat_id: str
    event_id: str
    amount: int
    status: OrderStatus
    payment_state: PaymentState
    held_until: UtcTimestamp
    failure_reason: str | None
    confirmed_at: UtcTimestamp | None
    created_at: UtcTimestamp
    updated_at: UtcTimestamp


class OrderList(BaseModel):
    orders: list[Order]


# --- routes ------------------------------------------------------------------------------------------------------

E = OrderError

CREATE_ORDER = Route(
    "POST", "/internal/orders", Order, 201, body=CreateOrderBody, errors=(E.ORDER_CONFLICT,), idempotent=True,
    doc="A PENDING order. Keyed by `order_id`: the same order again is 200 with the existing order; the same id "
        "with other details is ORDER_CONFLICT.")
GET_ORDER = Route("GET", "/internal/orders/{order_id}", Order, errors=(E.ORDER_NOT_FOUND,), idempotent=True)
LIST_ORDERS = Route("GET", "/internal/orders", OrderList, query=OrderQuery, idempotent=True,
                    doc="At least one of user_id/seat_id; newest first.")
STALE_ORDERS = Route(
    "GET", "/internal/orders/stale", OrderList, query=StaleQuery, idempotent=True,
    doc="Oldest `held_until` first: PENDING orders with payment_state NONE whose `held_until` has passed, and "
        "PENDING orders with payment_state CHARGING whose `held_until` or last update is more than grace ago.")
BEGIN_PAYMENT = Route(
    "POST", "/internal/orders/{order_id}/begin-payment", Order, body=BeginPaymentBody,
    errors=(E.ORDER_NOT_FOUND, E.HOLD_EXPIRED, E.INVALID_TRANSITION), idempotent=True,
    doc="PENDING and live: payment_state set to CHARGING; CONFIRMED: returned unchanged; 404 when missing or "
        "another user's; HOLD_EXPIRED when `held_until` has passed or the order is EXPIRED/FAILED (a lapsed "
        "order with no charge started is expired on the way); INVALID_TRANSITION on a REFUNDED order.")
TRANSITION = Route(
    "POST", "/internal/orders/{order_id}/transition", Order, body=TransitionBody,
    errors=(E.ORDER_NOT_FOUND, E.INVALID_TRANSITION, E.SEAT_ALREADY_CONFIRMED), idempotent=True,
    doc="Allowed: PENDING→CONFIRMED, PENDING→FAILED, PENDING→EXPIRED (only with payment_state NONE once "
        "`held_until` has passed; a lapsed CHARGING order whose debit never happened ends FAILED), "
        "CONFIRMED→REFUNDED; already in `to`: 200 unchanged; otherwise INVALID_TRANSITION. At most one CONFIRMED "
        "order per seat: confirming a second one is SEAT_ALREADY_CONFIRMED.")

ROUTES = (CREATE_ORDER, GET_ORDER, LIST_ORDERS, STALE_ORDERS, BEGIN_PAYMENT, TRANSITION)
