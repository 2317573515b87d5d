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

from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from trcommon.errors import DependencyUnavailable
from trcommon.logs import request_context
from trcommon.process import running
from trcommon.queue_consumer import (
    DATABASE_BACKOFF,
    QueueConsumer,
    backoff,
    request_id_of,
)
from trcontracts.notifications import QUEUE, Notification

from ..adapters.email import MailerUnavailable
from ..bootstrap import Container, bootstrap
from ..domain.notifications import has_nul
from ..service_layer import services
from ..settings import UserSettings

log = logging.getLogger("user_service.notification_consumer")

CONNECTION_NAME = "user-notification-consumer"


@dataclass
class _Delivery:
    tag: int
    redelivered: bool
    notification: Notification
    request_id: str
    database_failures: int = 0


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
                    wait = backoff((settings.email_send_interval_seconds, 60.0), failures)
                    log.warning("e-mail sending paused", extra={"error": repr(exc), "retry_in_seconds": wait})
                    self._stopping.wait(wait)
                    continue
                except Exception:  # noqa: BLE001 - a bug must not end the thread; the rows stay unsent
                    self.stats["failed"] += 1
                    log.exception("e-mail sending failed")
            self._wake.wait(wait)


class NotificationConsumer(QueueConsumer):
    # stats: delivered, duplicate, parked, unknown_user, failed, redelivered, database_retries, connection_losses
    def __init__(self, container: Container, stop: threading.Event | None = None,
                 sender: EmailSender | None = None):
        super().__init__(container.settings.amqp_url, QUEUE, CONNECTION_NAME,
                         container.settings.notification_prefetch, "notification consumer", stop,
                         batch_window=container.settings.notification_batch_window_seconds)
        self._c = container
        self._settings = container.settings
        self._sender = sender

    def _park(self, channel, tag: int, why: str, **fields) -> None:
        log.warning(f"notification parked: {why}", extra=fields)
        channel.basic_reject(tag, requeue=False)
        self.stats["parked"] += 1

    def on_batch(self, connection, channel, batch) -> None:
        deliveries = []
        for m in batch:
            with request_context(request_id_of(m.properties)) as rid:
                try:
                    notification = Notification.model_validate_json(m.body)
                except ValidationError as exc:
                    self._park(channel, m.tag, "malformed message", errors=exc.error_count(),
                               body_preview=m.body[:200].decode("utf-8", "replace"))
                    continue
                if has_nul(notification.notification_id) or has_nul(notification.data):
                    self._park(channel, m.tag, "text with NUL characters",
                               notification_id=repr(notification.notification_id))
                    continue
            if m.redelivered:
                self.stats["redelivered"] += 1
            deliveries.append(_Delivery(m.tag, m.redelivered, notification, rid))
        if deliveries:
            self._deliver(connection, channel, deliveries)

    def _deliver(self, connection, channel, deliveries: list[_Delivery]) -> None:
        """Deliver these notifications in one transaction, then ack (or park) each; also the target of the delayed
        retries scheduled with call_later."""
        if not channel.is_open:
            return  # the connection they came on is gone; the broker redelivers the messages
        try:
            outcomes = services.deliver_notifications(self._c, [d.notification for d in deliveries])
        except (DependencyUnavailable, OperationalError, InterfaceError) as exc:
            failures = 1 + max(d.database_failures for d in deliveries)
            for d in deliveries:
                d.database_failures = failures
            wait = backoff(DATABASE_BACKOFF, failures)
            with request_context(deliveries[0].request_id):
                log.warning("database unavailable; keeping the notifications and retrying", extra={
                    "messages": len(deliveries),
                    "notification_ids": [d.notification.notification_id for d in deliveries[:10]],
                    "error": repr(exc), "retry_in_seconds": wait})
            self.stats["database_retries"] += 1
            connection.call_later(wait, partial(self._deliver, connection, channel, deliveries))
            return
        except Exception:  # noqa: BLE001 - a bug must not stop the consumer; the queue's delivery-limit parks it
            if len(deliveries) > 1:     # one message may be the cause: each on its own, so the others go through
                for d in deliveries:
                    self._deliver(connection, channel, [d])
                return
            d = deliveries[0]
            with request_context(d.request_id):
                log.exception("notification failed; requeueing the message", extra=_fields(d.notification))
            self.stats["failed"] += 1
            self.requeue_later(connection, channel, d.tag)
            return
        for d, outcome in zip(deliveries, outcomes):
            with request_context(d.request_id):
                fields = _fields(d.notification)
                if outcome == "unknown_user":
                    self.stats["unknown_user"] += 1
                    self._park(channel, d.tag, "unknown user", **fields)
                    continue
                self.stats[outcome] += 1
                log.info(f"notification {outcome}", extra={**fields, "redelivered": d.redelivered})
                channel.basic_ack(d.tag)
        if "delivered" in outcomes and self._sender is not None:
            self._sender.wake()


def _fields(n: Notification) -> dict:
    return {"notification_id": n.notification_id, "kind": str(n.kind), "user_id": str(n.user_id)}


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
