"""The notifications order-service's changes cause, as SQL that writes them into the outbox in the same statement
or transaction as the change (trcommon.outbox; the message contract is trcontracts.notifications).

Each builder selects the outbox's four columns (message_id, exchange, routing_key, body) from a source of order or
transfer rows: the CTE of rows an UPDATE just changed (the hot path: one statement), or the table itself. Only rows
in the status the notice is about are selected, so a source row in another status writes nothing.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.sql import FromClause

from trcommon.outbox import insert_from
from trcontracts.notifications import EXCHANGE, NotificationKind, routing_key

from ..domain.model import EVENT_CANCELLED_ORDER_STATUSES, ORDER_NOTICES, TRANSFER_NOTICES, OrderStatus, TransferStatus
from .tables import orders, outbox, transfers


def _text(value: str) -> sa.ColumnElement:
    # Typed, so that PostgreSQL knows the parameter's type inside jsonb_build_object's variadic "any".
    return sa.cast(sa.literal(value), sa.Text)


def _object(**fields: sa.ColumnElement) -> sa.ColumnElement:
    args: list = []
    for name, value in fields.items():
        args += [_text(name), value]
    return sa.func.jsonb_build_object(*args)


def _row(message_id: sa.ColumnElement, kind: NotificationKind, user_id: sa.ColumnElement,
         occurred_at: sa.ColumnElement, data: sa.ColumnElement) -> list[sa.ColumnElement]:
    body = _object(notification_id=message_id, kind=_text(kind.value), user_id=user_id, occurred_at=occurred_at,
                   data=data)
    return [message_id, _text(EXCHANGE), _text(routing_key(kind)), body]


def _id(*parts: sa.ColumnElement | str) -> sa.ColumnElement:
    return sa.func.concat(*(_text(p) if isinstance(p, str) else p for p in parts))


def order_notice(source: FromClause, status: OrderStatus) -> sa.Select:
    """The notice of `status` (ORDER_NOTICES) for each order of `source` in that status."""
    notice = ORDER_NOTICES[status]
    c = source.c
    data = {"order_id": c.order_id, "event_id": c.event_id, "seat_ids": sa.func.to_jsonb(c.seat_ids)}
    if notice.kind != NotificationKind.HOLD_EXPIRED:
        data["amount"] = c.amount
    if notice.kind == NotificationKind.REFUND_MADE:
        data["reason"] = c.failure_reason
    message_id = _id("order:", c.order_id, f":{notice.word}")
    return (sa.select(*_row(message_id, notice.kind, c.user_id, c.updated_at, _object(**data)))
            .where(c.status == status.value))


def transfer_notices(source: FromClause, status: TransferStatus) -> list[sa.Select]:
    """The notices of `status` (TRANSFER_NOTICES), one select per recipient, for each transfer of `source` in it."""
    notice = TRANSFER_NOTICES[status]
    c = source.c
    data = {"transfer_id": c.transfer_id, "seat_id": c.seat_id, "event_id": c.event_id}
    if notice.kind != NotificationKind.TRANSFER_CANCELLED:
        data["amount"] = c.amount
    if notice.kind == NotificationKind.TRANSFER_OFFERED:
        data["seller_user_id"] = c.seller_user_id
    if notice.kind == NotificationKind.TRANSFER_CANCELLED:
        data["reason"] = c.failure_reason
    selects = []
    for recipient in notice.recipients:
        user = c.seller_user_id if recipient == "seller" else c.buyer_user_id
        message_id = _id("transfer:", c.transfer_id, f":{notice.word}:", user)
        selects.append(sa.select(*_row(message_id, notice.kind, user, c.updated_at, _object(**data)))
                       .where(c.status == status.value))
    return selects


def with_order_notice(move: sa.Update, status: OrderStatus) -> sa.Select:
    """`move` (an UPDATE of orders … RETURNING every column) and the notice of the orders it moved to `status`,
    as one statement that returns what `move` returns."""
    changed = move.cte("changed")
    written = insert_from(outbox, order_notice(changed, status)).returning(outbox.c.id).cte("noticed")
    return sa.select(changed).add_cte(written)


def order_notices_of(order_id: sa.ColumnElement) -> sa.Insert:
    """Write the notice of the status the order is in now, if that status has one (an existing one is kept)."""
    return insert_from(outbox, sa.union_all(*(order_notice(orders, status).where(orders.c.order_id == order_id)
                                              for status in ORDER_NOTICES)))


def transfer_notices_of(transfer_id: sa.ColumnElement) -> sa.Insert:
    """Write the notices of the status the transfer is in now, if that status has any (existing ones are kept)."""
    return insert_from(outbox, sa.union_all(*(select.where(transfers.c.transfer_id == transfer_id)
                                              for status in TRANSFER_NOTICES
                                              for select in transfer_notices(transfers, status))))


def event_cancelled_notices(event_id: sa.ColumnElement, reason: sa.ColumnElement,
                            event_name: sa.ColumnElement) -> sa.Insert:
    """One EVENT_CANCELLED notice per fan of the event now (EVENT_CANCELLED_NOTICES in trcontracts.orders)."""
    o, t = orders.c, transfers.c
    ordered = sa.select(o.user_id.label("user_id")).where(
        o.event_id == event_id, sa.or_(*(o.status == s.value for s in EVENT_CANCELLED_ORDER_STATUSES)))
    offered = sa.select(t.buyer_user_id).where(t.event_id == event_id,
                                               t.status == TransferStatus.PENDING_OTP.value)
    # The holder of a seat transferred on is the buyer of its latest completed (or disputed) transfer.
    latest = (sa.select(t.buyer_user_id.label("holder"))
              .where(t.event_id == event_id, sa.or_(t.status == TransferStatus.COMPLETED.value,
                                                    t.status == TransferStatus.DISPUTED.value))
              .ext(distinct_on(t.seat_id)).order_by(t.seat_id, t.completed_at.desc(), t.created_at.desc()).subquery())
    fans = sa.union(ordered, offered, sa.select(latest.c.holder)).subquery("fans")
    kind = NotificationKind.EVENT_CANCELLED
    message_id = _id("event:", sa.cast(event_id, sa.Text), ":cancelled:", fans.c.user_id)
    data = _object(event_id=sa.cast(event_id, sa.Text), reason=reason, event_name=event_name)
    return insert_from(outbox, sa.select(*_row(message_id, kind, fans.c.user_id, sa.func.now(), data)))


def event_cancelled_count(event_id: sa.ColumnElement) -> sa.Select:
    """How many EVENT_CANCELLED notices the event has (served by ix_outbox_event_cancelled)."""
    prefix = _id("event:", sa.cast(event_id, sa.Text), ":cancelled:%")
    return (sa.select(sa.func.count()).select_from(outbox)
            .where(outbox.c.routing_key == routing_key(NotificationKind.EVENT_CANCELLED),
                   outbox.c.message_id.like(prefix)))
