"""The internal API of order-service: orders and fan-to-fan transfers, the records of the purchase and transfer
sagas, with their states."""
from __future__ import annotations

import uuid
from enum import StrEnum, auto
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer, model_validator

from .base import MAX_OFFSET, CommonError, Credits, ErrorCode, QueryInt, Route, Timestamp, UtcTimestamp
from .inventory import MAX_SEATS_PER_HOLD, InventoryError


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    REFUNDED = "REFUNDED"
    # A refund has begun (the refund saga's record): the seats are being taken back, then the credits returned.
    # It ends REFUNDED, or CONFIRMED again when a seat could not be taken back (checked in, or transferred away).
    REFUNDING = "REFUNDING"
    # The fan called the hold off before paying: every seat was released at once.
    CANCELLED = "CANCELLED"


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
    """The order's seats: `seat_id`, or `seat_ids` (1 to MAX_SEATS_PER_HOLD distinct seats of `event_id`; `seat_id`,
    if given too, must be the first of them by id). `amount` is the sum of their prices."""

    order_id: uuid.UUID
    user_id: uuid.UUID
    seat_id: uuid.UUID | None = None
    seat_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_SEATS_PER_HOLD)
    event_id: uuid.UUID
    amount: Credits
    held_until: Timestamp

    @model_validator(mode="after")
    def _seats(self):
        if len(set(self.seat_ids)) != len(self.seat_ids):
            raise ValueError("seat_ids must not repeat a seat")
        if not self.seat_ids and self.seat_id is None:
            raise ValueError("give seat_id or seat_ids")
        if self.seat_ids and self.seat_id is not None and self.seat_id != min(self.seat_ids, key=str):
            raise ValueError("seat_id must be the first of seat_ids by id")
        return self

    @property
    def all_seat_ids(self) -> list[uuid.UUID]:
        """Every seat, ascending by id (the order in which inventory locks them)."""
        return sorted(self.seat_ids, key=str) if self.seat_ids else [self.seat_id]


class BeginPaymentBody(BaseModel):
    user_id: uuid.UUID


class TransitionBody(BaseModel):
    to: OrderStatus
    reason: str | None = Field(None, max_length=500)


def _comma_list(value: object) -> object:
    """A query's `status=A,B` (one parameter, a comma list: a query string is read one value per name) as a list;
    a single status, or a list, as given."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        value = list(value)
    elif value is not None:
        value = [value]
    return value or None


def _comma_join(value: list) -> str:
    return ",".join(str(v) for v in value)


# Statuses to keep (any of them); None: every status.
OrderStatuses = Annotated[list[OrderStatus] | None, BeforeValidator(_comma_list),
                          PlainSerializer(_comma_join, return_type=str, when_used="json-unless-none")]
TransferStatuses = Annotated[list[TransferStatus] | None, BeforeValidator(_comma_list),
                             PlainSerializer(_comma_join, return_type=str, when_used="json-unless-none")]


class UserOrSeatQuery(BaseModel):
    """A page of a user's, a seat's or an event's records: at least one of user_id, seat_id, event_id. With
    event_id the page is in ascending order of creation (an organizer's listing, stable while it grows); otherwise
    newest first."""

    user_id: uuid.UUID | None = None
    seat_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None
    limit: QueryInt = Field(50, ge=1, le=200)
    offset: QueryInt = Field(0, ge=0, le=MAX_OFFSET)

    @model_validator(mode="after")
    def _needs_user_or_seat(self):
        if self.user_id is None and self.seat_id is None and self.event_id is None:
            raise ValueError("give user_id, seat_id or event_id")
        return self


class OrderQuery(UserOrSeatQuery):
    """At least one of user_id, seat_id, event_id; `status`: one status or a comma list (`CONFIRMED,REFUNDED`)."""

    status: OrderStatuses = None


class CreateTransferBody(BaseModel):
    """`amount` may exceed `face_value` here: the price cap is a setting the orchestrator applies."""

    transfer_id: uuid.UUID
    seat_id: uuid.UUID
    event_id: uuid.UUID
    seller_user_id: uuid.UUID
    buyer_user_id: uuid.UUID
    amount: Credits
    face_value: Credits
    expires_at: Timestamp

    @model_validator(mode="after")
    def _two_parties(self):
        if self.seller_user_id == self.buyer_user_id:
            raise ValueError("the seller cannot be the buyer")
        return self


class BeginConfirmBody(BaseModel):
    """The user asking to confirm: the seller or the buyer."""

    user_id: uuid.UUID


class TransferTransitionBody(BaseModel):
    """`reason`: why it was cancelled or expired (kept as `failure_reason`), or the dispute's reason (required to
    dispute). `release_at`: when the seller's pending proceeds become spendable (required to complete a PENDING_OTP
    transfer, read only then). `resolution`: how a dispute ended (required to close one, optional when reversing).
    `expected_step`: the move happens only if the transfer is at this step."""

    to: TransferStatus
    reason: str | None = Field(None, max_length=500)
    release_at: Timestamp | None = None
    resolution: str | None = Field(None, max_length=500)
    expected_step: TransferStep | None = None


class TransferQuery(UserOrSeatQuery):
    """At least one of user_id (seller or buyer), seat_id, event_id; `status`: one status or a comma list."""

    status: TransferStatuses = None


class CancellationNoticesBody(BaseModel):
    """Why the event was cancelled (told to every fan), and its name for the message."""

    reason: str = Field(min_length=1, max_length=500)
    event_name: str | None = Field(None, min_length=1, max_length=200)


class StaleQuery(BaseModel):
    grace_seconds: QueryInt = Field(0, ge=0, le=366 * 24 * 3600)
    limit: QueryInt = Field(100, ge=1, le=1000)


# --- answers -----------------------------------------------------------------------------------------------------

class Order(BaseModel):
    order_id: str
    user_id: str
    seat_id: str             # the first of seat_ids
    # Every seat of the order (1-8), ascending; an answer without it (an order-service from before multi-seat
    # orders) means the one seat_id.
    seat_ids: list[str] = Field(default_factory=list)
    event_id: str
    amount: int
    status: OrderStatus
    payment_state: PaymentState
    held_until: UtcTimestamp
    failure_reason: str | None
    confirmed_at: UtcTimestamp | None
    created_at: UtcTimestamp
    updated_at: UtcTimestamp

    @model_validator(mode="after")
    def _one_seat_unless_told(self):
        if not self.seat_ids:
            self.seat_ids = [self.seat_id]
        return self


class OrderList(BaseModel):
    orders: list[Order]


class Transfer(BaseModel):
    transfer_id: str
    seat_id: str
    event_id: str
    seller_user_id: str
    buyer_user_id: str
    amount: int
    face_value: int
    status: TransferStatus
    step: TransferStep
    dispute_reason: str | None
    resolution: str | None
    expires_at: UtcTimestamp
    release_at: UtcTimestamp | None
    released_at: UtcTimestamp | None
    completed_at: UtcTimestamp | None
    failure_reason: str | None
    created_at: UtcTimestamp
    updated_at: UtcTimestamp


class TransferList(BaseModel):
    transfers: list[Transfer]


class EventSales(BaseModel):
    """An event's sales as order-service records them. Every status is a key (0 when none). `revenue`: the
    amounts of CONFIRMED orders; `refunded`: of REFUNDED ones; `seats_sold`: the seats of CONFIRMED orders (a
    seat transferred on stays counted once: its order is still CONFIRMED)."""

    event_id: str
    orders_by_status: dict[str, int]
    revenue: int
    refunded: int
    seats_sold: int
    transfers_by_status: dict[str, int]


class CancellationNotices(BaseModel):
    """How many fans have an EVENT_CANCELLED message of this event (written now or by an earlier call)."""

    notified: int


# --- routes ------------------------------------------------------------------------------------------------------

E = OrderError

CREATE_ORDER = Route(
    "POST", "/internal/orders", Order, 201, body=CreateOrderBody, errors=(E.ORDER_CONFLICT,), idempotent=True,
    doc="A PENDING order of `seat_id` or `seat_ids` (1-8 seats). Keyed by `order_id`: the same order again is 200 "
        "with the existing order; the same id with other details is ORDER_CONFLICT.")
GET_ORDER = Route("GET", "/internal/orders/{order_id}", Order, errors=(E.ORDER_NOT_FOUND,), idempotent=True)
LIST_ORDERS = Route("GET", "/internal/orders", OrderList, query=OrderQuery, idempotent=True,
                    doc="At least one of user_id/seat_id (any of an order's seats)/event_id, and optionally `status` "
                        "(one, or a comma list); newest first, or oldest first when event_id is given.")
STALE_ORDERS = Route(
    "GET", "/internal/orders/stale", OrderList, query=StaleQuery, idempotent=True,
    doc="Oldest `held_until` first: PENDING orders with payment_state NONE whose `held_until` has passed, "
        "PENDING orders with payment_state CHARGING whose `held_until` or last update is more than grace ago, and "
        "REFUNDING orders not updated for more than grace.")
BEGIN_PAYMENT = Route(
    "POST", "/internal/orders/{order_id}/begin-payment", Order, body=BeginPaymentBody,
    errors=(E.ORDER_NOT_FOUND, E.HOLD_EXPIRED, E.INVALID_TRANSITION), idempotent=True,
    doc="PENDING and live: payment_state set to CHARGING; CONFIRMED: returned unchanged; 404 when missing or "
        "another user's; HOLD_EXPIRED when `held_until` has passed or the order is EXPIRED/FAILED/CANCELLED (a lapsed "
        "order with no charge started is expired on the way); INVALID_TRANSITION on a REFUNDING or REFUNDED order.")
BEGIN_REFUND = Route(
    "POST", "/internal/orders/{order_id}/begin-refund", Order,
    errors=(E.ORDER_NOT_FOUND, E.INVALID_TRANSITION), idempotent=True,
    doc="CONFIRMED: status set to REFUNDING (recorded before the refund saga's first call); REFUNDING, REFUNDED: "
        "returned unchanged; otherwise INVALID_TRANSITION.")
TRANSITION = Route(
    "POST", "/internal/orders/{order_id}/transition", Order, body=TransitionBody,
    errors=(E.ORDER_NOT_FOUND, E.INVALID_TRANSITION, E.SEAT_ALREADY_CONFIRMED), idempotent=True,
    doc="Allowed: PENDING→CONFIRMED, PENDING→FAILED, PENDING→EXPIRED (only with payment_state NONE once "
        "`held_until` has passed; a lapsed CHARGING order whose debit never happened ends FAILED), PENDING→CANCELLED "
        "(only with payment_state NONE: no charge has begun), "
        "CONFIRMED→REFUNDED, REFUNDING→REFUNDED, REFUNDING→CONFIRMED (a refund refused; `confirmed_at` kept); "
        "already in `to`: 200 unchanged; otherwise INVALID_TRANSITION. At most one CONFIRMED "
        "order per seat: confirming a second one is SEAT_ALREADY_CONFIRMED.")

CREATE_TRANSFER = Route(
    "POST", "/internal/transfers", Transfer, 201, body=CreateTransferBody,
    errors=(E.TRANSFER_CONFLICT, E.TRANSFER_ALREADY_OPEN), idempotent=True,
    doc="A PENDING_OTP transfer at step INITIATED. Keyed by `transfer_id`: the same transfer again is 200 with the "
        "existing one; the same id with other details is TRANSFER_CONFLICT. TRANSFER_ALREADY_OPEN when another "
        "PENDING_OTP transfer offers the seat (a unique index decides between concurrent creates).")
GET_TRANSFER = Route("GET", "/internal/transfers/{transfer_id}", Transfer, errors=(E.TRANSFER_NOT_FOUND,),
                     idempotent=True)
LIST_TRANSFERS = Route("GET", "/internal/transfers", TransferList, query=TransferQuery, idempotent=True,
                       doc="At least one of user_id (as seller or buyer)/seat_id/event_id, and optionally `status` "
                           "(one, or a comma list); newest first, or oldest first when event_id is given.")
STALE_TRANSFERS = Route(
    "GET", "/internal/transfers/stale", TransferList, query=StaleQuery, idempotent=True,
    doc="Oldest first, by when each became stale: PENDING_OTP at step INITIATED whose `expires_at` has passed; "
        "PENDING_OTP at step CONFIRMING and DISPUTED at step REVERSING not updated for more than grace; COMPLETED "
        "whose `release_at` has come and whose proceeds are not released yet.")
BEGIN_CONFIRM = Route(
    "POST", "/internal/transfers/{transfer_id}/begin-confirm", Transfer, body=BeginConfirmBody,
    errors=(E.TRANSFER_NOT_FOUND, E.TRANSFER_EXPIRED, E.INVALID_TRANSITION), idempotent=True,
    doc="PENDING_OTP before `expires_at`: step set to CONFIRMING; already CONFIRMING (even past `expires_at`), "
        "COMPLETED, DISPUTED, REVERSED: returned unchanged; 404 when missing or the user is neither seller nor "
        "buyer; TRANSFER_EXPIRED when EXPIRED, or past `expires_at` at step INITIATED (expired on the way); "
        "INVALID_TRANSITION when CANCELLED.")
TRANSFER_TRANSITION = Route(
    "POST", "/internal/transfers/{transfer_id}/transition", Transfer, body=TransferTransitionBody,
    errors=(E.TRANSFER_NOT_FOUND, E.INVALID_TRANSITION, E.TRANSFER_EXPIRED, E.DISPUTE_WINDOW_CLOSED),
    idempotent=True,
    doc="Allowed: PENDING_OTP→COMPLETED (at step CONFIRMING, with `release_at`; sets `completed_at`), "
        "PENDING_OTP→CANCELLED, PENDING_OTP→EXPIRED (once `expires_at` has passed), COMPLETED→DISPUTED (with a "
        "`reason`, while `release_at` is in the future, proceeds unreleased and no earlier dispute closed; else "
        "DISPUTE_WINDOW_CLOSED), DISPUTED→REVERSED (at step REVERSING), DISPUTED→COMPLETED (with a `resolution`). "
        "A PENDING_OTP transfer past `expires_at` at step INITIATED can only expire: any other move expires it on "
        "the way and is TRANSFER_EXPIRED. `expected_step` refuses the move when the step differs. Already in `to`: "
        "200 unchanged; otherwise INVALID_TRANSITION. The step is never changed by a transition.")
BEGIN_REVERSE = Route(
    "POST", "/internal/transfers/{transfer_id}/begin-reverse", Transfer,
    errors=(E.TRANSFER_NOT_FOUND, E.INVALID_TRANSITION), idempotent=True,
    doc="DISPUTED: step set to REVERSING; REVERSED: returned unchanged; otherwise INVALID_TRANSITION.")
MARK_RELEASED = Route(
    "POST", "/internal/transfers/{transfer_id}/released", Transfer,
    errors=(E.TRANSFER_NOT_FOUND, E.INVALID_TRANSITION), idempotent=True,
    doc="Records once that the seller's pending proceeds were released (`released_at`): only for a COMPLETED "
        "transfer whose `release_at` has come; already released: 200 unchanged; otherwise INVALID_TRANSITION.")

EVENT_SALES = Route(
    "GET", "/internal/events/{event_id}/sales", EventSales, errors=(CommonError.INVALID_INPUT,), idempotent=True,
    doc="An event_id that is not a UUID is INVALID_INPUT. Counts of the event's orders and transfers by status, revenue (CONFIRMED amounts), refunded (REFUNDED "
        "amounts) and seats sold (seats of CONFIRMED orders). An unknown event has only zeros.")
EVENT_CANCELLED_NOTICES = Route(
    "POST", "/internal/events/{event_id}/cancellation-notices", CancellationNotices, body=CancellationNoticesBody,
    idempotent=True,
    doc="An event_id that is not a UUID is INVALID_INPUT. In one transaction, an EVENT_CANCELLED notification (id `event:{event_id}:cancelled:{user_id}`) for each "
        "fan who now has an order of the event PENDING, CONFIRMED or REFUNDING, is the buyer of a PENDING_OTP "
        "transfer of one of its seats, or holds a seat through a COMPLETED or DISPUTED transfer (the latest of the "
        "seat). A repeat adds a notification only for a fan who has none; `notified` counts the event's "
        "notifications, old and new.")

ROUTES = (CREATE_ORDER, GET_ORDER, LIST_ORDERS, STALE_ORDERS, BEGIN_PAYMENT, BEGIN_REFUND, TRANSITION,
          CREATE_TRANSFER, GET_TRANSFER, LIST_TRANSFERS, STALE_TRANSFERS, BEGIN_CONFIRM, TRANSFER_TRANSITION,
          BEGIN_REVERSE, MARK_RELEASED, EVENT_SALES, EVENT_CANCELLED_NOTICES)
