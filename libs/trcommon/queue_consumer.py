"""The one way our processes consume a queue (inventory's release consumer, user-service's notification consumer):
a blocking pika connection with a prefetch, reconnected with bounded backoff when the broker drops it or cancels the
subscription (a deleted queue), stopped cleanly by `stop()` (a signal handler).

Messages are handed over in batches: whatever the broker has delivered by the time the subclass is free (up to the
prefetch), optionally gathered for `batch_window` seconds after the first. At a trickle a batch is one message and
waits for nothing; under a burst one transaction serves many messages, so the consumer keeps up where one
transaction per message fell behind. A subclass handles a batch in `on_batch`, acks each message only after its
database commit, and uses `backoff` and `requeue_later` for its retries."""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pika
import pika.exceptions

from .amqp import connect
from .logs import REQUEST_ID_METADATA

log = logging.getLogger("trcommon.queue_consumer")

RECONNECT_BACKOFF = (0.5, 10.0)      # first and longest wait between broker reconnection attempts, seconds
DATABASE_BACKOFF = (0.5, 10.0)       # the same for retrying a message while the database is unreachable
FAILURE_REQUEUE_DELAY = 1.0          # an unexpected error: requeue after this long (counts toward delivery-limit)


class ConsumerCancelled(pika.exceptions.AMQPError):
    """The broker ended our subscription (e.g. the queue was deleted)."""


def backoff(bounds: tuple[float, float], attempt: int) -> float:
    first, longest = bounds
    return min(longest, first * 2 ** max(0, attempt - 1))


def request_id_of(properties: pika.BasicProperties) -> str | None:
    """The request id a message carries in its headers (the one its publisher's request had), if any."""
    value = (properties.headers or {}).get(REQUEST_ID_METADATA)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Received:
    """One message as the broker delivered it."""

    tag: int
    redelivered: bool
    properties: pika.BasicProperties
    body: bytes


class QueueConsumer:
    """Consume `queue` until stopped. `stats` counts what the subclass reports plus `connection_losses` and
    `batches`;
    `consuming` is set while attached to the queue. `batch_window`: how long to wait for more messages once one
    has arrived (0: hand over what has arrived)."""

    def __init__(self, amqp_url: str, queue: str, connection_name: str, prefetch: int, description: str,
                 stop: threading.Event | None = None, batch_window: float = 0.0):
        self._amqp_url, self._queue, self._connection_name = amqp_url, queue, connection_name
        self._prefetch, self._description, self._batch_window = prefetch, description, batch_window
        self._stopping = stop if stop is not None else threading.Event()
        self._reconnects = 0
        self.consuming = threading.Event()
        self.stats: Counter[str] = Counter()

    def on_batch(self, connection: pika.BlockingConnection, channel, batch: list[Received]) -> None:
        """Handle 1..prefetch messages, in the order they were delivered; called outside pika's callbacks."""
        raise NotImplementedError

    def stop(self) -> None:
        """Ask run() to return; safe from a signal handler or another thread. Unacked messages are redelivered."""
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._consume()
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._reconnects += 1
                self.stats["connection_losses"] += 1
                wait = backoff(RECONNECT_BACKOFF, self._reconnects)
                log.warning("broker connection lost; reconnecting",
                            extra={"error": repr(exc), "retry_in_seconds": wait})
                self._stopping.wait(wait)
        log.info(f"{self._description} stopped")

    def _consume(self) -> None:
        connection = connect(self._amqp_url, self._connection_name)
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self._prefetch)
            cancelled = threading.Event()
            # The broker cancels the subscription when the queue is deleted; pika's blocking channel then just
            # drops the consumer. Treat it like a lost connection: reconnect (with backoff) until the queue is
            # back, rather than idle for ever.
            channel.add_on_cancel_callback(lambda _frame: cancelled.set())
            inbox: list[Received] = []
            channel.basic_consume(self._queue, lambda _ch, method, properties, body: inbox.append(
                Received(method.delivery_tag, method.redelivered, properties, body)))
            self._reconnects = 0
            self.consuming.set()
            log.info("consuming", extra={"queue": self._queue, "prefetch": self._prefetch})
            while not self._stopping.is_set():
                connection.process_data_events(time_limit=0.2)
                if inbox and self._batch_window > 0:
                    until = time.monotonic() + self._batch_window
                    while len(inbox) < self._prefetch and (left := until - time.monotonic()) > 0:
                        connection.process_data_events(time_limit=left)
                if inbox:
                    batch = inbox[:]
                    inbox.clear()
                    self.stats["batches"] += 1
                    self.on_batch(connection, channel, batch)
                if cancelled.is_set():
                    raise ConsumerCancelled(f"the broker cancelled the subscription to {self._queue}")
        finally:
            self.consuming.clear()
            if connection.is_open:
                try:
                    connection.close()
                except (pika.exceptions.AMQPError, OSError):
                    pass

    @staticmethod
    def requeue_later(connection, channel, tag: int) -> None:
        """An unexpected error: give the message back after FAILURE_REQUEUE_DELAY (the queue's delivery-limit parks
        one that keeps failing)."""
        def requeue():
            if channel.is_open:
                channel.basic_nack(tag, requeue=True)
        connection.call_later(FAILURE_REQUEUE_DELAY, requeue)
