"""Orders and transfers: the moves allowed between their states (declared in trcontracts.orders, with the error
codes), and the errors those rules raise.

Plain Python: no Flask, SQLAlchemy or pika. The moves are data (ORDER_TRANSITIONS, TRANSFER_TRANSITIONS);
the methods add the guards that depend on time or payment. `now` is always the database clock, passed in by
the service layer, so every replica of the service judges a hold by the same clock.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from trcommon.errors import Conflict, Gone, InvalidInput, NotFound
from trcontracts.base import utc_iso
from trcontracts.orders import OrderError, OrderStatus, PaymentState, TransferStatus


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.EXPIRED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.REFUNDED}),
}

TRANSFER_TRANSITIONS: dict[TransferStatus, frozenset[TransferStatus]] = {
    TransferStatus.PENDING_OTP: frozenset({TransferStatus.COMPLETED, TransferStatus.CANCELLED,
                                           TransferStatus.EXPIRED}),
    TransferStatus.COMPLETED: frozenset({TransferStatus.DISPUTED}),
    TransferStatus.DISPUTED: frozenset({TransferStatus.REVERSED, TransferStatus.COMPLETED}),
}


class OrderNotFound(NotFound):
    code = OrderError.ORDER_NOT_FOUND


class OrderConflict(Conflict):
    code = OrderError.ORDER_CONFLICT


class HoldExpired(Gone):
    code = OrderError.HOLD_EXPIRED


class InvalidTransition(Conflict):
    code = OrderError.INVALID_TRANSITION


class SeatAlreadyConfirmed(Conflict):
    """Another order already holds the one CONFIRMED slot of this seat (a UNIQUE index guarantees it)."""

    code = OrderError.SEAT_ALREADY_CONFIRMED


class TransferNotFound(NotFound):
    code = OrderError.TRANSFER_NOT_FOUND


class TransferExpired(Gone):
    code = OrderError.TRANSFER_EXPIRED


def _is_allowed(table: dict, current, to) -> bool:
    """True if `current` may move to `to`; False if it already is `to` (nothing to do); raises otherwise."""
    if to == current:
        return False
    if to not in table.get(current, ()):
        raise InvalidTransition(f"it is {current}, which cannot move to {to}")
    return True


@dataclass(frozen=True)
class CreateOrder:
    order_id: str
    user_id: str
    seat_id: str
    event_id: str
    amount: int
    held_until: datetime


@dataclass(frozen=True)
class Order:
    order_id: str
    user_id: str
    seat_id: str
    event_id: str
    amount: int
    status: OrderStatus
    payment_state: PaymentState
    held_until: datetime
    failure_reason: str | None
    confirmed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def matches(self, cmd: CreateOrder) -> bool:
        """Whether a repeated create describes this same order (so it is a retry, not a clash of ids)."""
        return (self.user_id, self.seat_id, self.event_id, self.amount, self.held_until) == (
            cmd.user_id, cmd.seat_id, cmd.event_id, cmd.amount, cmd.held_until)

    def hold_is_live(self, now: datetime) -> bool:
        return self.held_until > now

    def lapsed_unpaid(self, now: datetime) -> bool:
        """A PENDING order whose hold has passed with no charge started: it can only end as EXPIRED."""
        return (self.status == OrderStatus.PENDING and self.payment_state == PaymentState.NONE
                and not self.hold_is_live(now))

    def begin_payment(self, now: datetime) -> Order:
        """The order as it must be before the debit is requested (the same object when nothing changes)."""
        if self.status == OrderStatus.CONFIRMED:
            return self
        if self.status in (OrderStatus.EXPIRED, OrderStatus.FAILED) or (
                self.status == OrderStatus.PENDING and not self.hold_is_live(now)):
            raise HoldExpired(f"the hold on this order ended at {utc_iso(self.held_until)}; it is {self.status}")
        if self.status != OrderStatus.PENDING:
            raise InvalidTransition(f"cannot pay for this order: it is {self.status}")
        if self.payment_state == PaymentState.CHARGING:
            return self
        return replace(self, payment_state=PaymentState.CHARGING)

    def transition(self, to: OrderStatus, now: datetime, reason: str | None = None) -> Order:
        """The order after moving to `to` (the same object when it already is `to`)."""
        if not _is_allowed(ORDER_TRANSITIONS, self.status, to):
            return self
        if to == OrderStatus.EXPIRED:
            if self.payment_state != PaymentState.NONE:
                raise InvalidTransition(f"cannot expire this order: it is {self.status} with a payment in progress")
            if self.hold_is_live(now):
                raise InvalidTransition(f"cannot expire this order: it is {self.status} and its hold lasts "
                                        f"until {utc_iso(self.held_until)}")
        changes: dict = {"status": to}
        if to == OrderStatus.CONFIRMED:
            changes["confirmed_at"] = now
        elif reason is not None or to == OrderStatus.EXPIRED:
            changes["failure_reason"] = reason or "hold expired"
        return replace(self, **changes)


@dataclass(frozen=True)
class Transfer:
    transfer_id: str
    seat_id: str
    seller_user_id: str
    buyer_user_id: str
    amount: int
    status: TransferStatus
    expires_at: datetime
    dispute_reason: str | None = None

    def transition(self, to: TransferStatus, now: datetime, reason: str | None = None) -> Transfer:
        """The transfer after moving to `to` (the same object when it already is `to`)."""
        if not _is_allowed(TRANSFER_TRANSITIONS, self.status, to):
            return self
        if self.status == TransferStatus.PENDING_OTP:
            if to == TransferStatus.EXPIRED and now < self.expires_at:
                raise InvalidTransition(f"cannot expire this transfer: it is {self.status} until "
                                        f"{utc_iso(self.expires_at)}")
            if to == TransferStatus.COMPLETED and now >= self.expires_at:
                raise TransferExpired(f"this transfer expired at {utc_iso(self.expires_at)}")
        if to == TransferStatus.DISPUTED:
            if not (reason and reason.strip()):
                raise InvalidInput("a dispute needs a reason")
            return replace(self, status=to, dispute_reason=reason.strip())
        return replace(self, status=to)
