"""Notifications leave order-service through its outbox: a purchase and an abandoned hold each write their fan's
message in the transaction of the change, and the order-outbox-relay process publishes it to the notifications
exchange (a row is marked published only once the broker confirmed it, routed to notification.queue)."""
import sqlalchemy as sa

from e2e_support import log_entries, register_and_login, topup, wait_until


def outbox_row(engines, message_id: str) -> dict | None:
    with engines["order-service"].connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM outbox WHERE message_id = :m"), {"m": message_id}).mappings().first()
    return dict(row) if row else None


def published(engines, message_id: str) -> bool:
    row = outbox_row(engines, message_id)
    return row is not None and row["published_at"] is not None


def test_a_purchase_and_an_abandoned_hold_are_each_published_once_by_the_relay(api, fresh_event, engines):
    ev = fresh_event(seats=2, price=40)
    fan = register_and_login(api)
    topup(api, fan.user_id, 100)
    bought = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).json()["order_id"]
    assert api.post("/pay", fan.token, json={"order_id": bought}).status_code == 200
    abandoned = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[1]}).json()["order_id"]

    wait_until(lambda: published(engines, f"order:{bought}:confirmed"), 10, what="ORDER_CONFIRMED published")
    row = outbox_row(engines, f"order:{bought}:confirmed")
    assert row["routing_key"] == "notify.order_confirmed" and row["body"]["user_id"] == fan.user_id
    assert row["body"]["data"] == {"order_id": bought, "event_id": ev.event_id, "seat_ids": [ev.seat_ids[0]],
                                   "amount": 40}
    # The hold lapses (3 s here) and its order expires: the fan hears of it.
    wait_until(lambda: published(engines, f"order:{abandoned}:expired"), 20, what="HOLD_EXPIRED published")
    assert outbox_row(engines, f"order:{abandoned}:confirmed") is None
    assert any(e.get("message") == "outbox relay started" for e in log_entries("order-outbox-relay"))
