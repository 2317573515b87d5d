"""The release queue's outage, the system's side: seat.release.queue is deleted while holds expire, then restored from
definitions.json. The release consumer keeps retrying and resumes when the queue is back; holds keep ending.
(That the broker keeps the timers meanwhile, and delivers them late, is libs/tests/integration/
test_dead_letter_retention.py: RabbitMQ retries such dead letters only every 180 s.)"""
import time

import requests

from trcommon.amqp import apply_definitions
from trcommon.testing import management_vhost

from e2e_support import log_entries, register_and_login, released_by_timer, seat_row, wait_until


def _consuming_lines() -> int:
    return sum(e.get("message") == "consuming" for e in log_entries("inventory-release-consumer"))


def test_the_release_consumer_resumes_when_its_deleted_queue_is_restored(api, fresh_event, engines, amqp_url):
    ev = fresh_event(seats=3)
    fan = register_and_login(api)
    r = requests.delete(f"http://127.0.0.1:15672/api/queues/{management_vhost(amqp_url)}/seat.release.queue", auth=("guest", "guest"),
                        timeout=10)
    assert r.status_code == 204, r.text
    try:
        orphaned = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).json()
        assert orphaned["status"] == "PENDING"
        time.sleep(3 + 2)
        assert seat_row(engines, ev.seat_ids[0])["status"] == "HELD"   # its timer has nowhere to go yet
        # ...but the seat is on sale again all the same: a lapsed hold counts as available.
        other = register_and_login(api)
        assert api.post("/reserve", other.token, json={"seat_id": ev.seat_ids[0]}).status_code == 201
        before = _consuming_lines()
    finally:
        apply_definitions(amqp_url)     # the operator restores the topology from the same file
    wait_until(lambda: _consuming_lines() > before, 20, interval=0.3, what="the consumer to resume")

    fresh = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[1]}).json()
    assert fresh["status"] == "PENDING"
    wait_until(lambda: released_by_timer({ev.seat_ids[1]}) == {ev.seat_ids[1]}, 3 + 5, interval=0.2,
               what="a new hold to end through its timer")
