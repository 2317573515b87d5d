"""The one way our processes consume a queue (inventory's release consumer, user-service's notification consumer):
a blocking pika connection with a prefetch, reconnected with bounded backoff when the broker drops it or cancels the
subscription (a deleted queue), stopped cleanly by `stop()` (a signal handler).

Messages are handed over in batches: whatever the broker has delivered by the time the subclass is free (up to the
prefetch), optionally gathered for `batch_window` seconds after the first. At a trickle a batch is one message and
waits for nothing; under a burst one transaction serves many messages, so the consumer keeps up where one
transaction per message fell behind.

What every consumer does with a batch is written here once: each message is read (`read`; an unreadable one is
parked: rejected without requeue, so the queue dead-letters it), the readable ones are handled together in one
transaction (`handle`), and then each is settled under its own request id (`settle`: ack only after the commit, park,
or retry later). A database outage keeps the messages unacked and retries them in place with backoff (a requeue
would count against the queue's x-delivery-limit); any other failure of a batch is retried message by message, so
only the message that causes it goes back to the broker (after FAILURE_REQUEUE_DELAY; the delivery-limit parks one
that keeps failing)."""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

import pika
import pika.exceptions
from sqlalchemy.exc import InterfaceError, OperationalError

from .amqp import connect
from .errors import DependencyUnavailable
from .logs import REQUEST_ID_METADATA, request_context

log = logging.getLogger("trcommon.queue_consumer")

RECONNECT_BACKOFF = (0.5, 10.0)      # first and longest wait between broker reconnection attempts, seconds
DATABASE_BACKOFF = (0.5, 10.0)       # the same for retrying a message while the database is unreachable
FAILURE_REQUEUE_DELAY = 1.0          # an unexpected error: requeue after this long (counts toward delivery-limit)
DATABASE_ERRORS = (DependencyUnavailable, OperationalError, InterfaceError)

M = TypeVar("M")      # a message as the subclass reads it
O = TypeVar("O")      # what handling it found


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


class Unreadable(Exception):
    """Raised by `read`: the message is parked (`why` and `fields` go to the log line)."""

    def __init__(self, why: str, **fields: Any):
        super().__init__(why)
        self.why, self.fields = why, fields


@dataclass
class Delivery(Generic[M]):
    """A readable message on its way: kept (with its database retries) until it is acked, parked or requeued."""

    tag: int
    redelivered: bool
    message: M
    request_id: str
    received_at: float = field(default_factory=time.monotonic)
    database_failures: int = 0


class QueueConsumer(Generic[M, O]):
    """Consume `queue` until stopped. `stats` counts what the subclass reports plus `connection_losses`, `batches`,
    `parked`, `redelivered`, `database_retries` and `failed`; `consuming` is set while attached to the queue.
    `batch_window`: how long to wait for more messages once one has arrived (0: hand over what has arrived)."""

    def __init__(self, amqp_url: str, queue: str, connection_name: str, prefetch: int, description: str,
                 stop: threading.Event | None = None, batch_window: float = 0.0):
        self._amqp_url, self._queue, self._connection_name = amqp_url, queue, connection_name
        self._prefetch, self._description, self._batch_window = prefetch, description, batch_window
        self._stopping = stop if stop is not None else threading.Event()
        self._reconnects = 0
        self.consuming = threading.Event()
        self.stats: Counter[str] = Counter()

    # --- what a subclass writes --------------------------------------------------------------------------------

    def read(self, body: bytes) -> M:
        """The message, or Unreadable."""
        raise NotImplementedError

    def handle(self, messages: list[M]) -> list[O]:
        """Handle the messages in one transaction; what became of each, in order. A database error is retried."""
        raise NotImplementedError

    def settle(self, connection, channel, d: Delivery[M], outcome: O) -> None:
        """After the commit, under the message's request id: ack, `park`, or retry later with `retry`."""
        raise NotImplementedError

    def describe(self, message: M) -> dict:
        """The fields that name a message in log lines."""
        return {}

    # --- the shared handling of a batch ------------------------------------------------------------------------

    def park(self, channel, tag: int, why: str, **fields: Any) -> None:
        log.warning(f"message parked: {why}", extra={"queue": self._queue, **fields})
        channel.basic_reject(tag, requeue=False)
        self.stats["parked"] += 1

    def retry(self, connection, channel, deliveries: list[Delivery[M]], after: float) -> None:
        """Handle these deliveries again in `after` seconds (they stay unacked meanwhile)."""
        connection.call_later(after, partial(self._process, connection, channel, deliveries))

    def _take(self, connection, channel, batch: list[Received]) -> None:
        deliveries = []
        for m in batch:
            with request_context(request_id_of(m.properties)) as rid:
                try:
                    message = self.read(m.body)
                except Unreadable as exc:
                    self.park(channel, m.tag, exc.why, **exc.fields)
                    continue
            if m.redelivered:
                self.stats["redelivered"] += 1
            deliveries.append(Delivery(m.tag, m.redelivered, message, rid))
        if deliveries:
            self._process(connection, channel, deliveries)

    def _process(self, connection, channel, deliveries: list[Delivery[M]]) -> None:
        if not channel.is_open:
            return  # the connection they came on is gone; the broker redelivers the messages
        try:
            outcomes = self.handle([d.message for d in deliveries])
        except DATABASE_ERRORS as exc:
            failures = 1 + max(d.database_failures for d in deliveries)
            for d in deliveries:
                d.database_failures = failures
            wait = backoff(DATABASE_BACKOFF, failures)
            with request_context(deliveries[0].request_id):
                log.warning("database unavailable; keeping the messages and retrying", extra={
                    "queue": self._queue, "messages": len(deliveries),
                    "first": self.describe(deliveries[0].message), "error": repr(exc), "retry_in_seconds": wait})
            self.stats["database_retries"] += 1
            self.retry(connection, channel, deliveries, wait)
            return
        except Exception:  # noqa: BLE001 - a bug must not stop the consumer; the queue's delivery-limit parks it
            if len(deliveries) > 1:     # one message may be the cause: each on its own, so the others go through
                for d in deliveries:
                    self._process(connection, channel, [d])
                return
            d = deliveries[0]
            with request_context(d.request_id):
                log.exception("message failed; requeueing it", extra={"queue": self._queue,
                                                                      **self.describe(d.message)})
            self.stats["failed"] += 1
            self.requeue_later(connection, channel, d.tag)
            return
        for d, outcome in zip(deliveries, outcomes):
            with request_context(d.request_id):
                self.settle(connection, channel, d, outcome)

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
                    self._take(connection, channel, batch)
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
