"""Refunds: the owner of a CONFIRMED order gets its credits back once and its seats go back on sale, every code of
those tickets dead at the gate; refused after the cut-off, for a ticket checked in or transferred away, and for
another fan's order."""
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from e2e_support import (balance, books, ledger_refs, login, order_row, register_and_login, seat_row, topup)
from test_transfers import confirm, offered


def bought(api, fresh_event, seats=1, price=60, credits=1000, starts_in=timedelta(days=7), engines=None):
    """A fan who bought `seats` seats of a fresh event in one order: (event, fan, order)."""
    ev = fresh_event(seats=seats + 1, price=price)
    if engines is not None:
        with engines["event-service"].begin() as conn:
            conn.execute(sa.text("UPDATE events SET starts_at = :s WHERE event_id = :e"),
                         {"s": datetime.now(timezone.utc) + starts_in, "e": ev.event_id})
    fan = register_and_login(api)
    topup(api, fan.user_id, credits)
    order = api.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids[:seats]}).json()
    r = api.post("/pay", fan.token, json={"order_id": order["order_id"]})
    assert r.status_code == 200, r.text
    return ev, fan, order


def qr(api, fan, seat_id) -> str:
    r = api.get(f"/tickets/{seat_id}/qr", fan.token)
    assert r.status_code == 200, r.text
    return r.json()["qr"]


def verdict(api, scanner, code, hall_id) -> str:
    r = api.post("/verify", scanner, json={"qr": code, "hall_id": hall_id})
    assert r.status_code == 200, r.text
    return r.json()["result"]


def test_a_refund_restores_the_balance_exactly_puts_every_seat_on_sale_and_kills_the_codes(api, fresh_event, engines):
    ev, fan, order = bought(api, fresh_event, seats=3, price=60)
    assert balance(api, fan.token) == 1000 - 180
    codes = {s: qr(api, fan, s) for s in order["seat_ids"]}
    versions = {s: seat_row(engines, s)["ticket_version"] for s in order["seat_ids"]}

    r = api.post(f"/orders/{order['order_id']}/refund", fan.token)
    assert r.status_code == 200, r.text
    assert (r.json()["order_id"], r.json()["status"], r.json()["amount"]) == (order["order_id"], "REFUNDED", 180)
    assert balance(api, fan.token) == 1000
    assert sorted(ledger_refs(engines, f"order:{order['order_id']}")) == [
        f"order:{order['order_id']}:debit", f"order:{order['order_id']}:refund"]
    for s in order["seat_ids"]:
        row = seat_row(engines, s)
        assert (row["status"], row["owner_user_id"], row["hold_id"]) == ("AVAILABLE", None, None)
        assert row["ticket_version"] == versions[s] + 1
    seat_map = {s["seat_id"]: s["status"] for s in api.get(f"/events/{ev.event_id}/seats").json()["seats"]}
    assert all(seat_map[s] == "AVAILABLE" for s in order["seat_ids"])
    assert [o["status"] for o in api.get("/me/orders", fan.token).json()["orders"]] == ["REFUNDED"]
    assert api.get("/me/tickets", fan.token).json()["tickets"] == []
    scanner = login(api, "scanner@demo.test")
    assert {verdict(api, scanner, code, ev.hall_id) for code in codes.values()} == {"INVALID"}
    # Back on sale: another fan buys one of them, and a second refund request changes nothing.
    other = register_and_login(api)
    topup(api, other.user_id, 100)
    again = api.post("/reserve", other.token, json={"seat_id": order["seat_ids"][0]})
    assert again.status_code == 201, again.text
    assert api.post("/pay", other.token, json={"order_id": again.json()["order_id"]}).status_code == 200
    before = books(engines, [fan.user_id, other.user_id], order["seat_ids"])
    repeat = api.post(f"/orders/{order['order_id']}/refund", fan.token)
    assert repeat.status_code == 200 and repeat.json() == r.json()
    assert books(engines, [fan.user_id, other.user_id], order["seat_ids"]) == before


def test_twenty_concurrent_refunds_of_one_order_refund_it_once(api, fresh_event, engines):
    ev, fan, order = bought(api, fresh_event, seats=2, price=45)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: api.post(f"/orders/{order['order_id']}/refund", fan.token), range(20)))
    assert [a.status_code for a in answers] == [200] * 20, {a.status_code: a.text for a in answers}
    assert {a.json()["status"] for a in answers} == {"REFUNDED"}
    assert ledger_refs(engines, f"order:{order['order_id']}:refund") == [f"order:{order['order_id']}:refund"]
    assert balance(api, fan.token) == 1000
    assert order_row(engines, order["order_id"])["status"] == "REFUNDED"
    with engines["inventory-service"].connect() as conn:
        returned = conn.execute(sa.text("SELECT count(*) FROM ownership_changes WHERE change_key = :k"),
                                {"k": f"order:{order['order_id']}:take-back"}).scalar_one()
    assert returned == 2        # one row per seat, written once
    assert all(seat_row(engines, s)["ticket_version"] == 2 for s in order["seat_ids"])


def test_a_fans_refund_is_refused_after_the_cutoff_but_an_admins_is_not(api, fresh_event, engines):
    ev, fan, order = bought(api, fresh_event, starts_in=timedelta(hours=2), engines=engines)
    r = api.post(f"/orders/{order['order_id']}/refund", fan.token)
    assert r.status_code == 409 and r.json()["error"]["code"] == "REFUND_CUTOFF_PASSED", r.text
    assert order_row(engines, order["order_id"])["status"] == "CONFIRMED"
    assert seat_row(engines, order["seat_id"])["status"] == "SOLD" and balance(api, fan.token) == 1000 - 60

    admin = login(api, "admin@demo.test")
    r = api.post(f"/orders/{order['order_id']}/refund", admin)
    assert r.status_code == 200 and r.json()["status"] == "REFUNDED", r.text
    assert balance(api, fan.token) == 1000 and seat_row(engines, order["seat_id"])["status"] == "AVAILABLE"


def test_a_checked_in_ticket_is_not_refunded_and_nothing_changes(api, fresh_event, engines):
    ev, fan, order = bought(api, fresh_event, seats=2)
    scanner = login(api, "scanner@demo.test")
    assert verdict(api, scanner, qr(api, fan, order["seat_ids"][1]), ev.hall_id) == "CHECKED_IN"
    before = books(engines, [fan.user_id], order["seat_ids"])

    r = api.post(f"/orders/{order['order_id']}/refund", fan.token)
    assert r.status_code == 409 and r.json()["error"]["code"] == "TICKET_NOT_REFUNDABLE", r.text
    assert r.json()["error"]["details"] == {"reason": "SEAT_CHECKED_IN"}
    assert books(engines, [fan.user_id], order["seat_ids"]) == before       # not even the other seat
    assert order_row(engines, order["order_id"])["status"] == "CONFIRMED"


def test_a_ticket_transferred_away_is_not_refunded_to_its_first_buyer(api, fresh_event, engines):
    ev, seller, order = bought(api, fresh_event)
    buyer = register_and_login(api)
    topup(api, buyer.user_id, 100)
    transfer_id = offered(api, seller, order["seat_id"], buyer, 30)
    assert confirm(api, engines, buyer, transfer_id, seller, buyer).status_code == 200
    before = books(engines, [seller.user_id, buyer.user_id], order["seat_ids"])

    r = api.post(f"/orders/{order['order_id']}/refund", seller.token)
    assert r.status_code == 409 and r.json()["error"]["details"] == {"reason": "NOT_OWNER"}, r.text
    assert books(engines, [seller.user_id, buyer.user_id], order["seat_ids"]) == before
    assert str(seat_row(engines, order["seat_id"])["owner_user_id"]) == buyer.user_id
    # The buyer holds no order of it: theirs is a 404 like any other order of someone else.
    assert api.post(f"/orders/{order['order_id']}/refund", buyer.token).status_code == 404


def test_another_fans_or_a_missing_order_is_the_same_404_and_unpaid_orders_are_not_refunded(api, fresh_event,
                                                                                             engines):
    ev, fan, order = bought(api, fresh_event)
    other = register_and_login(api)
    before = books(engines, [fan.user_id, other.user_id], order["seat_ids"])
    theirs = api.post(f"/orders/{order['order_id']}/refund", other.token)
    missing = api.post("/orders/00000000-0000-4000-8000-000000000000/refund", other.token)
    assert theirs.status_code == missing.status_code == 404 and theirs.json() == missing.json()
    assert books(engines, [fan.user_id, other.user_id], order["seat_ids"]) == before

    pending = api.post("/reserve", other.token, json={"seat_id": ev.seat_ids[1]}).json()
    r = api.post(f"/orders/{pending['order_id']}/refund", other.token)
    assert r.status_code == 409 and r.json()["error"]["code"] == "ORDER_NOT_REFUNDABLE", r.text
    assert api.post("/orders/not-an-id/refund", fan.token).status_code == 400
