"""Holds survive a broker restart. Their timer messages sit in a durable quorum queue, the
release consumer and the publisher reconnect, and every hold still ends through its timer."""
import os
import shutil
import subprocess
import time

import pytest

from e2e_support import register_and_login, released_by_timer, seat_row, wait_until

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_AMQP_URL")) or shutil.which("rabbitmqctl") is None,
    reason="restarts the local broker with rabbitmqctl")


def test_every_hold_ends_through_its_timer_across_a_broker_restart(api, fresh_event, engines):
    ev = fresh_event(seats=20)
    fans = [register_and_login(api) for _ in range(3)]
    for i, seat in enumerate(ev.seat_ids):
        r = api.post("/reserve", fans[i % 3].token, json={"seat_id": seat})
        assert r.status_code == 201, r.text
    started = time.monotonic()

    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=60)

    # The sweeper waits 30 s in this suite, so releases before then came from the timers.
    wait_until(lambda: all(seat_row(engines, s)["status"] == "AVAILABLE" for s in ev.seat_ids), 28,
               interval=0.5, what="every hold to end")
    assert time.monotonic() - started < 30
    wait_until(lambda: released_by_timer(set(ev.seat_ids)) == set(ev.seat_ids), 5, what="the timer log lines")

    # New holds get their timers again: the publisher reconnects.
    late_fan = register_and_login(api)
    r = wait_until(lambda: (x := api.post("/reserve", late_fan.token, json={"seat_id": ev.seat_ids[0]}))
                   .status_code == 201 and x, 20, interval=0.5, what="holds to work after the restart")
    assert r.json()["status"] == "PENDING"


def test_an_event_cancelled_while_the_broker_is_down_tells_each_fan_once_when_it_is_back(api, engines):
    """The notifications wait in order-service's outbox while the broker is down, and are delivered once each
    afterwards; nothing of the cancellation needs the broker."""
    from collections import Counter

    from test_admin import admin_token, grid_event, seat_map, venue_with_halls
    from test_event_cancel import buy, wait_for_kinds

    from e2e_support import balance, topup

    admin = admin_token(api)
    _venue, (hall, _other) = venue_with_halls(api, admin)
    event = grid_event(api, admin, hall["hall_id"], rows=1, per_row=4, price=40)["event"]
    seats = [s["seat_id"] for s in seat_map(api, event["event_id"])]
    payer, seller, buyer = (register_and_login(api) for _ in range(3))
    for fan in (payer, seller, buyer):
        topup(api, fan.user_id, 500)
    buy(api, payer, seats[:2])
    buy(api, seller, seats[2:3])
    offer = api.post("/transfer/initiate", seller.token, json={"seat_id": seats[2], "buyer_email": buyer.email,
                                                               "amount": 10})
    assert offer.status_code == 201, offer.text

    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
    try:
        r = api.post(f"/admin/events/{event['event_id']}/cancel", admin, json={"reason": "power cut"})
        assert r.status_code == 200, r.text
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=60)

    expected = {payer.user_id: Counter(ORDER_CONFIRMED=1, REFUND_MADE=1, EVENT_CANCELLED=1),
                seller.user_id: Counter(ORDER_CONFIRMED=1, REFUND_MADE=1, EVENT_CANCELLED=1),
                buyer.user_id: Counter(TRANSFER_OFFERED=1, TRANSFER_CANCELLED=1, EVENT_CANCELLED=1)}
    for fan in (payer, seller, buyer):
        assert balance(api, fan.token) == 500
        assert wait_for_kinds(api, fan, expected[fan.user_id]) == expected[fan.user_id]
    time.sleep(2)
    for fan in (payer, seller, buyer):
        assert wait_for_kinds(api, fan, expected[fan.user_id]) == expected[fan.user_id]
