"""Use cases of order-service. Each owns its transaction; writes lock the order row first, so concurrent
callers of one order are decided one after the other by the domain rules."""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Callable

from ..domain.model import (CreateOrder, HoldExpired, Order, OrderConflict, OrderNotFound, OrderStatus,
                            utc_iso)
from .unit_of_work import OrderUnitOfWork

log = logging.getLogger("order_service")

UowFactory = Callable[[], OrderUnitOfWork]


def _not_found(order_id: str) -> OrderNotFound:
    return OrderNotFound(f"no order {order_id}")


def _checked_id(order_id: str) -> str:
    """A path id that is not a UUID names no order: 404 without asking the database."""
    try:
        return str(uuid.UUID(order_id))
    except ValueError:
        raise _not_found(order_id) from None


def create_order(uow_factory: UowFactory, cmd: CreateOrder) -> tuple[Order, bool]:
    """Create a PENDING order; idempotent on order_id. Returns the order and whether it was created now."""
    with uow_factory() as uow:
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
    with uow_factory() as uow:
        order = uow.orders.get(order_id)
    if order is None:
        raise _not_found(order_id)
    return order


def list_orders(uow_factory: UowFactory, user_id: str | None, seat_id: str | None, status: OrderStatus | None,
                limit: int, offset: int) -> list[Order]:
    with uow_factory() as uow:
        return uow.orders.list(user_id, seat_id, status, limit, offset)


def stale_orders(uow_factory: UowFactory, grace_seconds: int, limit: int) -> list[Order]:
    with uow_factory() as uow:
        return uow.orders.stale(timedelta(seconds=grace_seconds), limit)


def begin_payment(uow_factory: UowFactory, order_id: str, user_id: str) -> Order:
    """Mark a live PENDING order CHARGING before its debit is requested (CONFIRMED orders come back as they are).
    A lapsed order with no charge started is expired on the way, then refused with HOLD_EXPIRED."""
    order_id = _checked_id(order_id)
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


def transition_order(uow_factory: UowFactory, order_id: str, to: OrderStatus, reason: str | None) -> Order:
    order_id = _checked_id(order_id)
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
