"""Fixtures of the shared library's integration tests."""
import time
import uuid

import pika
import pytest

from trcommon.amqp import load_definitions

class TimersWithoutTarget:
    """Three hold timers, on a scratch queue with seat.hold.queue's arguments (definitions.json), expire while their
    dead-letter target is missing; then the target comes back (`start`). `collect` reads what reached it."""

    timers = (b"timer-0", b"timer-1", b"timer-2")

    def __init__(self, amqp_url: str):
        self.amqp_url = amqp_url
        suffix = uuid.uuid4().hex[:8]
        self.hold, self.dlx, self.target = f"t.hold.{suffix}", f"t.dlx.{suffix}", f"t.release.{suffix}"
        self.restored: float | None = None

    def _channel(self):
        conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        ch = conn.channel()
        ch.confirm_delivery()
        return conn, ch

    def start(self) -> None:
        hold_args = next(q for q in load_definitions()["queues"] if q["name"] == "seat.hold.queue")["arguments"]
        conn, ch = self._channel()
        try:
            ch.exchange_declare(self.dlx, "direct", durable=True)
            ch.queue_declare(self.hold, durable=True, arguments={**hold_args, "x-dead-letter-exchange": self.dlx,
                                                                  "x-dead-letter-routing-key": "release"})
            for body in self.timers:
                ch.basic_publish("", self.hold, body, pika.BasicProperties(delivery_mode=2, expiration="500"))
            time.sleep(3)       # expired with nowhere to go
            ch.queue_declare(self.target, durable=True, arguments={"x-queue-type": "quorum"})
            ch.queue_bind(self.target, self.dlx, "release")
            self.restored = time.monotonic()
        finally:
            conn.close()

    def collect(self, within_s: float) -> tuple[list[bytes], float]:
        """What reached the target, read until all three did or `within_s` after the target came back; and when."""
        conn, ch = self._channel()
        got: list[bytes] = []
        try:
            while len(got) < len(self.timers) and time.monotonic() - self.restored < within_s:
                _method, _props, body = ch.basic_get(self.target, auto_ack=True)
                if body is None:
                    conn.sleep(1)
                else:
                    got.append(body)
        finally:
            conn.close()
        return got, time.monotonic() - self.restored

    def clean_up(self) -> None:
        conn, ch = self._channel()
        try:
            for q in (self.hold, self.target):
                ch.queue_delete(q)
            ch.exchange_delete(self.dlx)
        finally:
            conn.close()


@pytest.fixture(scope="session", autouse=True)
def timers_without_target(request, amqp_url):
    """The scenario of test_dead_letter_retention.py, started with this folder's first test when that test is in
    the run: the broker takes minutes to retry, and the test, which runs late (marker runs_late), reads what it
    delivered meanwhile, while the other tests ran."""
    if not any(item.path.name == "test_dead_letter_retention.py" for item in request.session.items):
        yield None
        return
    scenario = TimersWithoutTarget(amqp_url)
    scenario.start()
    try:
        yield scenario
    finally:
        scenario.clean_up()
