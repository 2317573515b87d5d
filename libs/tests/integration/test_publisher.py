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
