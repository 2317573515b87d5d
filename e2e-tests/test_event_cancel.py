"""Cancelling an event: every fan who paid is refunded once, every hold ends, every transfer waiting for its codes is
cancelled, nobody can buy a seat of it afterwards, and each fan hears once about each thing that happened to them
(and about nothing that was rolled back)."""
import time
from collections import Counter

import sqlalchemy as sa

from e2e_support import balance, ledger_refs, login, register_and_login, seat_row, topup
from test_admin import admin_token, grid_event, seat_map, venue_with_halls

SETTLE_SECONDS = 20


def kinds(api, fan) -> Counter:
    r = api.get("/me/notifications", fan.token, params={"limit": 200})
    assert r.status_code == 200, r.text
    return Counter(n["kind"] for n in r.json()["notifications"])


def wait_for_kinds(api, fan, expected: Counter) -> Counter:
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        got = kinds(api, fan)
        if got == expected:
            return got
        time.sleep(0.2)
    return kinds(api, fan)


def buy(api, fan, seat_ids) -> dict:
    order = api.post("/reserve", fan.token, json={"seat_ids": seat_ids})
    assert order.status_code == 201, order.text
    r = api.post("/pay", fan.token, json={"order_id": order.json()["order_id"]})
    assert r.status_code == 200, r.text
    return order.json()


def a_busy_event(api, engines):
    """An event on sale with: two fans who paid (one for two seats), a paid ticket offered to another fan (a transfer
    waiting for its codes), and a fan holding a seat unpaid."""
    admin = admin_token(api)
    _venue, (hall, _other) = venue_with_halls(api, admin)
    event = grid_event(api, admin, hall["hall_id"], rows=2, per_row=5, price=40)["event"]
    seats = [s["seat_id"] for s in seat_map(api, event["event_id"])]
    payer, pair, holder, seller, buyer = (register_and_login(api) for _ in range(5))
    for fan in (payer, pair, holder, seller, buyer):
        topup(api, fan.user_id, 1000)
    paid = [buy(api, payer, seats[:1]), buy(api, pair, seats[1:3]), buy(api, seller, seats[3:4])]
    offer = api.post("/transfer/initiate", seller.token, json={"seat_id": seats[3], "buyer_email": buyer.email,
                                                               "amount": 30})
    assert offer.status_code == 201, offer.text
    # Last, and cancelled at once: the suite's holds last HOLD_TTL_SECONDS = 3 s.
    held = api.post("/reserve", holder.token, json={"seat_id": seats[4]})
    assert held.status_code == 201, held.text
    fans = {"payer": payer, "pair": pair, "holder": holder, "seller": seller, "buyer": buyer}
    return admin, event, seats, fans, paid, held.json(), offer.json()


def test_cancelling_an_event_refunds_every_fan_once_ends_every_hold_and_transfer_and_tells_each_fan_once(
        api, engines):
    admin, event, seats, fans, paid, held, offer = a_busy_event(api, engines)
    r = api.post(f"/admin/events/{event['event_id']}/cancel", admin, json={"reason": "the artist is ill"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["event"]["status"] == "CANCELLED" and answer["event"]["cancel_reason"] == "the artist is ill"
    assert sorted(answer["refunded_orders"]) == sorted(o["order_id"] for o in paid)
    assert answer["not_refunded"] == [] and answer["holds_ended"] == 1 and answer["transfers_cancelled"] == 1

    for name in ("payer", "pair", "holder", "seller", "buyer"):
        assert balance(api, fans[name].token) == 1000, name
    for order in paid:
        assert sorted(ledger_refs(engines, f"order:{order['order_id']}")) == [
            f"order:{order['order_id']}:debit", f"order:{order['order_id']}:refund"]
    statuses = {o["order_id"]: o["status"] for name in ("payer", "pair", "seller", "holder")
                for o in api.get("/me/orders", fans[name].token).json()["orders"]}
    assert statuses == {**{o["order_id"]: "REFUNDED" for o in paid}, held["order_id"]: "CANCELLED"}
    assert api.get(f"/transfers/{offer['transfer_id']}", fans["seller"].token).json()["status"] == "CANCELLED"
    for seat_id in seats:
        row = seat_row(engines, seat_id)
        assert (row["status"], row["owner_user_id"], row["hold_id"], row["on_sale"]) == (
            "AVAILABLE", None, None, False), row
    late = register_and_login(api)
    r = api.post("/reserve", late.token, json={"seat_id": seats[5]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "EVENT_NOT_ON_SALE", r.text
    assert api.get(f"/events/{event['event_id']}").json()["status"] == "CANCELLED"

    expected = {
        "payer": Counter(ORDER_CONFIRMED=1, REFUND_MADE=1, EVENT_CANCELLED=1),
        "pair": Counter(ORDER_CONFIRMED=1, REFUND_MADE=1, EVENT_CANCELLED=1),
        "holder": Counter(EVENT_CANCELLED=1),                     # a hold called off: no HOLD_EXPIRED
        "seller": Counter(ORDER_CONFIRMED=1, REFUND_MADE=1, EVENT_CANCELLED=1),
        "buyer": Counter(TRANSFER_OFFERED=1, TRANSFER_CANCELLED=1, EVENT_CANCELLED=1),
    }
    for name, want in expected.items():
        assert wait_for_kinds(api, fans[name], want) == want, name

    # Again: the same answer, nothing refunded, ended or sent twice.
    again = api.post(f"/admin/events/{event['event_id']}/cancel", admin, json={"reason": "again"})
    assert again.status_code == 200, again.text
    assert again.json()["event"]["status"] == "CANCELLED" and again.json()["event"]["cancel_reason"] == \
        "the artist is ill"
    time.sleep(2)
    for name, want in expected.items():
        assert kinds(api, fans[name]) == want, name
        assert balance(api, fans[name].token) == 1000
    with engines["user-service"].connect() as conn:
        sent = conn.execute(sa.text("SELECT count(*) FROM email_outbox e JOIN users u USING (user_id) "
                                    "WHERE u.user_id = ANY(CAST(:u AS uuid[]))"),
                            {"u": [f.user_id for f in fans.values()]}).scalar_one()
    assert sent == sum(sum(c.values()) for c in expected.values())
    trail = api.get("/admin/audit", admin, params={"target_id": event["event_id"]}).json()["actions"]
    assert [a["action"] for a in trail][:2] == ["event.cancel", "event.cancel"]
    assert trail[-1]["action"] == "event.create"


def test_a_checked_in_ticket_is_not_taken_back_and_is_named_in_the_answer(api, engines):
    admin = admin_token(api)
    _venue, (hall, _other) = venue_with_halls(api, admin)
    event = grid_event(api, admin, hall["hall_id"], rows=1, per_row=3, price=40)["event"]
    seats = [s["seat_id"] for s in seat_map(api, event["event_id"])]
    fan, other = register_and_login(api), register_and_login(api)
    for f in (fan, other):
        topup(api, f.user_id, 500)
    entered, stayed = buy(api, fan, seats[:1]), buy(api, other, seats[1:2])
    scanner = login(api, "scanner@demo.test")
    code = api.get(f"/tickets/{seats[0]}/qr", fan.token).json()["qr"]
    assert api.post("/verify", scanner, json={"qr": code, "hall_id": hall["hall_id"]}).json()["result"] == "CHECKED_IN"

    r = api.post(f"/admin/events/{event['event_id']}/cancel", admin, json={"reason": "storm"})
    assert r.status_code == 200, r.text
    assert r.json()["refunded_orders"] == [stayed["order_id"]]
    assert [(n["order_id"], n["reason"]) for n in r.json()["not_refunded"]] == [
        (entered["order_id"], "SEAT_CHECKED_IN")]
    assert balance(api, fan.token) == 460 and balance(api, other.token) == 500
    assert seat_row(engines, seats[0])["status"] == "CHECKED_IN"


def test_a_ticket_transferred_away_before_the_cancellation_stays_with_its_buyer_and_cannot_be_offered_on(
        api, engines):
    from test_transfers import confirm, initiate, offered
    admin = admin_token(api)
    _venue, (hall, _other) = venue_with_halls(api, admin)
    event = grid_event(api, admin, hall["hall_id"], rows=1, per_row=2, price=40)["event"]
    seats = [s["seat_id"] for s in seat_map(api, event["event_id"])]
    seller, buyer, third = (register_and_login(api) for _ in range(3))
    for fan in (seller, buyer, third):
        topup(api, fan.user_id, 500)
    sold = buy(api, seller, seats[:1])
    transfer_id = offered(api, seller, seats[0], buyer, 30)
    r = confirm(api, engines, buyer, transfer_id, seller, buyer)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text

    r = api.post(f"/admin/events/{event['event_id']}/cancel", admin, json={"reason": "storm"})
    assert r.status_code == 200, r.text
    assert [n["order_id"] for n in r.json()["not_refunded"]] == [sold["order_id"]]
    before = (balance(api, buyer.token), balance(api, third.token))

    r = initiate(api, buyer, seats[0], third, 20)
    assert r.status_code == 409 and r.json()["error"]["code"] == "EVENT_CANCELLED", r.text
    assert (balance(api, buyer.token), balance(api, third.token)) == before
    with engines["order-service"].connect() as conn:
        offers = conn.execute(sa.text("SELECT count(*) FROM transfers WHERE seat_id = :s AND seller_user_id = :u"),
                              {"s": seats[0], "u": buyer.user_id}).scalar_one()
    assert offers == 0

