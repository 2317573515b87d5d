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
