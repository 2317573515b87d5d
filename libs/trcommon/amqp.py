"""AMQP helpers: apply rabbitmq/definitions.json to a broker, wait for it, and carry the request id."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pika
import pika.exceptions

from .logs import REQUEST_ID_METADATA, current_request_id

log = logging.getLogger("trcommon.amqp")

DEFINITIONS = Path(__file__).resolve().parents[2] / "rabbitmq" / "definitions.json"


# On every broker connection: the kernel probes a connection that has been silent for a minute, so a peer that
# vanished without closing it (a dead host, a dropped NAT entry) is noticed even when neither side speaks.
TCP_KEEPALIVE = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 3}


def connect(url: str, name: str = "ticketremaster", heartbeat: int = 30) -> pika.BlockingConnection:
    """A blocking connection; `heartbeat` seconds (0: none) must suit how often its owner calls into pika, since
    a BlockingConnection answers heartbeats only inside a blocking call."""
    params = pika.URLParameters(url)
    params.client_properties = {"connection_name": name}
    params.heartbeat = heartbeat
    params.tcp_options = TCP_KEEPALIVE
    params.blocked_connection_timeout = 30
    params.socket_timeout = 5
    return pika.BlockingConnection(params)


def wait_for_broker(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            connect(url, "startup-probe").close()
            return
        except pika.exceptions.AMQPError as exc:
            if time.monotonic() >= deadline:
                raise SystemExit(f"RabbitMQ at {pika.URLParameters(url).host} is unreachable: {exc!r}") from None
            log.info("waiting for RabbitMQ")
            time.sleep(1)


def load_definitions(path: Path = DEFINITIONS) -> dict:
    return json.loads(Path(path).read_text())


def apply_definitions(url: str, path: Path = DEFINITIONS) -> None:
    """Declare the exchanges, queues and bindings of definitions.json in the vhost of `url`.

    The broker loads the same file at boot in Docker; this applies it to a running broker (local mode, tests).
    Declaring is idempotent; a queue that exists with other arguments is a clear error, not a silent drift.
    """
    defs = load_definitions(path)
    conn = connect(url, "apply-definitions")
    try:
        ch = conn.channel()
        for ex in defs.get("exchanges", []):
            ch.exchange_declare(ex["name"], ex["type"], durable=ex["durable"], auto_delete=ex["auto_delete"],
                                internal=ex.get("internal", False), arguments=ex.get("arguments") or None)
        for q in defs.get("queues", []):
            try:
                ch.queue_declare(q["name"], durable=q["durable"], auto_delete=q["auto_delete"],
                                 arguments=q.get("arguments") or None)
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise SystemExit(f"queue {q['name']} exists with other arguments than rabbitmq/definitions.json "
                                 f"({exc.reply_text}); delete it and run again") from None
        for b in defs.get("bindings", []):
            if b["destination_type"] == "queue":
                ch.queue_bind(b["destination"], b["source"], routing_key=b["routing_key"],
                              arguments=b.get("arguments") or None)
            else:
                ch.exchange_bind(b["destination"], b["source"], routing_key=b["routing_key"],
                                 arguments=b.get("arguments") or None)
    finally:
        conn.close()


def message_headers(**extra) -> dict:
    return {REQUEST_ID_METADATA: current_request_id(), **extra}


class ConfirmedPublisher:
    """Publishes persistent JSON messages with publisher confirms.

    pika connections are not thread-safe, so each thread of a threaded WSGI worker gets its own connection and
    channel, opened on first use and kept for the life of the thread. A publish returns only after the broker
    has confirmed it; a nack (e.g. `x-overflow: reject-publish`), an unroutable message or a broker that cannot
    be reached raises PublishFailed so the caller can compensate.

    These connections negotiate no heartbeats. A thread's connection sits idle between requests, for minutes
    on a quiet system, and pika answers heartbeats only while the thread is inside pika: the broker would close
    every idle one for missed heartbeats, and the next publish would find it dead (pika logging the loss as
    ERRORs with tracebacks). A publish is a request/confirm round trip, which finds a dead connection by itself
    (one retry on a fresh one); TCP keepalive notices a peer that vanished in between.
    """

    def __init__(self, url: str, exchange: str, routing_key: str, name: str = "publisher"):
        import threading

        self._url = url
        self._exchange = exchange
        self._routing_key = routing_key
        self._name = name
        self._local = threading.local()

    def _channel(self):
        ch = getattr(self._local, "channel", None)
        if ch is None or ch.is_closed or ch.connection.is_closed:
            conn = connect(self._url, self._name, heartbeat=0)
            ch = conn.channel()
            ch.confirm_delivery()
            self._local.channel = ch
        return ch

    def _drop(self) -> None:
        ch = getattr(self._local, "channel", None)
        self._local.channel = None
        if ch is not None:
            try:
                ch.connection.close()
            except Exception:  # noqa: BLE001 - it is being discarded anyway
                pass

    def publish(self, body: dict, *, expiration_ms: int | None = None, message_id: str | None = None) -> None:
        props = pika.BasicProperties(
            content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent,
            expiration=str(expiration_ms) if expiration_ms is not None else None,
            message_id=message_id, headers=message_headers())
        payload = json.dumps(body).encode()
        # One retry on a fresh connection: a dead pooled connection is normal after a broker restart, and a
        # duplicate message is harmless because every consumer of ours is idempotent.
        for attempt in (1, 2):
            try:
                self._channel().basic_publish(self._exchange, self._routing_key, payload, props, mandatory=True)
                return
            except (pika.exceptions.NackError, pika.exceptions.UnroutableError) as exc:
                # A quorum queue that overflowed (x-overflow reject-publish) goes on refusing a channel it has
                # refused once, even after it has room again; a new channel is judged afresh.
                self._drop()
                raise PublishFailed(f"broker refused the message: {type(exc).__name__}") from exc
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._drop()
                if attempt == 2:
                    raise PublishFailed(f"broker unavailable: {exc!r}") from exc

    def check(self) -> None:
        self._channel()

    def close(self) -> None:
        self._drop()


class PublishFailed(Exception):
    pass
