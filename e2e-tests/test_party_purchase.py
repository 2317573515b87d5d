"""Buying for a party: 1-8 seats of one event held together under one order, all or nothing, paid once, and
released together when nobody pays."""
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import sqlalchemy as sa

from e2e_support import (balance, ledger_refs, login, order_row, register_and_login, released_by_timer, seat_row, topup,
                         wait_until)

HOLD_TTL = 3


def seat_map(api, event_id) -> dict[str, str]:
    return {s["seat_id"]: s["status"] for s in api.get(f"/events/{event_id}/seats").json()["seats"]}


def funded_fan(api, credits=500):
    fan = register_and_login(api)
    topup(api, fan.user_id, credits)
    return fan


def orders_of(api, fan) -> list[dict]:
    return api.get("/me/orders", fan.token).json()["orders"]


def test_a_party_of_four_is_one_order_charged_four_times_the_price_once_with_four_seats_sold(api, fresh_event,
                                                                                             engines):
    ev = fresh_event(seats=6, price=75)
    fan = funded_fan(api, 1000)
    party = [ev.seat_ids[3], ev.seat_ids[0], ev.seat_ids[2], ev.seat_ids[1]]     # in any order
    r = api.post("/reserve", fan.token, json={"seat_ids": party})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "PENDING" and order["amount"] == 4 * 75 and order["event_id"] == ev.event_id
    assert order["seat_ids"] == sorted(party) and order["seat_id"] == sorted(party)[0]
    rows = [seat_row(engines, s) for s in party]
    assert {(r["status"], str(r["hold_id"]), str(r["held_by_user_id"]), r["held_until"]) for r in rows} == {
        ("HELD", order["order_id"], fan.user_id, datetime.fromisoformat(order["held_until"]))}   # one hold
    assert [seat_map(api, ev.event_id)[s] for s in ev.seat_ids] == ["HELD"] * 4 + ["AVAILABLE"] * 2

    r = api.post("/pay", fan.token, json={"order_id": order["order_id"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"order_id": order["order_id"], "status": "CONFIRMED", "seat_id": sorted(party)[0],
                        "seat_ids": sorted(party), "amount": 300}
    again = api.post("/pay", fan.token, json={"order_id": order["order_id"]})
    assert again.status_code == 200 and again.json() == r.json()              # paying again charges nothing
    assert balance(api, fan.token) == 1000 - 300
    assert ledger_refs(engines, f"order:{order['order_id']}") == [f"order:{order['order_id']}:debit"]
    assert all(seat_row(engines, s)["status"] == "SOLD" and str(seat_row(engines, s)["owner_user_id"]) == fan.user_id
               for s in party)
    assert [seat_map(api, ev.event_id)[s] for s in ev.seat_ids] == ["SOLD"] * 4 + ["AVAILABLE"] * 2

    [listed] = orders_of(api, fan)
    assert (listed["order_id"], listed["status"], listed["seat_ids"], listed["amount"]) == (
        order["order_id"], "CONFIRMED", sorted(party), 300)
    assert api.get(f"/orders/{order['order_id']}", fan.token).json()["seat_ids"] == sorted(party)
    tickets = api.get("/me/tickets", fan.token).json()["tickets"]
    assert sorted((t["seat_id"], t["status"]) for t in tickets) == [(s, "SOLD") for s in sorted(party)]

    # Each seat of the party is a ticket of its own at the gate (not only the order's first seat).
    scanner = login(api, "scanner@demo.test")
    for seat in party:
        qr = api.get(f"/tickets/{seat}/qr", fan.token).json()["qr"]
        verdict = api.post("/verify", scanner, json={"qr": qr, "hall_id": ev.hall_id}).json()
        assert verdict["result"] == "CHECKED_IN", verdict


def test_an_unpaid_party_hold_is_released_whole_by_its_timer_and_its_order_expires(api, fresh_event, engines):
    ev = fresh_event(seats=4)
    fan = funded_fan(api)
    order = api.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids}).json()
    wait_until(lambda: all(seat_row(engines, s)["status"] == "AVAILABLE" for s in ev.seat_ids), HOLD_TTL + 5,
               interval=0.05, what="every seat released")
    assert all(seat_row(engines, s)["hold_id"] is None for s in ev.seat_ids)
    wait_until(lambda: released_by_timer(set(ev.seat_ids)) == set(ev.seat_ids), 3,
               what="the release consumer's log lines: the one timer released all four")
    wait_until(lambda: order_row(engines, order["order_id"])["status"] == "EXPIRED", 5, what="order EXPIRED")
    r = api.post("/pay", fan.token, json={"order_id": order["order_id"]})
    assert r.status_code == 410 and r.json()["error"]["code"] == "HOLD_EXPIRED"
    assert balance(api, fan.token) == 500
    assert set(seat_map(api, ev.event_id).values()) == {"AVAILABLE"}


def test_a_party_hold_with_one_seat_taken_fails_whole_naming_that_seat_and_holds_nothing(api, fresh_event, engines):
    ev = fresh_event(seats=4)
    first, party = funded_fan(api), funded_fan(api)
    assert api.post("/reserve", first.token, json={"seat_id": ev.seat_ids[2]}).status_code == 201
    r = api.post("/reserve", party.token, json={"seat_ids": ev.seat_ids})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "SEAT_UNAVAILABLE" and error["details"] == {"seat_ids": [ev.seat_ids[2]]}
    assert ev.seat_ids[2] in error["message"]
    assert [seat_map(api, ev.event_id)[s] for s in ev.seat_ids] == ["AVAILABLE", "AVAILABLE", "HELD", "AVAILABLE"]
    assert orders_of(api, party) == []
    # The three free seats are still to be had, together.
    rest = [s for s in ev.seat_ids if s != ev.seat_ids[2]]
    assert api.post("/reserve", party.token, json={"seat_ids": rest}).status_code == 201


def test_malformed_party_requests_are_refused_with_a_clear_code_and_write_nothing(api, fresh_event, engines):
    ev, other = fresh_event(seats=9), fresh_event(seats=1)
    fan = funded_fan(api)
    s = ev.seat_ids
    cases = [
        ({"seat_ids": [s[0], s[1], s[0]]}, 400, "INVALID_INPUT"),                     # a seat twice
        ({"seat_ids": [s[0], s[1], s[0].upper()]}, 400, "INVALID_INPUT"),             # the same id in capitals
        ({"seat_ids": s[:9]}, 400, "INVALID_INPUT"),                                  # more than 8
        ({"seat_ids": []}, 400, "INVALID_INPUT"),
        ({"seat_id": s[0], "seat_ids": s[1:3]}, 400, "INVALID_INPUT"),                # both ways at once
        ({}, 400, "INVALID_INPUT"),
        ({"seat_ids": [s[0], "A-1-1"]}, 400, "INVALID_INPUT"),
        ({"seat_ids": [s[0], other.seat_ids[0]]}, 400, "SEATS_NOT_IN_ONE_EVENT"),     # two events
        ({"seat_ids": [s[0], str(uuid.uuid4())]}, 404, "SEAT_NOT_FOUND"),
    ]
    for body, status, code in cases:
        r = api.post("/reserve", fan.token, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
        if status == 400 and code == "INVALID_INPUT":
            assert r.json()["error"]["details"][0]["field"].startswith("seat_id"), r.text
    assert orders_of(api, fan) == []
    assert set(seat_map(api, ev.event_id).values()) == set(seat_map(api, other.event_id).values()) == {"AVAILABLE"}


def test_the_hold_cap_counts_seats_not_orders(api, fresh_event):
    ev = fresh_event(seats=10)
    fan = funded_fan(api)
    assert api.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids[:5]}).status_code == 201
    r = api.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids[5:9]})         # 5 + 4 > 8
    assert r.status_code == 429 and r.json()["error"]["code"] == "TOO_MANY_HOLDS"
    assert int(r.headers["Retry-After"]) >= 1
    assert [seat_map(api, ev.event_id)[s] for s in ev.seat_ids[5:9]] == ["AVAILABLE"] * 4
    assert api.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids[5:8]}).status_code == 201   # 5 + 3
    assert api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[9]}).status_code == 429


def test_a_hundred_fans_racing_for_overlapping_parties_of_four_never_share_a_seat_or_split_an_order(
        api, fresh_event, engines):
    ev = fresh_event(seats=20, price=10)
    with ThreadPoolExecutor(16) as pool:
        fans = list(pool.map(lambda _: register_and_login(api), range(100)))
    # Fan i wants 4 seats in a row starting at i % 17: every window overlaps others.
    wanted = {fan.user_id: ev.seat_ids[i % 17:i % 17 + 4] for i, fan in enumerate(fans)}
    barrier = threading.Barrier(len(fans))

    def attempt(fan):
        barrier.wait()
        return fan, api.post("/reserve", fan.token, json={"seat_ids": wanted[fan.user_id]})

    with ThreadPoolExecutor(len(fans)) as pool:
        replies = list(pool.map(attempt, fans))
    codes = Counter(r.status_code for _, r in replies)
    assert set(codes) <= {201, 409}, codes                      # a lost race is a 409, never a 5xx
    assert {r.json()["error"]["code"] for _, r in replies if r.status_code == 409} == {"SEAT_UNAVAILABLE"}
    winners = [(fan, r.json()) for fan, r in replies if r.status_code == 201]
    assert winners
    held = [s for _, order in winners for s in order["seat_ids"]]
    assert len(held) == len(set(held)) == 4 * len(winners)       # no seat in two orders
    for fan, order in winners:
        assert order["seat_ids"] == sorted(wanted[fan.user_id])
        assert {(r["status"], str(r["hold_id"])) for r in (seat_row(engines, s) for s in order["seat_ids"])} == {
            ("HELD", order["order_id"])}                        # the whole party, under its order
    with engines["inventory-service"].connect() as conn:
        held_rows = conn.execute(sa.text("SELECT count(*) FROM seats WHERE event_id = :e AND status = 'HELD'"),
                                 {"e": ev.event_id}).scalar_one()
    assert held_rows == len(held)                               # and no seat held by a losing request
    for fan, r in replies:
        if r.status_code == 409:
            assert orders_of(api, fan) == []

    def pay(winner):        # within the short HOLD_TTL of this suite
        fan, order = winner
        topup(api, fan.user_id, 40)
        return api.post("/pay", fan.token, json={"order_id": order["order_id"]})

    with ThreadPoolExecutor(len(winners)) as pool:
        paid = list(pool.map(pay, winners))
    assert all(r.status_code == 200 for r in paid), [r.text for r in paid if r.status_code != 200]
    owners = {s: str(seat_row(engines, s)["owner_user_id"]) for s in held}
    assert owners == {s: fan.user_id for fan, order in winners for s in order["seat_ids"]}
    assert all(balance(api, fan.token) == 0 for fan, _ in winners)
