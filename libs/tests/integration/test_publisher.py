"""The confirmed publisher against the real broker: an idle thread's connection survives the quiet."""
import logging
import time
import uuid

import pika
import pytest
import requests

from trcommon.amqp import ConfirmedPublisher, connect
from trcommon.testing import MGMT, management_vhost, wait_until


def _broker_connections(amqp_url: str) -> dict[str, dict]:
    """The broker's view of our connections in this vhost, by connection name."""
    resp = requests.get(f"{MGMT}/vhosts/{management_vhost(amqp_url)}/connections", auth=("guest", "guest"),
                        timeout=10)
    resp.raise_for_status()
    return {c["client_properties"].get("connection_name"): c for c in resp.json()}


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


def test_an_idle_publisher_outlives_an_idle_heartbeat_connection_and_publishes_without_an_error(
        amqp_url, queue, caplog):
    # Opened as a request thread opens it, then left alone as an idle thread leaves it.
    name = f"idle-publisher-{uuid.uuid4().hex[:8]}"
    publisher = ConfirmedPublisher(amqp_url, "", queue, name)
    publisher.check()
    # The fault this guards against, on the same broker and over the same quiet: a connection with heartbeats
    # that nobody services is closed by the broker (1 s heartbeats here; the publisher's used to be 30 s).
    control = connect(amqp_url, "idle-heartbeat-control", heartbeat=1)
    try:
        time.sleep(6)
        with pytest.raises(pika.exceptions.AMQPError):
            control.process_data_events(time_limit=0)
        listed = wait_until(lambda: _broker_connections(amqp_url).get(name), 20, 0.5, "the publisher's connection")
        assert listed["timeout"] == 0          # no heartbeats negotiated: quiet never closes it

        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            publisher.publish({"hello": "after the quiet"})
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    finally:
        publisher.close()

    conn = connect(amqp_url, "test-reader")
    try:
        _method, _props, body = conn.channel().basic_get(queue, auto_ack=True)
    finally:
        conn.close()
    assert body == b'{"hello": "after the quiet"}'
