"""The confirmed publisher against the real broker: pipelined confirms from many threads, refusals, an unreachable
broker, and a connection that survives the quiet."""
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pika
import pytest
import requests

from trcommon.amqp import ConfirmedPublisher, PublishFailed, connect
from trcommon.devstack import free_port
from trcommon.testing import MGMT, management_vhost, wait_until


def _listed(amqp_url: str) -> list[dict]:
    resp = requests.get(f"{MGMT}/vhosts/{management_vhost(amqp_url)}/connections", auth=("guest", "guest"),
                        timeout=10)
    resp.raise_for_status()
    return resp.json()


def _broker_connections(amqp_url: str) -> dict[str, dict]:
    """The broker's view of our connections in this vhost, by connection name."""
    return {c["client_properties"].get("connection_name"): c for c in _listed(amqp_url)}


def _named(amqp_url: str, name: str) -> int:
    return sum(1 for c in _listed(amqp_url) if c["client_properties"].get("connection_name") == name)


@pytest.fixture
def queue(amqp_url):
    name = f"test.publisher.{uuid.uuid4().hex[:8]}"
    conn = connect(amqp_url, "test-queue-owner")
    conn.channel().queue_declare(name, durable=True)
    conn.close()
    yield name
    conn = connect(amqp_url, "test-queue-owner")
    conn.channel().queue_delete(name)
    conn.close()


def _read_all(amqp_url: str, queue: str) -> list[bytes]:
    conn = connect(amqp_url, "test-reader")
    try:
        ch, bodies = conn.channel(), []
        while True:
            _method, _props, body = ch.basic_get(queue, auto_ack=True)
            if body is None:
                return bodies
            bodies.append(body)
    finally:
        conn.close()


def test_an_idle_publisher_keeps_its_connection_through_the_quiet_and_publishes_without_an_error(
        amqp_url, queue, caplog):
    """The publisher's own I/O thread answers heartbeats while no request publishes anything: with 1 s
    heartbeats, a connection nobody services is closed by the broker within seconds, the publisher's is not."""
    name = f"idle-publisher-{uuid.uuid4().hex[:8]}"
    publisher = ConfirmedPublisher(amqp_url, "", queue, name, heartbeat=1)
    publisher.check()
    control = connect(amqp_url, "idle-heartbeat-control", heartbeat=1)
    try:
        time.sleep(6)
        with pytest.raises(pika.exceptions.AMQPError):
            control.process_data_events(time_limit=0)
        listed = wait_until(lambda: _broker_connections(amqp_url).get(name), 20, 0.5, "the publisher's connection")
        assert listed["timeout"] == 1          # heartbeats negotiated, and answered: it is still open

        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            publisher.publish({"hello": "after the quiet"})
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        assert _named(amqp_url, name) == 1          # the same connection, not a new one
    finally:
        publisher.close()
    assert _read_all(amqp_url, queue) == [b'{"hello": "after the quiet"}']


def test_concurrent_publishes_share_one_connection_and_each_returns_once_confirmed(amqp_url, queue):
    name = f"busy-publisher-{uuid.uuid4().hex[:8]}"
    publisher = ConfirmedPublisher(amqp_url, "", queue, name)
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: publisher.publish({"n": i}, message_id=f"m{i}"), range(400)))
        wait_until(lambda: _named(amqp_url, name), 20, 0.5, "the publisher's connection listed")
        assert _named(amqp_url, name) == 1
    finally:
        publisher.close()
    # Every publish returned after its confirm: all 400 are in the queue, once each.
    assert sorted(json.loads(b)["n"] for b in _read_all(amqp_url, queue)) == list(range(400))


def test_an_unroutable_message_fails_its_publish_and_the_next_one_goes_through(amqp_url, queue):
    publisher = ConfirmedPublisher(amqp_url, "", f"no.such.queue.{uuid.uuid4().hex[:8]}", "unroutable-publisher")
    routable = ConfirmedPublisher(amqp_url, "", queue, "routable-publisher")
    try:
        with pytest.raises(PublishFailed, match="unroutable"):
            publisher.publish({"lost": True})
        routable.publish({"kept": True})
        with pytest.raises(PublishFailed, match="unroutable"):
            publisher.publish({"lost": True})
    finally:
        publisher.close()
        routable.close()
    assert _read_all(amqp_url, queue) == [b'{"kept": true}']


def test_a_broker_that_cannot_be_reached_fails_the_publish_within_the_deadline():
    port = free_port()
    publisher = ConfirmedPublisher(f"amqp://guest:guest@127.0.0.1:{port}/%2F", "", "q", "nowhere", timeout=2)
    started = time.monotonic()
    try:
        with pytest.raises(PublishFailed, match="unavailable"):
            publisher.publish({"x": 1})
        with pytest.raises(PublishFailed):
            publisher.check()
    finally:
        publisher.close()
    assert time.monotonic() - started < 2 * 2 + 2          # two attempts, each bounded


def test_a_connection_the_broker_closes_mid_burst_fails_no_publish_silently_and_strands_none(amqp_url, queue):
    """The broker closes the publisher's connection (an operator, a broker restart) while 16 threads publish
    3,000 messages:
    every publish ends promptly, either confirmed or with PublishFailed (a message queued for the lost connection
    is failed with it, not left to its deadline), and every confirmed message is in the queue."""
    name = f"closed-publisher-{uuid.uuid4().hex[:8]}"
    publisher = ConfirmedPublisher(amqp_url, "", queue, name, timeout=10)
    publisher.publish({"n": -1})
    wait_until(lambda: _named(amqp_url, name), 20, 0.5, "the publisher's connection listed")
    (listed,) = [c for c in _listed(amqp_url) if c["client_properties"].get("connection_name") == name]
    confirmed, failed, took = [], [], []

    def one(i: int) -> None:
        started = time.monotonic()
        try:
            publisher.publish({"n": i})
            confirmed.append(i)
        except PublishFailed:
            failed.append(i)
        took.append(time.monotonic() - started)

    try:
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(one, i) for i in range(3000)]
            wait_until(lambda: len(confirmed) >= 300, 20, 0.001, "the burst under way")
            requests.delete(f"{MGMT}/connections/{requests.utils.quote(listed['name'])}", auth=("guest", "guest"),
                            timeout=10).raise_for_status()
            closed_at = len(confirmed)
            for f in futures:
                f.result()
        publisher.publish({"n": 3000})       # a fresh connection takes over
    finally:
        publisher.close()
    assert closed_at < 3000, "the burst ended before the connection was closed"
    assert len(confirmed) + len(failed) == 3000
    assert max(took) < 5, "a publish waited for its deadline: its message was stranded on the lost connection"
    in_queue = {json.loads(b)["n"] for b in _read_all(amqp_url, queue)}
    assert set(confirmed) | {-1, 3000} <= in_queue


def test_a_message_queued_as_its_link_fails_returns_its_answer_or_fails_at_once_never_at_the_deadline(amqp_url, queue):
    """The I/O thread's side of the race, played in order on a real link: the link fails just after a message was
    queued. Answered before the failure: the publish returns that answer at once. Not answered: it fails at once
    (the publisher then retries on a fresh link), instead of waiting out its deadline."""
    from trcommon.amqp import _LinkLost

    publisher = ConfirmedPublisher(amqp_url, "", queue, "racing-publisher", timeout=5)
    link = publisher._live_link()
    link.wait_open()
    real_wake = link._conn.ioloop.add_callback_threadsafe
    props = pika.BasicProperties(content_type="application/json")

    def answered_then_failed(_callback):
        *_message, done = link._outgoing.popleft()
        done.succeed()
        link._failure = "connection closed: in the test"

    def failed_unanswered(_callback):
        link._failure = "connection closed: in the test"

    try:
        for wake, raises in ((answered_then_failed, None), (failed_unanswered, _LinkLost)):
            link._failure = None
            link._wake_pending = False
            link._conn.ioloop.add_callback_threadsafe = wake
            started = time.monotonic()
            if raises is None:
                link.publish(b"{}", props)
            else:
                with pytest.raises(raises):
                    link.publish(b"{}", props)
            assert time.monotonic() - started < 1
    finally:
        link._conn.ioloop.add_callback_threadsafe = real_wake
        link._failure = None
        publisher.close()
