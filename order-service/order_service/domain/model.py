"""Orders and transfers: the moves allowed between their states (declared in trcontracts.orders, with the error
codes), and the errors those rules raise.

Plain Python: no Flask, SQLAlchemy or pika. The moves are data (ORDER_TRANSITIONS, TRANSFER_TRANSITIONS);
the methods add the guards that depend on time, payment or the saga step recorded. `now` is always the database
clock, passed in by the service layer, so every replica of the service judges a hold, a transfer's expiry and
its dispute window by the same clock.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from trcommon.errors import Conflict, Gone, InvalidInput, NotFound
from trcontracts.base import utc_iso
from trcontracts.notifications import NotificationKind
from trcontracts.orders import OrderError, OrderStatus, PaymentState, TransferStatus, TransferStep


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.EXPIRED,
                                    OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.REFUNDING, OrderStatus.REFUNDED}),
    OrderStatus.REFUNDING: frozenset({OrderStatus.REFUNDED, OrderStatus.CONFIRMED}),
}

TRANSFER_TRANSITIONS: dict[TransferStatus, frozenset[TransferStatus]] = {
    TransferStatus.PENDING_OTP: frozenset({TransferStatus.COMPLETED, TransferStatus.CANCELLED,
                                           TransferStatus.EXPIRED}),
    TransferStatus.COMPLETED: frozenset({TransferStatus.DISPUTED}),
    TransferStatus.DISPUTED: frozenset({TransferStatus.REVERSED, TransferStatus.COMPLETED}),
}



@dataclass(frozen=True)
class Notice:
    """What a fan is told when a record reaches a status: the kind, the word naming it in the notification id
    (`order:{order_id}:{word}`, `transfer:{transfer_id}:{word}:{user_id}`) and, for a transfer, who is told."""

    kind: NotificationKind
    word: str
    recipients: tuple[str, ...] = ("user",)     # for a transfer: "seller", "buyer"


# A record that reaches one of these statuses tells its fans, once per record and status (the id is the key: a
# status reached again, like CONFIRMED after a refused refund, tells nobody again). An order CANCELLED (the fan did
# it) or FAILED (the fan was told by the answer) tells nobody; nor does a transfer that EXPIRED or was DISPUTED.
ORDER_NOTICES: dict[OrderStatus, Notice] = {
    OrderStatus.CONFIRMED: Notice(NotificationKind.ORDER_CONFIRMED, "confirmed"),
    OrderStatus.EXPIRED: Notice(NotificationKind.HOLD_EXPIRED, "expired"),
    OrderStatus.REFUNDED: Notice(NotificationKind.REFUND_MADE, "refunded"),
}
TRANSFER_NOTICES: dict[TransferStatus, Notice] = {
    TransferStatus.PENDING_OTP: Notice(NotificationKind.TRANSFER_OFFERED, "offered", ("buyer",)),
    TransferStatus.COMPLETED: Notice(NotificationKind.TRANSFER_COMPLETED, "completed", ("seller", "buyer")),
    TransferStatus.REVERSED: Notice(NotificationKind.TRANSFER_REVERSED, "reversed", ("seller", "buyer")),
    TransferStatus.CANCELLED: Notice(NotificationKind.TRANSFER_CANCELLED, "cancelled", ("buyer",)),
}
# Who is told of an event's cancellation: every fan with a live order of it, an offered seat, or a seat obtained
# through a transfer.
EVENT_CANCELLED_ORDER_STATUSES = (OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.REFUNDING)


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


class TransferConflict(Conflict):
    code = OrderError.TRANSFER_CONFLICT


class TransferAlreadyOpen(Conflict):
    """Another PENDING_OTP transfer already offers this seat (a unique index guarantees one at a time)."""

    code = OrderError.TRANSFER_ALREADY_OPEN


class TransferExpired(Gone):
    code = OrderError.TRANSFER_EXPIRED


class DisputeWindowClosed(Gone):
    code = OrderError.DISPUTE_WINDOW_CLOSED


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
    seat_ids: tuple[str, ...]     # 1-8 distinct seats, ascending (the contract's CreateOrderBody sorts them)
    event_id: str
    amount: int
    held_until: datetime

    @property
    def seat_id(self) -> str:
        return self.seat_ids[0]


@dataclass(frozen=True)
class Order:
    order_id: str
    user_id: str
    seat_id: str                  # the first of seat_ids
    seat_ids: tuple[str, ...]     # every seat of the order, ascending
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
        return (self.user_id, self.seat_ids, self.event_id, self.amount, self.held_until) == (
            cmd.user_id, cmd.seat_ids, cmd.event_id, cmd.amount, cmd.held_until)

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
        if self.status in (OrderStatus.EXPIRED, OrderStatus.FAILED, OrderStatus.CANCELLED) or (
                self.status == OrderStatus.PENDING and not self.hold_is_live(now)):
            raise HoldExpired(f"the hold on this order ended at {utc_iso(self.held_until)}; it is {self.status}")
        if self.status != OrderStatus.PENDING:
            raise InvalidTransition(f"cannot pay for this order: it is {self.status}")
        if self.payment_state == PaymentState.CHARGING:
            return self
        return replace(self, payment_state=PaymentState.CHARGING)

    def begin_refund(self) -> Order:
        """The order as it must be before the refund saga's first call (the same object when nothing changes)."""
        if self.status in (OrderStatus.REFUNDING, OrderStatus.REFUNDED):
            return self
        if self.status != OrderStatus.CONFIRMED:
            raise InvalidTransition(f"only a CONFIRMED order can be refunded: it is {self.status}")
        return replace(self, status=OrderStatus.REFUNDING)

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
        if to == OrderStatus.CANCELLED and self.payment_state != PaymentState.NONE:
            # Its debit may be under way: only the purchase saga ends it (CONFIRMED, or FAILED and refunded).
            raise InvalidTransition(f"cannot cancel this order: it is {self.status} with a payment in progress")
        changes: dict = {"status": to}
        if to == OrderStatus.CONFIRMED:
            changes["confirmed_at"] = self.confirmed_at or now      # a refused refund keeps the first one
        elif reason is not None or to == OrderStatus.EXPIRED:
            changes["failure_reason"] = reason or "hold expired"
        return replace(self, **changes)




@dataclass(frozen=True)
class CreateTransfer:
    transfer_id: str
    seat_id: str
    event_id: str
    seller_user_id: str
    buyer_user_id: str
    amount: int
    face_value: int
    expires_at: datetime


def _text(value: str | None) -> str | None:
    """A free-text field as kept: trimmed, and None when there is nothing in it."""
    return (value or "").strip() or None


@dataclass(frozen=True)
class Transfer:
    """A fan-to-fan transfer: the record of the transfer sagas (confirm, and an admin's reversal).

    `step` is the last saga step begun on it (TransferStep); only begin_confirm and begin_reverse move it, and
    never back, so a COMPLETED transfer still says CONFIRMING (and a reversed one REVERSING)."""

    transfer_id: str
    seat_id: str
    event_id: str
    seller_user_id: str
    buyer_user_id: str
    amount: int
    face_value: int
    status: TransferStatus
    step: TransferStep
    expires_at: datetime
    dispute_reason: str | None = None
    resolution: str | None = None
    release_at: datetime | None = None
    released_at: datetime | None = None
    completed_at: datetime | None = None
    failure_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def matches(self, cmd: CreateTransfer) -> bool:
        """Whether a repeated create describes this same transfer (so it is a retry, not a clash of ids)."""
        return (self.seat_id, self.event_id, self.seller_user_id, self.buyer_user_id, self.amount,
                self.face_value, self.expires_at) == (
            cmd.seat_id, cmd.event_id, cmd.seller_user_id, cmd.buyer_user_id, cmd.amount, cmd.face_value,
            cmd.expires_at)

    def is_party(self, user_id: str) -> bool:
        return user_id in (self.seller_user_id, self.buyer_user_id)

    def has_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def lapsed_unconfirmed(self, now: datetime) -> bool:
        """PENDING_OTP past its deadline with no confirm begun: nothing was charged, it can only end EXPIRED."""
        return (self.status == TransferStatus.PENDING_OTP and self.step == TransferStep.INITIATED
                and self.has_expired(now))

    def proceeds_due(self, now: datetime) -> bool:
        """The seller's pending proceeds may become spendable: COMPLETED, its window over, not released yet."""
        return (self.status == TransferStatus.COMPLETED and self.released_at is None
                and self.release_at is not None and self.release_at <= now)

    def begin_confirm(self, now: datetime) -> Transfer:
        """The transfer as it must be before the buyer's debit is requested (the same object when nothing
        changes). A CONFIRMING transfer is returned as it is even past its deadline: whether its debit happened
        is for the saga to find out."""
        if self.status in (TransferStatus.COMPLETED, TransferStatus.DISPUTED, TransferStatus.REVERSED):
            return self
        if self.status == TransferStatus.EXPIRED or self.lapsed_unconfirmed(now):
            raise TransferExpired(f"this transfer expired at {utc_iso(self.expires_at)}")
        if self.status != TransferStatus.PENDING_OTP:
            raise InvalidTransition(f"cannot confirm this transfer: it is {self.status}")
        if self.step == TransferStep.CONFIRMING:
            return self
        return replace(self, step=TransferStep.CONFIRMING)

    def begin_reverse(self) -> Transfer:
        """The transfer as it must be before an admin's reversal makes its first call (the same object when
        nothing changes)."""
        if self.status == TransferStatus.REVERSED or (
                self.status == TransferStatus.DISPUTED and self.step == TransferStep.REVERSING):
            return self
        if self.status != TransferStatus.DISPUTED:
            raise InvalidTransition(f"only a disputed transfer can be reversed: it is {self.status}")
        return replace(self, step=TransferStep.REVERSING)

    def mark_released(self, now: datetime) -> Transfer:
        """The transfer once its seller's proceeds were released (the same object when they already were)."""
        if self.released_at is not None:
            return self
        if not self.proceeds_due(now):
            due = f" until {utc_iso(self.release_at)}" if self.release_at else ""
            raise InvalidTransition(f"its proceeds are not due: it is {self.status}{due}")
        return replace(self, released_at=now)

    def transition(self, to: TransferStatus, now: datetime, reason: str | None = None,
                   release_at: datetime | None = None, resolution: str | None = None,
                   expected_step: TransferStep | None = None) -> Transfer:
        """The transfer after moving to `to` (the same object when it already is `to`)."""
        if not _is_allowed(TRANSFER_TRANSITIONS, self.status, to):
            return self
        if expected_step is not None and self.step != expected_step:
            raise InvalidTransition(f"it is {self.status} at step {self.step}, not {expected_step}")
        reason = _text(reason)
        if self.status == TransferStatus.PENDING_OTP:
            return self._end_pending(to, now, reason, release_at)
        if to == TransferStatus.DISPUTED:
            return self._dispute(now, reason)
        # From DISPUTED: reversed, or the dispute closed and the transfer stands.
        if to == TransferStatus.REVERSED:
            if self.step != TransferStep.REVERSING:
                raise InvalidTransition(f"it is {self.status} and its reversal has not begun")
            return replace(self, status=to, resolution=_text(resolution))
        if _text(resolution) is None:
            raise InvalidInput("closing a dispute needs a resolution")
        return replace(self, status=to, resolution=_text(resolution))

    def _end_pending(self, to: TransferStatus, now: datetime, reason: str | None,
                     release_at: datetime | None) -> Transfer:
        if to == TransferStatus.EXPIRED:
            if not self.has_expired(now):
                raise InvalidTransition(f"cannot expire this transfer: it is {self.status} until "
                                        f"{utc_iso(self.expires_at)}")
            return replace(self, status=to, failure_reason=reason or "not confirmed in time")
        if self.lapsed_unconfirmed(now):
            raise TransferExpired(f"this transfer expired at {utc_iso(self.expires_at)}")
        if to == TransferStatus.CANCELLED:
            return replace(self, status=to, failure_reason=reason or "cancelled")
        # COMPLETED: only the confirm saga completes a transfer, and it records its start first.
        if self.step != TransferStep.CONFIRMING:
            raise InvalidTransition(f"it is {self.status} and its confirm has not begun")
        if release_at is None:
            raise InvalidInput("completing a transfer needs release_at (when its proceeds become spendable)")
        return replace(self, status=to, completed_at=now, release_at=release_at)

    def _dispute(self, now: datetime, reason: str | None) -> Transfer:
        if reason is None:
            raise InvalidInput("a dispute needs a reason")
        if self.released_at is not None or now >= self.release_at:
            raise DisputeWindowClosed(f"the dispute window of this transfer closed at {utc_iso(self.release_at)}")
        # An admin's decision is final: a second dispute would overwrite the first one's reason and resolution.
        if self.resolution is not None:
            raise DisputeWindowClosed(f"a dispute of this transfer was already closed: {self.resolution}")
        return replace(self, status=TransferStatus.DISPUTED, dispute_reason=reason)
