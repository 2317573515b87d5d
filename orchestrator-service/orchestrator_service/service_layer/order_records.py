"""What the order sagas (purchase, refund) and the admin routes share about orders: finding one for its owner, how one
is shown, and which ones recovery looks at."""
from __future__ import annotations

from trcommon.errors import AppError, NotFound
from trcontracts.orders import Order, OrderError

from ..bootstrap import Container

NO_SUCH_ORDER = "no such order"


def order_view(order: Order) -> dict:
    fields = order.model_dump(mode="json")
    return {k: fields[k] for k in ("order_id", "seat_id", "seat_ids", "event_id", "amount", "status", "held_until",
                                   "created_at", "updated_at", "failure_reason")}


def stale_orders(c: Container) -> list[Order]:
    """The orders the recovery pass looks at, for every saga that lives on an order."""
    return c.orders.stale(c.settings.recovery_grace_seconds, c.settings.recovery_batch)


def find_order(c: Container, order_id: str, user_id: str | None) -> Order:
    """The order, if it is `user_id`'s (None: anyone's, for an admin). Someone else's and a missing one get the very
    same 404 (code and message): whether an order id exists is not the caller's to learn."""
    try:
        order = c.orders.get(order_id)
    except AppError as err:
        if err.code != OrderError.ORDER_NOT_FOUND:
            raise
        order = None
    if order is None or (user_id is not None and order.user_id != user_id):
        raise NotFound(NO_SUCH_ORDER, code=OrderError.ORDER_NOT_FOUND)
    return order
