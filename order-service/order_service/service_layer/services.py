"""Use cases of order-service. Each owns its transaction; writes lock the order's or transfer's row first, so
concurrent callers of one record are decided one after the other by the domain rules."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from trcommon.errors import InvalidInput

from ..domain.model import (CreateOrder, CreateTransfer, HoldExpired, Order, OrderConflict, OrderNotFound,
                            OrderStatus, Transfer, TransferAlreadyOpen, TransferConflict, TransferExpired,
                            TransferNotFound, TransferStatus, TransferStep, utc_iso)
from .unit_of_work import OrderUnitOfWork

log = logging.getLogger("order_service")

UowFactory = Callable[..., OrderUnitOfWork]  # called with autocommit=True for single-statement work


def _not_found(order_id: str) -> OrderNotFound:
    return OrderNotFound(f"no order {order_id}")


def _transfer_not_found(transfer_id: str) -> TransferNotFound:
    return TransferNotFound(f"no transfer {transfer_id}")


def _checked_id(record_id: str, not_found: Callable[[str], Exception] = _not_found) -> str:
    """A path id that is not a UUID names no record: 404 without asking the database."""
    try:
        return str(uuid.UUID(record_id))
    except ValueError:
        raise not_found(record_id) from None


def create_order(uow_factory: UowFactory, cmd: CreateOrder) -> tuple[Order, bool]:
    """Create a PENDING order; idempotent on order_id. Returns the order and whether it was created now."""
    with uow_factory(autocommit=True) as uow:
        order = uow.orders.add(cmd)
        created = order is not None
        if not created:
            order = uow.orders.get(cmd.order_id)
        uow.commit()
    if not created and not order.matches(cmd):
        raise OrderConflict(f"order {cmd.order_id} already exists with different details")
    return order, created


def get_order(uow_factory: UowFactory, order_id: str) -> Order:
    order_id = _checked_id(order_id)
    with uow_factory(autocommit=True) as uow:
        order = uow.orders.get(order_id)
    if order is None:
        raise _not_found(order_id)
    return order


def list_orders(uow_factory: UowFactory, user_id: str | None, seat_id: str | None, statuses: list[OrderStatus] | None,
                limit: int, offset: int, event_id: str | None = None) -> list[Order]:
    with uow_factory(autocommit=True) as uow:
        return uow.orders.list(user_id, seat_id, statuses, limit, offset, event_id)


def stale_orders(uow_factory: UowFactory, grace_seconds: int, limit: int) -> list[Order]:
    with uow_factory(autocommit=True) as uow:
        return uow.orders.stale(timedelta(seconds=grace_seconds), limit)


def begin_payment(uow_factory: UowFactory, order_id: str, user_id: str) -> Order:
    """Mark a live PENDING order CHARGING before its debit is requested (CONFIRMED orders come back as they are).
    A lapsed order with no charge started is expired on the way, then refused with HOLD_EXPIRED."""
    order_id = _checked_id(order_id)
    with uow_factory(autocommit=True) as uow:
        started = uow.orders.start_charging(order_id, user_id)    # the usual case, in one statement
        if started is not None:
            return started
        found = uow.orders.read(order_id)
    # Nothing changed: why? A repeat (CHARGING, CONFIRMED) is answered from the read, a refusal raised from it; only
    # a lapsed unpaid order (expired on the way) or one that moved meanwhile takes the locked path.
    if found is None or found[0].user_id != user_id:
        raise _not_found(order_id)
    order, now = found
    if not order.lapsed_unpaid(now) and order.begin_payment(now) is order:
        return order
    with uow_factory() as uow:
        found = uow.orders.lock(order_id)
        # Someone else's order is reported exactly like a missing one: its existence is not ours to reveal.
        if found is None or found[0].user_id != user_id:
            raise _not_found(order_id)
        order, now = found
        if order.lapsed_unpaid(now):
            uow.orders.save(order.transition(OrderStatus.EXPIRED, now, "hold expired before payment"))
            uow.commit()
            log.info("order expired at payment", extra={"order_id": order_id})
            raise HoldExpired(f"the hold on this order ended at {utc_iso(order.held_until)}")
        updated = order.begin_payment(now)
        if updated is order:
            return order
        stored = uow.orders.save(updated)
        uow.commit()
    return stored


def begin_refund(uow_factory: UowFactory, order_id: str) -> Order:
    """Mark a CONFIRMED order REFUNDING before the refund saga's first call (REFUNDING and REFUNDED orders come
    back as they are). The row lock decides between concurrent requests: one moves it, the others read it moved."""
    order_id = _checked_id(order_id)
    with uow_factory() as uow:
        found = uow.orders.lock(order_id)
        if found is None:
            raise _not_found(order_id)
        order, _ = found
        updated = order.begin_refund()
        if updated is order:
            return order
        stored = uow.orders.save(updated)
        uow.commit()
    log.info("order refund begun", extra={"order_id": order_id})
    return stored


def transition_order(uow_factory: UowFactory, order_id: str, to: OrderStatus, reason: str | None) -> Order:
    """Move the order to `to`: one conditional UPDATE when the move is allowed from where the order is; otherwise
    a read says why (already there: returned as it is; not allowed: INVALID_TRANSITION; missing: 404)."""
    order_id = _checked_id(order_id)
    with uow_factory(autocommit=True) as uow:
        moved = uow.orders.move(order_id, to, reason)
        if moved is not None:
            log.info("order moved", extra={"order_id": order_id, "to_status": str(to)})
            return moved
        found = uow.orders.read(order_id)
    # Nothing changed: already there (returned as it is), or not allowed (raised); only an order that moved
    # between the two statements takes the locked path.
    if found is None:
        raise _not_found(order_id)
    order, now = found
    if order.transition(to, now, reason) is order:
        return order
    with uow_factory() as uow:
        found = uow.orders.lock(order_id)
        if found is None:
            raise _not_found(order_id)
        order, now = found
        updated = order.transition(to, now, reason)
        if updated is order:
            return order
        stored = uow.orders.save(updated)
        uow.commit()
    log.info("order moved", extra={"order_id": order_id, "from_status": str(order.status), "to_status": str(to)})
    return stored


# --- transfers ---------------------------------------------------------------------------------------------------

def create_transfer(uow_factory: UowFactory, cmd: CreateTransfer) -> tuple[Transfer, bool]:
    """Create a PENDING_OTP transfer; idempotent on transfer_id. Returns the transfer and whether it was created
    now. The seat's unique index, not a prior read, decides between concurrent offers of one seat."""
    with uow_factory() as uow:
        transfer = uow.transfers.add(cmd)
        created = transfer is not None
        if not created:
            transfer = uow.transfers.get(cmd.transfer_id)
        uow.commit()
    if transfer is None:
        raise TransferAlreadyOpen(f"seat {cmd.seat_id} already has an open transfer")
    if not created and not transfer.matches(cmd):
        raise TransferConflict(f"transfer {cmd.transfer_id} already exists with different details")
    if created:
        log.info("transfer created", extra={"transfer_id": cmd.transfer_id, "seat_id": cmd.seat_id})
    return transfer, created


def get_transfer(uow_factory: UowFactory, transfer_id: str) -> Transfer:
    transfer_id = _checked_id(transfer_id, _transfer_not_found)
    with uow_factory(autocommit=True) as uow:
        transfer = uow.transfers.get(transfer_id)
    if transfer is None:
        raise _transfer_not_found(transfer_id)
    return transfer


def list_transfers(uow_factory: UowFactory, user_id: str | None, seat_id: str | None,
                   statuses: list[TransferStatus] | None, limit: int, offset: int,
                   event_id: str | None = None) -> list[Transfer]:
    with uow_factory(autocommit=True) as uow:
        return uow.transfers.list(user_id, seat_id, statuses, limit, offset, event_id)


def stale_transfers(uow_factory: UowFactory, grace_seconds: int, limit: int) -> list[Transfer]:
    with uow_factory(autocommit=True) as uow:
        return uow.transfers.stale(timedelta(seconds=grace_seconds), limit)


def _change_transfer(uow_factory: UowFactory, transfer_id: str, change: Callable[[Transfer, datetime], Transfer],
                     *, user_id: str | None = None, expire_lapsed: bool = False) -> Transfer:
    """Lock the transfer, apply `change` (a domain rule, given the database clock) and store the result when it
    differs. With `user_id`, only the seller or the buyer may ask. With `expire_lapsed`, a lapsed transfer nobody
    began confirming is expired on the way and refused with TRANSFER_EXPIRED."""
    transfer_id = _checked_id(transfer_id, _transfer_not_found)
    with uow_factory() as uow:
        found = uow.transfers.lock(transfer_id)
        # A transfer between two other fans is reported exactly like a missing one.
        if found is None or (user_id is not None and not found[0].is_party(user_id)):
            raise _transfer_not_found(transfer_id)
        transfer, now = found
        if expire_lapsed and transfer.lapsed_unconfirmed(now):
            # Nothing was charged, so EXPIRED is its only end: record it rather than leave it to the recovery pass.
            uow.transfers.save(transfer.transition(TransferStatus.EXPIRED, now, "not confirmed in time"))
            uow.commit()
            log.info("transfer expired", extra={"transfer_id": transfer_id})
            raise TransferExpired(f"this transfer expired at {utc_iso(transfer.expires_at)}")
        updated = change(transfer, now)
        if updated is transfer:
            return transfer
        stored = uow.transfers.save(updated)
        uow.commit()
    log.info("transfer changed", extra={"transfer_id": transfer_id, "from_status": str(transfer.status),
                                        "to_status": str(stored.status), "step": str(stored.step)})
    return stored


def begin_confirm(uow_factory: UowFactory, transfer_id: str, user_id: str) -> Transfer:
    """Mark a live PENDING_OTP transfer CONFIRMING before the buyer's debit is requested (a transfer already past
    that point comes back as it is)."""
    return _change_transfer(uow_factory, transfer_id, lambda t, now: t.begin_confirm(now), user_id=user_id,
                            expire_lapsed=True)


def transition_transfer(uow_factory: UowFactory, transfer_id: str, to: TransferStatus, reason: str | None = None,
                        release_at: datetime | None = None, resolution: str | None = None,
                        expected_step: TransferStep | None = None) -> Transfer:
    return _change_transfer(
        uow_factory, transfer_id,
        lambda t, now: t.transition(to, now, reason, release_at, resolution, expected_step),
        expire_lapsed=to in (TransferStatus.COMPLETED, TransferStatus.CANCELLED))


def begin_reverse(uow_factory: UowFactory, transfer_id: str) -> Transfer:
    """Mark a DISPUTED transfer REVERSING before the reversal's first call (a REVERSED one comes back as it is)."""
    return _change_transfer(uow_factory, transfer_id, lambda t, now: t.begin_reverse())


def mark_released(uow_factory: UowFactory, transfer_id: str) -> Transfer:
    """Record, once, that a COMPLETED transfer's proceeds were released to its seller."""
    return _change_transfer(uow_factory, transfer_id, lambda t, now: t.mark_released(now))


# --- events ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventSales:
    event_id: str
    orders_by_status: dict[str, int]
    revenue: int
    refunded: int
    seats_sold: int
    transfers_by_status: dict[str, int]


def _checked_event_id(event_id: str) -> str:
    try:
        return str(uuid.UUID(event_id))
    except ValueError:
        raise InvalidInput(f"event_id {event_id!r} is not a UUID") from None


def event_sales(uow_factory: UowFactory, event_id: str) -> EventSales:
    """The event's orders and transfers counted by status (every status, 0 when none), with its revenue (the
    CONFIRMED orders' amounts), what was refunded (the REFUNDED orders') and the seats of its CONFIRMED orders.
    Read in one snapshot, so the figures agree with each other."""
    event_id = _checked_event_id(event_id)
    with uow_factory() as uow:
        by_status = uow.orders.sales(event_id)
        transfers = uow.transfers.counts(event_id)
    none = (0, 0, 0)
    return EventSales(
        event_id=event_id,
        orders_by_status={s.value: by_status.get(s.value, none)[0] for s in OrderStatus},
        revenue=by_status.get(OrderStatus.CONFIRMED.value, none)[1],
        refunded=by_status.get(OrderStatus.REFUNDED.value, none)[1],
        seats_sold=by_status.get(OrderStatus.CONFIRMED.value, none)[2],
        transfers_by_status={s.value: transfers.get(s.value, 0) for s in TransferStatus})


def notify_event_cancelled(uow_factory: UowFactory, event_id: str, reason: str, event_name: str | None) -> int:
    """Write, in one transaction, an EVENT_CANCELLED notification for each fan of the event who has none yet; the
    number of the event's notifications (a repeat adds only for fans who became one since)."""
    event_id = _checked_event_id(event_id)
    with uow_factory() as uow:
        notified = uow.orders.notify_event_cancelled(event_id, reason, event_name)
        uow.commit()
    log.info("event cancellation notices written", extra={"event_id": event_id, "notified": notified})
    return notified
