"""AMQP entrypoint: the notification consumer. Run with `python -m user_service.entrypoints.notification_consumer`.

Each message on notification.queue (trcontracts.notifications) is delivered to its fan once per notification_id:
its record, an SMS through the SMS backend and an e-mail in email_outbox, in one transaction. The rules that keep it
safe under faults are the release consumer's (inventory_service/entrypoints/release_consumer.py):

- ack only after the database commit; a crash in between means a redelivery, which finds the notification_id
  recorded and writes nothing more;
- a message that cannot be read (not JSON, not a Notification, an unknown kind) or names a user this service does
  not know is rejected without requeue: the queue dead-letters it to notification.parking.queue;
- a database outage keeps the message unacked and retries in place with backoff (a requeue would count against
  the queue's x-delivery-limit and end in the parking queue);
- a lost broker connection is re-established with bounded backoff; SIGTERM stops it cleanly.

With SMTP_HOST set, a sender thread of the same process sends the unsent rows of email_outbox (woken by each
delivery, and every EMAIL_SEND_INTERVAL_SECONDS) and marks them sent.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from functools import partial

import pika
import pika.exceptions
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError

from trcommon.amqp import connect
from trcommon.errors import DependencyUnavailable
from trcommon.logs import REQUEST_ID_METADATA, request_context
from trcommon.process import running
from trcontracts.notifications import QUEUE, Notification

from ..adapters.email import MailerUnavailable
from ..bootstrap import Container, bootstrap
from ..domain.errors import UserNotFound
from ..domain.notifications import has_nul
from ..service_layer import services
from ..settings import UserSettings

log = logging.getLogger("user_service.notification_consumer")

CONNECTION_NAME = "user-notification-consumer"
RECONNECT_BACKOFF = (0.5, 10.0)      # first and longest wait between broker reconnection attempts, seconds
DATABASE_BACKOFF = (0.5, 10.0)       # the same for retrying a message while the database is unreachable
FAILURE_REQUEUE_DELAY = 1.0          # an unexpected error: requeue after this long (counts toward delivery-limit)


@dataclass
class _Delivery:
    connection: pika.BlockingConnection
    channel: pika.adapters.blocking_connection.BlockingChannel
    tag: int
    redelivered: bool
    notification: Notification
    request_id: str
    database_failures: int = 0


class ConsumerCancelled(pika.exceptions.AMQPError):
    """The broker ended our subscription (e.g. the queue was deleted)."""


def _backoff(bounds: tuple[float, float], attempt: int) -> float:
    first, longest = bounds
    return min(longest, first * 2 ** max(0, attempt - 1))


def _request_id(properties: pika.BasicProperties) -> str | None:
    value = (properties.headers or {}).get(REQUEST_ID_METADATA)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


class EmailSender:
    """Sends email_outbox over SMTP in a thread; does nothing without a mailer (no SMTP_HOST)."""

    def __init__(self, container: Container):
        self._c = container
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats: Counter[str] = Counter()      # sent, unavailable, failed

    @property
    def enabled(self) -> bool:
        return self._c.mailer is not None

    def start(self) -> None:
        if not self.enabled:
            log.info("SMTP_HOST not set; e-mails stay in email_outbox")
            return
        self._thread = threading.Thread(target=self._run, name="email-sender", daemon=True)
        self._thread.start()
        log.info("e-mail sender started", extra={"smtp_host": self._c.mailer.host, "smtp_port": self._c.mailer.port})

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self._c.settings.smtp_timeout_seconds + 5)

    def _run(self) -> None:
        settings = self._c.settings
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            wait = settings.email_send_interval_seconds
            with request_context(None):
                try:
                    sent = services.send_pending_emails(self._c, self._c.mailer, settings.email_batch_size)
                    failures = 0
                    if sent:
                        self.stats["sent"] += sent
                        log.info("e-mails sent", extra={"count": sent})
                        if sent == settings.email_batch_size:
                            continue      # more may be waiting
                except (MailerUnavailable, DependencyUnavailable, OperationalError, InterfaceError) as exc:
                    failures += 1
                    self.stats["unavailable"] += 1
                    wait = _backoff((settings.email_send_interval_seconds, 60.0), failures)
                    log.warning("e-mail sending paused", extra={"error": repr(exc), "retry_in_seconds": wait})
                    self._stopping.wait(wait)
                    continue
                except Exception:  # noqa: BLE001 - a bug must not end the thread; the rows stay unsent
                    self.stats["failed"] += 1
                    log.exception("e-mail sending failed")
            self._wake.wait(wait)


class NotificationConsumer:
    def __init__(self, container: Container, stop: threading.Event | None = None,
                 sender: EmailSender | None = None):
        self._c = container
        self._settings = container.settings
        self._stopping = stop if stop is not None else threading.Event()
        self._sender = sender
        self._reconnects = 0
        self.consuming = threading.Event()     # set while attached to the queue
        # delivered, duplicate, parked, unknown_user, failed, redelivered, database_retries, connection_losses
        self.stats: Counter[str] = Counter()

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
                wait = _backoff(RECONNECT_BACKOFF, self._reconnects)
                log.warning("broker connection lost; reconnecting",
                            extra={"error": repr(exc), "retry_in_seconds": wait})
                self._stopping.wait(wait)
        log.info("notification consumer stopped")

    def _consume(self) -> None:
        connection = connect(self._settings.amqp_url, CONNECTION_NAME)
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self._settings.notification_prefetch)
            cancelled = threading.Event()
            # A deleted queue cancels the subscription: reconnect (with backoff) until it is back.
            channel.add_on_cancel_callback(lambda _frame: cancelled.set())
            channel.basic_consume(QUEUE, partial(self._on_message, connection))
            self._reconnects = 0
            self.consuming.set()
            log.info("consuming", extra={"queue": QUEUE, "prefetch": self._settings.notification_prefetch})
            while not self._stopping.is_set():
                connection.process_data_events(time_limit=0.2)
                if cancelled.is_set():
                    raise ConsumerCancelled(f"the broker cancelled the subscription to {QUEUE}")
        finally:
            self.consuming.clear()
            if connection.is_open:
                try:
                    connection.close()
                except (pika.exceptions.AMQPError, OSError):
                    pass

    def _park(self, channel, tag: int, why: str, **fields) -> None:
        log.warning(f"notification parked: {why}", extra=fields)
        channel.basic_reject(tag, requeue=False)
        self.stats["parked"] += 1

    def _on_message(self, connection, channel, method, properties, body: bytes) -> None:
        with request_context(_request_id(properties)) as rid:
            try:
                notification = Notification.model_validate_json(body)
            except ValidationError as exc:
                self._park(channel, method.delivery_tag, "malformed message", errors=exc.error_count(),
                           body_preview=body[:200].decode("utf-8", "replace"))
                return
            if has_nul(notification.notification_id) or has_nul(notification.data):
                self._park(channel, method.delivery_tag, "text with NUL characters",
                           notification_id=repr(notification.notification_id))
                return
            if method.redelivered:
                self.stats["redelivered"] += 1
            self._deliver(_Delivery(connection, channel, method.delivery_tag, method.redelivered, notification, rid))

    def _deliver(self, d: _Delivery) -> None:
        """Process one delivery; also the target of the delayed retries scheduled with call_later."""
        if not d.channel.is_open:
            return  # the connection it came on is gone; the broker redelivers the message
        with request_context(d.request_id):
            self._deliver_once(d)

    def _deliver_once(self, d: _Delivery) -> None:
        n = d.notification
        fields = {"notification_id": n.notification_id, "kind": str(n.kind), "user_id": str(n.user_id)}
        try:
            outcome = services.deliver_notification(self._c, n)
        except UserNotFound:
            self.stats["unknown_user"] += 1
            self._park(d.channel, d.tag, "unknown user", **fields)
            return
        except (DependencyUnavailable, OperationalError, InterfaceError) as exc:
            d.database_failures += 1
            wait = _backoff(DATABASE_BACKOFF, d.database_failures)
            log.warning("database unavailable; keeping the notification and retrying",
                        extra={**fields, "error": repr(exc), "retry_in_seconds": wait})
            self.stats["database_retries"] += 1
            d.connection.call_later(wait, partial(self._deliver, d))
            return
        except Exception:  # noqa: BLE001 - a bug must not stop the consumer; the queue's delivery-limit parks it
            log.exception("notification failed; requeueing the message", extra=fields)
            self.stats["failed"] += 1
            d.connection.call_later(FAILURE_REQUEUE_DELAY, partial(self._requeue, d))
            return
        self.stats[outcome] += 1
        log.info(f"notification {outcome}", extra={**fields, "redelivered": d.redelivered})
        d.channel.basic_ack(d.tag)
        if outcome == "delivered" and self._sender is not None:
            self._sender.wake()

    def _requeue(self, d: _Delivery) -> None:
        if d.channel.is_open:
            d.channel.basic_nack(d.tag, requeue=True)


def main() -> None:
    with running(UserSettings, bootstrap, database=True, broker=True, background=True) as p:
        sender = EmailSender(p.container)
        consumer = NotificationConsumer(p.container, stop=p.stop, sender=sender)
        sender.start()
        try:
            consumer.run()
        finally:
            sender.stop()


if __name__ == "__main__":
    main()
