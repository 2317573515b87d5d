"""The notifications order-service writes to its outbox (trcontracts.notifications), in the transaction of the
change that causes them, and the routes for an event's organizer: its orders and transfers, its sales, and the
notices of its cancellation. Against real PostgreSQL through the Flask app."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from order_service.adapters.tables import outbox
from trcontracts.notifications import EXCHANGE, Notification, NotificationKind, routing_key


def in_minutes(minutes: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).isoformat()


def new_order(client, **overrides) -> dict:
    body = {"order_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()), "amount": 50, "held_until": in_minutes(5), **overrides}
    resp = client.post("/internal/orders", json=body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def move(client, order, to, reason=None, status=200) -> dict:
    body = {"to": to} if reason is None else {"to": to, "reason": reason}
    resp = client.post(f"/internal/orders/{order['order_id']}/transition", json=body)
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def new_transfer(client, **overrides) -> dict:
    body = {"transfer_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()),
            "seller_user_id": str(uuid.uuid4()), "buyer_user_id": str(uuid.uuid4()), "amount": 80,
            "face_value": 100, "expires_at": in_minutes(15), **overrides}
    resp = client.post("/internal/transfers", json=body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def move_transfer(client, transfer, to, status=200, **fields) -> dict:
    resp = client.post(f"/internal/transfers/{transfer['transfer_id']}/transition", json={"to": to, **fields})
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def complete(client, transfer) -> dict:
    resp = client.post(f"/internal/transfers/{transfer['transfer_id']}/begin-confirm",
                       json={"user_id": transfer["buyer_user_id"]})
    assert resp.status_code == 200
    return move_transfer(client, transfer, "COMPLETED", release_at=in_minutes(60))


def sql(container, statement: str, **params):
    with container.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def notes(container, prefix: str) -> dict[str, tuple[str, Notification]]:
    """The outbox rows whose message id starts with `prefix`: {message_id: (routing key, body)}; each body is checked
    against the message contract, its id equal to the row's, on the notifications exchange."""
    with container.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox).where(outbox.c.message_id.startswith(prefix))).all()
    found = {}
    for row in rows:
        body = Notification.model_validate(row.body)
        assert body.notification_id == row.message_id and row.exchange == EXCHANGE
        assert row.routing_key == routing_key(body.kind)
        found[row.message_id] = (row.routing_key, body)
    return found


# --- orders ------------------------------------------------------------------------------------------------------

def test_confirming_an_order_writes_exactly_one_order_confirmed_for_its_fan(client, container):
    order = new_order(client, seat_ids=[str(uuid.uuid4()), str(uuid.uuid4())], seat_id=None, amount=120)
    prefix = f"order:{order['order_id']}:"
    assert notes(container, prefix) == {}                       # a PENDING order tells nobody
    moved = move(client, order, "CONFIRMED")
    found = notes(container, prefix)
    assert list(found) == [f"order:{order['order_id']}:confirmed"]
    key, body = found[f"order:{order['order_id']}:confirmed"]
    assert key == "notify.order_confirmed" and body.kind == NotificationKind.ORDER_CONFIRMED
    assert str(body.user_id) == order["user_id"]
    assert body.data == {"order_id": order["order_id"], "event_id": order["event_id"],
                         "seat_ids": order["seat_ids"], "amount": 120}
    assert body.occurred_at == datetime.fromisoformat(moved["updated_at"])
    move(client, order, "CONFIRMED")                            # a repeat: 200 unchanged, nothing more
    assert list(notes(container, prefix)) == [f"order:{order['order_id']}:confirmed"]


def test_a_refused_transition_writes_nothing(client, container):
    order = new_order(client)
    move(client, order, "REFUNDED", status=409)                 # PENDING cannot be refunded
    move(client, order, "EXPIRED", status=409)                  # the hold is live
    assert notes(container, f"order:{order['order_id']}:") == {}


def test_a_second_confirmed_order_of_a_seat_is_refused_and_tells_nobody(client, container):
    seat = str(uuid.uuid4())
    first, second = new_order(client, seat_id=seat), new_order(client, seat_id=seat)
    move(client, first, "CONFIRMED")
    move(client, second, "CONFIRMED", status=409)
    assert notes(container, f"order:{second['order_id']}:") == {}


def test_an_expired_hold_writes_hold_expired_without_an_amount(client, container):
    order = new_order(client, held_until=in_minutes(-1))
    move(client, order, "EXPIRED")
    (key, body), = notes(container, f"order:{order['order_id']}:").values()
    assert key == "notify.hold_expired" and body.notification_id == f"order:{order['order_id']}:expired"
    assert body.data == {"order_id": order["order_id"], "event_id": order["event_id"],
                         "seat_ids": order["seat_ids"]}


def test_an_order_expired_on_the_way_by_a_late_payment_writes_hold_expired(client, container):
    order = new_order(client, held_until=in_minutes(-1))
    resp = client.post(f"/internal/orders/{order['order_id']}/begin-payment", json={"user_id": order["user_id"]})
    assert resp.status_code == 410
    assert list(notes(container, f"order:{order['order_id']}:")) == [f"order:{order['order_id']}:expired"]


def test_a_refund_writes_refund_made_with_its_reason_and_a_refused_refund_confirms_nobody_again(client, container):
    refunded, kept = new_order(client), new_order(client)
    for order in (refunded, kept):
        move(client, order, "CONFIRMED")
        assert client.post(f"/internal/orders/{order['order_id']}/begin-refund").status_code == 200
    move(client, refunded, "REFUNDED", reason="event cancelled")
    move(client, kept, "CONFIRMED")                             # the refund was refused: the fan keeps the ticket
    found = notes(container, f"order:{refunded['order_id']}:")
    assert set(found) == {f"order:{refunded['order_id']}:confirmed", f"order:{refunded['order_id']}:refunded"}
    key, body = found[f"order:{refunded['order_id']}:refunded"]
    assert key == "notify.refund_made" and body.data["reason"] == "event cancelled" and body.data["amount"] == 50
    assert list(notes(container, f"order:{kept['order_id']}:")) == [f"order:{kept['order_id']}:confirmed"]


@pytest.mark.parametrize("to", ["CANCELLED", "FAILED"])
def test_an_order_cancelled_or_failed_tells_nobody(client, container, to):
    order = new_order(client)
    move(client, order, to, reason="event cancelled" if to == "CANCELLED" else None)
    assert notes(container, f"order:{order['order_id']}:") == {}


def test_a_notification_written_in_a_transaction_that_rolls_back_is_gone_with_it(container):
    from order_service.adapters.repository import OrderRepository
    from order_service.domain.model import CreateOrder, OrderStatus

    order_id = str(uuid.uuid4())
    with container.uow(autocommit=True) as uow:
        uow.orders.add(CreateOrder(order_id=order_id, user_id=str(uuid.uuid4()), seat_ids=(str(uuid.uuid4()),),
                                   event_id=str(uuid.uuid4()), amount=5,
                                   held_until=datetime.now(timezone.utc) + timedelta(minutes=5)))
    with container.uow() as uow:
        assert isinstance(uow.orders, OrderRepository)
        assert uow.orders.move(order_id, OrderStatus.CONFIRMED, None).status == OrderStatus.CONFIRMED
        assert len(notes_in(uow.conn, f"order:{order_id}:")) == 1   # written with the change…
        # …and rolled back with it (no commit)
    assert notes(container, f"order:{order_id}:") == {}


def notes_in(conn, prefix: str) -> list:
    return conn.execute(sa.select(outbox.c.message_id).where(outbox.c.message_id.startswith(prefix))).all()


# --- transfers ---------------------------------------------------------------------------------------------------

def test_an_offer_tells_the_buyer_and_a_repeated_create_tells_nobody_again(client, container):
    transfer = new_transfer(client)
    again = client.post("/internal/transfers", json={k: transfer[k] for k in (
        "transfer_id", "seat_id", "event_id", "seller_user_id", "buyer_user_id", "amount", "face_value",
        "expires_at")})
    assert again.status_code == 200
    found = notes(container, f"transfer:{transfer['transfer_id']}:")
    mid = f"transfer:{transfer['transfer_id']}:offered:{transfer['buyer_user_id']}"
    assert list(found) == [mid]
    key, body = found[mid]
    assert key == "notify.transfer_offered" and str(body.user_id) == transfer["buyer_user_id"]
    assert body.data == {"transfer_id": transfer["transfer_id"], "seat_id": transfer["seat_id"],
                         "event_id": transfer["event_id"], "amount": 80,
                         "seller_user_id": transfer["seller_user_id"]}


def test_an_offer_refused_because_the_seat_is_already_offered_tells_nobody(client, container):
    first = new_transfer(client)
    resp = client.post("/internal/transfers", json={
        "transfer_id": str(uuid.uuid4()), "seat_id": first["seat_id"], "event_id": first["event_id"],
        "seller_user_id": first["seller_user_id"], "buyer_user_id": str(uuid.uuid4()), "amount": 1,
        "face_value": 1, "expires_at": in_minutes(5)})
    assert resp.status_code == 409
    with container.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(outbox).where(
            outbox.c.body["data"]["seat_id"].astext == first["seat_id"])).scalar_one()
    assert count == 1


def test_a_completed_transfer_tells_seller_and_buyer_once_even_when_a_dispute_closes_it_again(client, container):
    transfer = complete(client, new_transfer(client))
    move_transfer(client, transfer, "DISPUTED", reason="not the seat offered")
    move_transfer(client, transfer, "COMPLETED", resolution="it was")
    found = notes(container, f"transfer:{transfer['transfer_id']}:")
    tid, seller, buyer = transfer["transfer_id"], transfer["seller_user_id"], transfer["buyer_user_id"]
    assert set(found) == {f"transfer:{tid}:offered:{buyer}", f"transfer:{tid}:completed:{seller}",
                          f"transfer:{tid}:completed:{buyer}"}
    for user in (seller, buyer):
        key, body = found[f"transfer:{tid}:completed:{user}"]
        assert key == "notify.transfer_completed" and str(body.user_id) == user
        assert body.data == {"transfer_id": tid, "seat_id": transfer["seat_id"], "event_id": transfer["event_id"],
                             "amount": 80}


def test_a_reversed_transfer_tells_both(client, container):
    transfer = complete(client, new_transfer(client))
    move_transfer(client, transfer, "DISPUTED", reason="not the seat offered")
    assert client.post(f"/internal/transfers/{transfer['transfer_id']}/begin-reverse").status_code == 200
    move_transfer(client, transfer, "REVERSED", expected_step="REVERSING")
    found = notes(container, f"transfer:{transfer['transfer_id']}:reversed:")
    assert {str(body.user_id) for _, body in found.values()} == {transfer["seller_user_id"],
                                                                  transfer["buyer_user_id"]}
    assert {key for key, _ in found.values()} == {"notify.transfer_reversed"}


def test_a_cancelled_transfer_tells_the_buyer_why_and_an_expired_one_tells_nobody(client, container):
    cancelled, lapsed = new_transfer(client), new_transfer(client)
    move_transfer(client, cancelled, "CANCELLED", reason="event cancelled")
    sql(container, "UPDATE transfers SET expires_at = now() - interval '1 minute' WHERE transfer_id = :id",
        id=lapsed["transfer_id"])
    move_transfer(client, lapsed, "EXPIRED")
    found = notes(container, f"transfer:{cancelled['transfer_id']}:cancelled:")
    (key, body), = found.values()
    assert key == "notify.transfer_cancelled" and str(body.user_id) == cancelled["buyer_user_id"]
    assert body.data == {"transfer_id": cancelled["transfer_id"], "seat_id": cancelled["seat_id"],
                         "event_id": cancelled["event_id"], "reason": "event cancelled"}
    assert set(notes(container, f"transfer:{lapsed['transfer_id']}:")) == {
        f"transfer:{lapsed['transfer_id']}:offered:{lapsed['buyer_user_id']}"}


def test_a_refused_transfer_transition_writes_nothing(client, container):
    transfer = new_transfer(client)
    move_transfer(client, transfer, "COMPLETED", status=409, release_at=in_minutes(60))   # not CONFIRMING
    move_transfer(client, transfer, "REVERSED", status=409)
    assert list(notes(container, f"transfer:{transfer['transfer_id']}:")) == [
        f"transfer:{transfer['transfer_id']}:offered:{transfer['buyer_user_id']}"]


# --- an event's records ------------------------------------------------------------------------------------------

def test_an_events_orders_are_listed_oldest_first_filtered_by_a_status_list_and_paginated(client):
    event = str(uuid.uuid4())
    made = [new_order(client, event_id=event) for _ in range(4)]
    new_order(client)                                           # another event's
    move(client, made[1], "CONFIRMED")
    move(client, made[2], "FAILED")
    listed = client.get(f"/internal/orders?event_id={event}").get_json()["orders"]
    assert [o["order_id"] for o in listed] == [o["order_id"] for o in made]
    some = client.get(f"/internal/orders?event_id={event}&status=CONFIRMED,FAILED").get_json()["orders"]
    assert [o["order_id"] for o in some] == [made[1]["order_id"], made[2]["order_id"]]
    page = client.get(f"/internal/orders?event_id={event}&limit=2&offset=2").get_json()["orders"]
    assert [o["order_id"] for o in page] == [made[2]["order_id"], made[3]["order_id"]]
    assert client.get(f"/internal/orders?event_id={event}&status=CONFIRMED,NOPE").status_code == 400
    assert client.get("/internal/orders?event_id=not-a-uuid").status_code == 400
    assert client.get("/internal/orders?status=CONFIRMED").status_code == 400   # whose?


def test_an_events_transfers_are_listed_oldest_first_and_filtered(client):
    event = str(uuid.uuid4())
    made = [new_transfer(client, event_id=event) for _ in range(3)]
    move_transfer(client, made[0], "CANCELLED", reason="changed my mind")
    listed = client.get(f"/internal/transfers?event_id={event}").get_json()["transfers"]
    assert [t["transfer_id"] for t in listed] == [t["transfer_id"] for t in made]
    open_ = client.get(f"/internal/transfers?event_id={event}&status=PENDING_OTP").get_json()["transfers"]
    assert [t["transfer_id"] for t in open_] == [made[1]["transfer_id"], made[2]["transfer_id"]]


def test_an_events_sales_count_orders_and_transfers_by_status_with_revenue_refunds_and_seats(client):
    event = str(uuid.uuid4())
    two_seats = new_order(client, event_id=event, seat_ids=[str(uuid.uuid4()), str(uuid.uuid4())], seat_id=None,
                          amount=200)
    one_seat, refunded, pending = (new_order(client, event_id=event, amount=a) for a in (70, 30, 10))
    new_order(client, amount=999)                               # another event's
    for order in (two_seats, one_seat, refunded):
        move(client, order, "CONFIRMED")
    move(client, refunded, "REFUNDED", reason="asked")
    complete(client, new_transfer(client, event_id=event))
    new_transfer(client, event_id=event)
    resp = client.get(f"/internal/events/{event}/sales")
    assert resp.status_code == 200
    sales = resp.get_json()
    assert sales["event_id"] == event
    assert sales["orders_by_status"] == {"PENDING": 1, "CONFIRMED": 2, "FAILED": 0, "EXPIRED": 0, "REFUNDED": 1,
                                         "REFUNDING": 0, "CANCELLED": 0}
    assert (sales["revenue"], sales["refunded"], sales["seats_sold"]) == (270, 30, 3)
    assert sales["transfers_by_status"] == {"PENDING_OTP": 1, "COMPLETED": 1, "DISPUTED": 0, "REVERSED": 0,
                                            "CANCELLED": 0, "EXPIRED": 0}
    empty = client.get(f"/internal/events/{uuid.uuid4()}/sales").get_json()
    assert empty["revenue"] == 0 and set(empty["orders_by_status"].values()) == {0}
    assert client.get("/internal/events/not-a-uuid/sales").status_code == 400


def test_cancellation_notices_go_once_to_each_fan_holding_or_offered_a_seat_and_a_repeat_adds_nothing(
        client, container):
    event = str(uuid.uuid4())
    paid, pending, refunding, refunded, failed, expired = (new_order(client, event_id=event) for _ in range(6))
    twice = new_order(client, event_id=event, user_id=paid["user_id"])          # the same fan, two orders
    move(client, paid, "CONFIRMED")
    move(client, twice, "CONFIRMED")
    move(client, refunding, "CONFIRMED")
    assert client.post(f"/internal/orders/{refunding['order_id']}/begin-refund").status_code == 200
    move(client, refunded, "CONFIRMED")
    move(client, refunded, "REFUNDED", reason="asked")
    move(client, failed, "FAILED")
    sql(container, "UPDATE orders SET held_until = now() - interval '1 minute' WHERE order_id = :id",
        id=expired["order_id"])
    move(client, expired, "EXPIRED")
    # A seat sold on twice: its holder is the buyer of the latest transfer; the first buyer holds nothing now.
    seat = paid["seat_id"]
    first_buyer, holder = str(uuid.uuid4()), str(uuid.uuid4())
    complete(client, new_transfer(client, event_id=event, seat_id=seat, seller_user_id=paid["user_id"],
                                  buyer_user_id=first_buyer))
    complete(client, new_transfer(client, event_id=event, seat_id=seat, seller_user_id=first_buyer,
                                  buyer_user_id=holder))
    offered = new_transfer(client, event_id=event, seller_user_id=paid["user_id"])
    withdrawn = new_transfer(client, event_id=event)
    move_transfer(client, withdrawn, "CANCELLED", reason="changed my mind")
    new_order(client, event_id=str(uuid.uuid4()))               # another event's fan

    resp = client.post(f"/internal/events/{event}/cancellation-notices",
                       json={"reason": "the venue flooded", "event_name": "Spring Gala"})
    assert resp.status_code == 200, resp.get_json()
    fans = {paid["user_id"], pending["user_id"], refunding["user_id"], holder, offered["buyer_user_id"]}
    assert resp.get_json() == {"notified": len(fans)}
    found = notes(container, f"event:{event}:cancelled:")
    assert set(found) == {f"event:{event}:cancelled:{fan}" for fan in fans}
    for key, body in found.values():
        assert key == "notify.event_cancelled" and body.kind == NotificationKind.EVENT_CANCELLED
        assert body.data == {"event_id": event, "reason": "the venue flooded", "event_name": "Spring Gala"}

    # A repeat (the saga retried) adds nothing and answers the same count, even after orders have moved on.
    move(client, paid, "REFUNDED", reason="event cancelled")
    again = client.post(f"/internal/events/{event}/cancellation-notices", json={"reason": "the venue flooded"})
    assert again.get_json() == {"notified": len(fans)}
    assert set(notes(container, f"event:{event}:cancelled:")) == set(found)
    # A fan who joined since is told too (and only they).
    new_order(client, event_id=event)
    third = client.post(f"/internal/events/{event}/cancellation-notices", json={"reason": "the venue flooded"})
    assert third.get_json() == {"notified": len(fans) + 1}


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "x" * 501}, {"reason": 5},
                                  {"reason": "ok", "event_name": ""}])
def test_cancellation_notices_refuse_a_bad_body_with_400_and_write_nothing(client, container, body):
    event = str(uuid.uuid4())
    new_order(client, event_id=event)
    resp = client.post(f"/internal/events/{event}/cancellation-notices", json=body)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_INPUT"
    assert notes(container, f"event:{event}:") == {}


def test_cancellation_notices_of_a_malformed_event_id_are_400(client):
    resp = client.post("/internal/events/nope/cancellation-notices", json={"reason": "x"})
    assert resp.status_code == 400


def test_an_event_without_fans_notifies_nobody(client):
    resp = client.post(f"/internal/events/{uuid.uuid4()}/cancellation-notices", json={"reason": "x"})
    assert resp.status_code == 200 and resp.get_json() == {"notified": 0}
