"""Scenario 1: reserve and pay, holds that always end, OTP for flagged fans, credits that are never lost."""
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pika
import requests

from trcommon import demo
from trcommon.testing import management_vhost

from e2e_support import (balance, latest_sms_code, ledger_refs, login, order_row, register_and_login,
                         released_by_timer, seat_row, topup, wait_until)

HOLD_TTL = 3


def seat_status(api, event_id, seat_id):
    return {s["seat_id"]: s["status"] for s in api.get(f"/events/{event_id}/seats").json()["seats"]}[seat_id]


def funded_fan(api, credits=500):
    fan = register_and_login(api)
    topup(api, fan.user_id, credits)
    return fan


def test_a_fan_reserves_and_pays_and_the_seat_is_sold_for_exactly_its_price(api, fresh_event):
    ev = fresh_event(seats=3, price=120)
    fan = funded_fan(api, 500)
    seat = ev.seat_ids[0]
    r = api.post("/reserve", fan.token, json={"seat_id": seat, "price": 1, "user_id": "someone-else"})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "PENDING" and order["amount"] == 120 and order["seat_id"] == seat
    held_for = (datetime.fromisoformat(order["held_until"]) - datetime.now(timezone.utc)).total_seconds()
    assert 0 < held_for <= HOLD_TTL + 0.5
    assert seat_status(api, ev.event_id, seat) == "HELD"

    r = api.post("/pay", fan.token, json={"order_id": order["order_id"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"order_id": order["order_id"], "status": "CONFIRMED", "seat_id": seat, "seat_ids": [seat],
                        "amount": 120}
    assert seat_status(api, ev.event_id, seat) == "SOLD"
    assert balance(api, fan.token) == 380
    assert api.get(f"/orders/{order['order_id']}", fan.token).json()["status"] == "CONFIRMED"
    assert [o["order_id"] for o in api.get("/me/orders", fan.token).json()["orders"]] == [order["order_id"]]


def test_paying_a_confirmed_order_again_returns_the_same_confirmation_and_charges_nothing(api, fresh_event):
    ev = fresh_event(seats=1, price=50)
    fan = funded_fan(api, 100)
    order_id = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).json()["order_id"]
    first = api.post("/pay", fan.token, json={"order_id": order_id})
    with ThreadPoolExecutor(5) as pool:
        again = list(pool.map(lambda _: api.post("/pay", fan.token, json={"order_id": order_id}), range(5)))
    assert first.status_code == 200 and all(r.status_code == 200 and r.json() == first.json() for r in again)
    assert balance(api, fan.token) == 50


def test_a_seat_that_is_held_or_sold_cannot_be_reserved(api, fresh_event):
    ev = fresh_event(seats=1)
    a, b = funded_fan(api), funded_fan(api)
    order_id = api.post("/reserve", a.token, json={"seat_id": ev.seat_ids[0]}).json()["order_id"]
    r = api.post("/reserve", b.token, json={"seat_id": ev.seat_ids[0]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "SEAT_UNAVAILABLE"
    api.post("/pay", a.token, json={"order_id": order_id})
    r = api.post("/reserve", b.token, json={"seat_id": ev.seat_ids[0]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "SEAT_UNAVAILABLE"


def test_not_enough_credits_is_402_and_nothing_is_charged(api, fresh_event):
    ev = fresh_event(seats=1, price=300)
    fan = funded_fan(api, 100)
    order_id = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).json()["order_id"]
    r = api.post("/pay", fan.token, json={"order_id": order_id})
    assert r.status_code == 402 and r.json()["error"]["code"] == "INSUFFICIENT_CREDITS"
    assert balance(api, fan.token) == 100
    assert seat_status(api, ev.event_id, ev.seat_ids[0]) == "HELD"


def test_unknown_seats_and_orders_and_other_fans_orders_are_404(api, fresh_event):
    import uuid

    ev = fresh_event(seats=1)
    a, b = funded_fan(api), funded_fan(api)
    assert api.post("/reserve", a.token, json={"seat_id": str(uuid.uuid4())}).status_code == 404
    order_id = api.post("/reserve", a.token, json={"seat_id": ev.seat_ids[0]}).json()["order_id"]
    for r in (api.get(f"/orders/{order_id}", b.token), api.post("/pay", b.token, json={"order_id": order_id}),
              api.get(f"/orders/{uuid.uuid4()}", a.token)):
        assert r.status_code == 404, r.text
    assert api.get("/orders/not-a-uuid", a.token).status_code == 400
    assert balance(api, b.token) == 500
    assert api.post("/reserve", a.token, json={"seat_id": "not-a-uuid"}).status_code == 400


def test_only_fans_can_reserve(api, fresh_event):
    ev = fresh_event(seats=1)
    for email in ("scanner@demo.test", "admin@demo.test"):
        r = api.post("/reserve", login(api, email), json={"seat_id": ev.seat_ids[0]})
        assert r.status_code == 403 and r.json()["error"]["code"] == "WRONG_ROLE"


def test_a_fan_holds_at_most_eight_seats_at_a_time(api, fresh_event):
    ev = fresh_event(seats=10)
    fan = funded_fan(api)
    codes = [api.post("/reserve", fan.token, json={"seat_id": s}).status_code for s in ev.seat_ids[:9]]
    assert codes == [201] * 8 + [429]


def test_an_abandoned_hold_ends_through_the_broker_and_its_order_expires(api, fresh_event, engines, amqp_url):
    ev = fresh_event(seats=1)
    fan = funded_fan(api)
    seat = ev.seat_ids[0]
    order = api.post("/reserve", fan.token, json={"seat_id": seat}).json()
    held_until = datetime.fromisoformat(order["held_until"])
    assert seat_row(engines, seat)["held_until"] == held_until      # seats_db and the reply agree

    # The broker's timer releases the row itself (inventory's sweeper is set to wait 30 s in this suite; the
    # seat map already shows a lapsed hold as AVAILABLE, so the row is what proves the release happened).
    wait_until(lambda: seat_row(engines, seat)["status"] == "AVAILABLE", HOLD_TTL + 5, interval=0.05,
               what="release")
    released_late = (datetime.now(timezone.utc) - held_until).total_seconds()
    assert released_late < 3, released_late
    assert seat_row(engines, seat)["hold_id"] is None
    assert seat_status(api, ev.event_id, seat) == "AVAILABLE"
    wait_until(lambda: released_by_timer({seat}) == {seat}, 3, what="the release consumer's log line")
    wait_until(lambda: order_row(engines, order["order_id"])["status"] == "EXPIRED", 5, what="order EXPIRED")

    r = api.post("/pay", fan.token, json={"order_id": order["order_id"]})
    assert r.status_code == 410 and r.json()["error"]["code"] == "HOLD_EXPIRED"
    assert balance(api, fan.token) == 500

    # Nothing consumes the timer queue (a consumer would stop expiry); the release queue has its consumer.
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        assert ch.queue_declare("seat.hold.queue", passive=True).method.consumer_count == 0
        assert ch.queue_declare("seat.release.queue", passive=True).method.consumer_count >= 1
    finally:
        conn.close()


def test_a_flagged_fan_pays_only_with_a_valid_single_use_otp(api, fresh_event, engines):
    ev = fresh_event(seats=2, price=50)
    token = login(api, "flagged@demo.test")
    start = balance(api, token)
    phone = next(u[4] for u in demo.USERS if u[0] == "flagged@demo.test")
    order_id = api.post("/reserve", token, json={"seat_id": ev.seat_ids[0]}).json()["order_id"]

    r = api.post("/pay", token, json={"order_id": order_id})
    assert r.status_code == 428 and r.json()["error"]["code"] == "OTP_REQUIRED"
    code = latest_sms_code(engines, phone)
    wrong = "000000" if code != "000000" else "111111"
    r = api.post("/pay", token, json={"order_id": order_id, "otp_code": wrong})
    assert r.status_code == 403 and r.json()["error"]["code"] == "OTP_INVALID"
    r = api.post("/pay", token, json={"order_id": order_id, "otp_code": code})
    assert r.status_code == 200 and r.json()["status"] == "CONFIRMED"
    assert balance(api, token) == start - 50

    # The used code is bound to that order: it pays for nothing else.
    other = api.post("/reserve", token, json={"seat_id": ev.seat_ids[1]}).json()["order_id"]
    r = api.post("/pay", token, json={"order_id": other, "otp_code": code})
    assert r.status_code in (403, 428), r.text
    assert balance(api, token) == start - 50


def test_fifty_fans_racing_for_one_seat_get_exactly_one_hold_and_no_errors(api, fresh_event, engines):
    ev = fresh_event(seats=1)
    with ThreadPoolExecutor(16) as pool:
        fans = list(pool.map(lambda _: register_and_login(api), range(50)))
    barrier = threading.Barrier(50)

    def attempt(fan):
        barrier.wait()
        return api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]})

    with ThreadPoolExecutor(50) as pool:
        replies = list(pool.map(attempt, fans))
    codes = sorted(r.status_code for r in replies)
    assert codes.count(201) == 1 and codes.count(409) == 49, codes
    assert {r.json()["error"]["code"] for r in replies if r.status_code == 409} == {"SEAT_UNAVAILABLE"}
    assert seat_row(engines, ev.seat_ids[0])["status"] == "HELD"


def test_paying_around_the_expiry_instant_never_sells_without_charge_or_charges_without_seat(
        api, fresh_event, engines):
    offsets = [-0.3, -0.2, -0.15, -0.1, -0.06, -0.04, -0.02, -0.01, 0.0, 0.0, 0.0, 0.01, 0.02, 0.04, 0.06, 0.1,
               0.15, 0.2, 0.3, 0.5]
    ev = fresh_event(seats=len(offsets), price=40)
    fans = [funded_fan(api, 40) for _ in offsets]

    def trial(i):
        fan, seat = fans[i], ev.seat_ids[i]
        order = api.post("/reserve", fan.token, json={"seat_id": seat}).json()
        pay_at = datetime.fromisoformat(order["held_until"]).timestamp() + offsets[i]
        time.sleep(max(0.0, pay_at - time.time()))
        return fan, seat, order["order_id"], api.post("/pay", fan.token, json={"order_id": order["order_id"]})

    with ThreadPoolExecutor(len(offsets)) as pool:
        results = list(pool.map(trial, range(len(offsets))))
    outcomes = []
    for fan, seat, order_id, r in results:
        assert r.status_code in (200, 410), r.text
        if r.status_code == 200:
            assert seat_row(engines, seat)["status"] == "SOLD" and seat_row(engines, seat)["owner_user_id"]
            assert balance(api, fan.token) == 0
        else:
            assert r.json()["error"]["code"] == "HOLD_EXPIRED"
            assert balance(api, fan.token) == 40
            assert seat_row(engines, seat)["status"] in ("AVAILABLE", "HELD")
        outcomes.append(r.status_code)
    # Early payments must win; which side of the instant the 0-offset ones land on is up to the clock.
    assert outcomes[0] == 200, outcomes


def test_a_saga_cut_between_debit_and_seat_confirmation_converges(api, stack, fresh_event, engines):
    """Inventory is frozen while /pay is between its debit and ConfirmSeat; the orchestrator (web and worker)
    is SIGKILLed there; then inventory comes back and the orchestrator restarts. The recovery pass must end the
    saga: either confirmed (seat sold, charged once) or compensated (refunded, seat not sold)."""
    ev = fresh_event(seats=1, price=60)
    fan = funded_fan(api, 100)
    seat = ev.seat_ids[0]
    order_id = api.post("/reserve", fan.token, json={"seat_id": seat}).json()["order_id"]

    stack.signal("inventory-service", signal.SIGSTOP)
    try:
        paying = threading.Thread(target=lambda: _swallow(api.post, "/pay", fan.token, json={"order_id": order_id}))
        paying.start()
        wait_until(lambda: ledger_refs(engines, f"order:{order_id}:debit"), 5, what="the debit")
        stack.kill("orchestrator-service")
        stack.kill("orchestrator-worker")
    finally:
        stack.signal("inventory-service", signal.SIGCONT)
    paying.join(10)
    stack.start(["orchestrator-service", "orchestrator-worker"])
    stack.wait_healthy(30)

    final = wait_until(lambda: (o := order_row(engines, order_id))["status"] != "PENDING" and o, 20,
                       what="the saga to end")
    if final["status"] == "CONFIRMED":
        assert seat_row(engines, seat)["status"] == "SOLD" and balance(api, fan.token) == 40
        assert ledger_refs(engines, f"order:{order_id}:refund") == []
    else:
        assert final["status"] == "FAILED"
        assert balance(api, fan.token) == 100
        assert ledger_refs(engines, f"order:{order_id}:refund")
        assert seat_row(engines, seat)["status"] != "SOLD"


def test_a_killed_inventory_service_during_pay_converges_when_it_returns(api, stack, fresh_event, engines):
    ev = fresh_event(seats=1, price=60)
    fan = funded_fan(api, 100)
    seat = ev.seat_ids[0]
    order_id = api.post("/reserve", fan.token, json={"seat_id": seat}).json()["order_id"]

    stack.kill("inventory-service")
    r = api.post("/pay", fan.token, json={"order_id": order_id})
    assert r.status_code == 503, r.text            # the debit happened; the seat could not be confirmed yet
    assert ledger_refs(engines, f"order:{order_id}:debit")
    stack.start(["inventory-service"])
    stack.wait_healthy(30)

    final = wait_until(lambda: (o := order_row(engines, order_id))["status"] != "PENDING" and o, 20,
                       what="the saga to end")
    if final["status"] == "CONFIRMED":
        assert seat_row(engines, seat)["status"] == "SOLD" and balance(api, fan.token) == 40
    else:
        assert final["status"] == "FAILED" and balance(api, fan.token) == 100
        assert seat_row(engines, seat)["status"] != "SOLD"


def _swallow(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except requests.RequestException:
        pass  # the orchestrator was killed under this request


def test_a_hold_whose_timer_the_broker_refuses_is_released_at_once(api, fresh_event, engines, amqp_url):
    """seat.hold.queue rejects publishes when full (x-overflow reject-publish); a nacked timer must not leave
    an untimed hold behind. A max-length 0 policy makes the broker refuse every hold message."""
    policy = f"http://127.0.0.1:15672/api/policies/{management_vhost(amqp_url)}/e2e-hold-queue-full"
    ev = fresh_event(seats=4)
    fan = funded_fan(api)
    r = requests.put(policy, auth=("guest", "guest"), timeout=10, json={
        "pattern": "^seat\\.hold\\.queue$", "apply-to": "queues", "priority": 10,
        "definition": {"max-length": 0}})
    assert r.status_code in (201, 204), r.text
    try:
        # Once the queue is at its limit every timer is refused (the first one may still fit, and just expires).
        refused_seat = None
        for seat in ev.seat_ids[:3]:
            time.sleep(0.5)
            r = api.post("/reserve", fan.token, json={"seat_id": seat})
            if r.status_code == 503:
                refused_seat = seat
                break
            assert r.status_code == 201, r.text
        assert refused_seat, "the broker never refused a hold message"
        assert r.json()["error"]["code"] == "HOLD_TIMER_UNAVAILABLE"
        assert seat_row(engines, refused_seat)["status"] == "AVAILABLE"
    finally:
        requests.delete(policy, auth=("guest", "guest"), timeout=10)
    r = wait_until(lambda: (x := api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[3]})).status_code
                   == 201 and x, 10, interval=0.3, what="holds to work again")
    assert r.json()["status"] == "PENDING"
