"""The notification messages: what happened to a fan, published on RabbitMQ by the service whose transaction made it
happen (through its outbox: a message is published once that transaction has committed, never for one that rolled
back) and delivered by user-service's notification consumer to the fan's phone (the SMS backend) and e-mail.

One message per fan per thing that happened. `notification_id` names that pair (`order:{order_id}:confirmed`,
`transfer:{transfer_id}:completed:{user_id}`, `event:{event_id}:cancelled:{user_id}`): the consumer delivers each id
once, however often the message is redelivered or republished.

Exchange `notifications` (topic), routing key `notify.{kind}` in lower case (`notify.order_confirmed`); queue
`notification.queue` (rabbitmq/definitions.json); a message the consumer cannot read is parked in
`notification.parking.queue`.
"""
from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, Field

from .base import UtcTimestamp

EXCHANGE = "notifications"
QUEUE = "notification.queue"
PARKING_QUEUE = "notification.parking.queue"


class NotificationKind(StrEnum):
    ORDER_CONFIRMED = "ORDER_CONFIRMED"          # data: order_id, event_id, seat_ids, amount
    HOLD_EXPIRED = "HOLD_EXPIRED"                # data: order_id, event_id, seat_ids
    REFUND_MADE = "REFUND_MADE"                  # data: order_id, event_id, seat_ids, amount, reason
    TRANSFER_OFFERED = "TRANSFER_OFFERED"        # to the buyer; data: transfer_id, seat_id, event_id, amount, seller_user_id
    TRANSFER_COMPLETED = "TRANSFER_COMPLETED"    # to seller and buyer; data: transfer_id, seat_id, event_id, amount
    TRANSFER_REVERSED = "TRANSFER_REVERSED"      # to seller and buyer; data: transfer_id, seat_id, event_id, amount
    TRANSFER_CANCELLED = "TRANSFER_CANCELLED"    # to the buyer; data: transfer_id, seat_id, event_id, reason
    EVENT_CANCELLED = "EVENT_CANCELLED"          # to every fan holding or owning a seat of it; data: event_id, reason


def routing_key(kind: NotificationKind) -> str:
    return f"notify.{kind.value.lower()}"


class Notification(BaseModel):
    """The body of one message (JSON). `data` holds the kind's fields listed above (ids as strings, amounts as
    integer credits, `seat_ids` as a list of strings)."""

    notification_id: str = Field(min_length=1, max_length=200)
    kind: NotificationKind
    user_id: uuid.UUID
    occurred_at: UtcTimestamp
    data: dict[str, str | int | list[str] | None] = Field(default_factory=dict)
