"""The running system's notification consumer (user-notification-consumer): a notification published on the
`notifications` exchange reaches the fan once, as an SMS in sms_outbox and an e-mail in email_outbox, however often
it is published."""
import json
import uuid
from datetime import datetime, timezone

import pika
import sqlalchemy as sa

from e2e_support import register_and_login, wait_until
from trcontracts.notifications import EXCHANGE, Notification, NotificationKind, routing_key


def _publish(amqp_url: str, notification: Notification) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish(EXCHANGE, routing_key(notification.kind), notification.model_dump_json().encode(),
                         pika.BasicProperties(content_type="application/json",
                                              delivery_mode=pika.DeliveryMode.Persistent), mandatory=True)
    finally:
        conn.close()


def _outboxes(engines, fan) -> tuple[list, list]:
    with engines["user-service"].connect() as conn:
        sms = conn.execute(sa.text("SELECT body FROM sms_outbox WHERE phone = :p AND body NOT LIKE '%code%'"),
                           {"p": fan.phone}).scalars().all()
        emails = conn.execute(sa.text("SELECT subject FROM email_outbox WHERE user_id = :u"),
                              {"u": fan.user_id}).scalars().all()
    return sms, emails


def test_a_published_notification_reaches_the_fan_once_by_sms_and_email(api, engines, amqp_url):
    fan = register_and_login(api)
    order_id = str(uuid.uuid4())
    notification = Notification(
        notification_id=f"order:{order_id}:confirmed", kind=NotificationKind.ORDER_CONFIRMED,
        user_id=uuid.UUID(fan.user_id), occurred_at=datetime.now(timezone.utc),
        data={"order_id": order_id, "event_id": str(uuid.uuid4()), "seat_ids": [str(uuid.uuid4())], "amount": 50,
              "event_name": "End to End Live"})
    for _ in range(2):
        _publish(amqp_url, notification)
    wait_until(lambda: all(_outboxes(engines, fan)), 15, what="the fan's SMS and e-mail")
    sms, emails = _outboxes(engines, fan)
    assert sms == [f"TicketRemaster: order {order_id[:8]} confirmed — 1 seat for End to End Live, 50 credits. "
                   "Your tickets are in the app."]
    assert emails == [f"TicketRemaster: Order {order_id[:8]} confirmed"]
    with engines["user-service"].connect() as conn:
        stored = conn.execute(sa.text("SELECT data FROM notifications WHERE user_id = :u"),
                              {"u": fan.user_id}).scalars().all()
    assert stored == [json.loads(notification.model_dump_json())["data"]]
