"""A fan calls off a hold they have not paid: every seat is on sale again at once, the order ends CANCELLED, and
nothing else changes (a second cancel, someone else's cancel, the hold's timer, the recovery worker)."""
import time

from e2e_support import (balance, books, ledger_refs, order_row, register_and_login, released_by_timer, seat_row,
                         topup)

HOLD_TTL = 3


def test_cancelling_a_party_hold_puts_every_seat_on_sale_at_once_and_another_fan_can_hold_them(api, fresh_event,
                                                                                               engines):
    ev = fresh_event(seats=4)
    fan, other = register_and_login(api), register_and_login(api)
    order = api.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids[:3]}).json()

    r = api.post(f"/orders/{order['order_id']}/cancel", fan.token)
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert (cancelled["order_id"], cancelled["status"], cancelled["seat_ids"]) == (
        order["order_id"], "CANCELLED", sorted(ev.seat_ids[:3]))
    # At once: well inside the 3 s the hold would have lasted.
    assert all(seat_row(engines, s)["status"] == "AVAILABLE" and seat_row(engines, s)["hold_id"] is None
               for s in ev.seat_ids[:3])
    seat_map = {s["seat_id"]: s["status"] for s in api.get(f"/events/{ev.event_id}/seats").json()["seats"]}
    assert [seat_map[s] for s in ev.seat_ids] == ["AVAILABLE"] * 4
    taken = api.post("/reserve", other.token, json={"seat_ids": ev.seat_ids[:3]})
    assert taken.status_code == 201, taken.text
    assert api.get(f"/orders/{order['order_id']}", fan.token).json()["status"] == "CANCELLED"
    assert [o["status"] for o in api.get("/me/orders", fan.token).json()["orders"]] == ["CANCELLED"]
    # Paying for it afterwards is refused, and charges nothing.
    paid = api.post("/pay", fan.token, json={"order_id": order["order_id"]})
    assert paid.status_code == 410 and paid.json()["error"]["code"] == "HOLD_EXPIRED", paid.text
    assert ledger_refs(engines, f"order:{order['order_id']}") == []


def test_cancelling_twice_answers_the_same_order_and_leaves_seats_another_fan_holds_alone(api, fresh_event, engines):
    ev = fresh_event(seats=2)
    fan, other = register_and_login(api), register_and_login(api)
    order = api.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids}).json()
    first = api.post(f"/orders/{order['order_id']}/cancel", fan.token)
    assert first.status_code == 200, first.text
    theirs = api.post("/reserve", other.token, json={"seat_ids": ev.seat_ids}).json()
    before = books(engines, [fan.user_id, other.user_id], ev.seat_ids)

    again = api.post(f"/orders/{order['order_id']}/cancel", fan.token)
    assert again.status_code == 200 and again.json() == first.json()
    assert books(engines, [fan.user_id, other.user_id], ev.seat_ids) == before
    assert {str(seat_row(engines, s)["hold_id"]) for s in ev.seat_ids} == {theirs["order_id"]}


def test_someone_elses_or_a_missing_order_gets_the_same_404_as_reading_it_and_nothing_changes(api, fresh_event,
                                                                                             engines):
    ev = fresh_event(seats=1)
    fan, other = register_and_login(api), register_and_login(api)
    order = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).json()
    before = books(engines, [fan.user_id, other.user_id], ev.seat_ids)

    theirs = api.post(f"/orders/{order['order_id']}/cancel", other.token)
    missing = api.post("/orders/00000000-0000-4000-8000-000000000000/cancel", other.token)
    read = api.get(f"/orders/{order['order_id']}", other.token)
    assert theirs.status_code == missing.status_code == read.status_code == 404
    assert theirs.json() == missing.json() == read.json()
    assert books(engines, [fan.user_id, other.user_id], ev.seat_ids) == before
    assert seat_row(engines, ev.seat_ids[0])["status"] == "HELD"
    bad = api.post("/orders/not-an-id/cancel", fan.token)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_INPUT"


def test_a_confirmed_order_cannot_be_cancelled(api, fresh_event, engines):
    ev = fresh_event(seats=1, price=40)
    fan = register_and_login(api)
    topup(api, fan.user_id, 100)
    order = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).json()
    assert api.post("/pay", fan.token, json={"order_id": order["order_id"]}).status_code == 200

    r = api.post(f"/orders/{order['order_id']}/cancel", fan.token)
    assert r.status_code == 409 and r.json()["error"]["code"] == "ORDER_NOT_CANCELLABLE", r.text
    assert order_row(engines, order["order_id"])["status"] == "CONFIRMED"
    assert seat_row(engines, ev.seat_ids[0])["status"] == "SOLD" and balance(api, fan.token) == 60


def test_an_order_whose_payment_has_begun_cannot_be_cancelled(api, fresh_event, engines):
    ev = fresh_event(seats=1, price=40)
    fan = register_and_login(api)          # no credits: /pay records CHARGING, then the debit is refused (402)
    order = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).json()
    assert api.post("/pay", fan.token, json={"order_id": order["order_id"]}).status_code == 402

    r = api.post(f"/orders/{order['order_id']}/cancel", fan.token)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PAYMENT_IN_PROGRESS", r.text
    row = order_row(engines, order["order_id"])
    assert (row["status"], row["payment_state"]) == ("PENDING", "CHARGING")
    assert seat_row(engines, ev.seat_ids[0])["status"] == "HELD"


def test_the_timer_and_the_recovery_worker_leave_a_cancelled_order_alone(api, fresh_event, engines):
    ev = fresh_event(seats=2)
    fan = register_and_login(api)
    order = api.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids}).json()
    assert api.post(f"/orders/{order['order_id']}/cancel", fan.token).status_code == 200
    # Past the hold's end, its timer message and several recovery passes (every 0.5 s) have come and gone.
    time.sleep(HOLD_TTL + 2)
    row = order_row(engines, order["order_id"])
    assert (row["status"], row["payment_state"], row["failure_reason"]) == ("CANCELLED", "NONE",
                                                                          "cancelled by the fan")
    assert released_by_timer(set(ev.seat_ids)) == set()     # the cancel had released them; the timer found nothing
    assert all(seat_row(engines, s)["status"] == "AVAILABLE" for s in ev.seat_ids)


def test_a_cancel_racing_a_payment_never_ends_cancelled_with_a_charge_nor_sold_without_one(api, fresh_event, engines):
    from concurrent.futures import ThreadPoolExecutor

    ev = fresh_event(seats=10, price=30)
    fan = register_and_login(api)
    topup(api, fan.user_id, 1000)
    for seat in ev.seat_ids:
        order = api.post("/reserve", fan.token, json={"seat_id": seat}).json()
        with ThreadPoolExecutor(2) as pool:
            cancel = pool.submit(api.post, f"/orders/{order['order_id']}/cancel", fan.token)
            pay = pool.submit(api.post, "/pay", fan.token, json={"order_id": order["order_id"]})
            cancel, pay = cancel.result(), pay.result()
        row, charged = order_row(engines, order["order_id"]), ledger_refs(engines, f"order:{order['order_id']}")
        if row["status"] == "CANCELLED":
            assert cancel.status_code == 200 and pay.status_code == 410, (cancel.text, pay.text)
            assert charged == [] and seat_row(engines, seat)["status"] == "AVAILABLE"
        else:
            assert row["status"] == "CONFIRMED" and pay.status_code == 200, (row, pay.text)
            assert cancel.status_code == 409 and cancel.json()["error"]["code"] in (
                "PAYMENT_IN_PROGRESS", "ORDER_NOT_CANCELLABLE"), cancel.text
            assert charged == [f"order:{order['order_id']}:debit"] and seat_row(engines, seat)["status"] == "SOLD"
    assert balance(api, fan.token) == 1000 - 30 * sum(
        order_row(engines, o["order_id"])["status"] == "CONFIRMED" for o in api.get("/me/orders", fan.token).json()["orders"])
