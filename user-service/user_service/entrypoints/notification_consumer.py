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

from pydantic import ValidationError
from trcommon.logs import request_context
from trcommon.process import running
from trcommon.queue_consumer import DATABASE_ERRORS, Delivery, QueueConsumer, Unreadable, backoff
from trcontracts.notifications import QUEUE, Notification

from ..adapters.email import MailerUnavailable
from ..bootstrap import Container, bootstrap
from ..domain.notifications import has_nul
from ..service_layer import services
from ..settings import UserSettings

log = logging.getLogger("user_service.notification_consumer")

CONNECTION_NAME = "user-notification-consumer"


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
                except (MailerUnavailable, *DATABASE_ERRORS) as exc:
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


class NotificationConsumer(QueueConsumer[Notification, str]):
    # stats: delivered, duplicate, unknown_user (and QueueConsumer's)
    def __init__(self, container: Container, stop: threading.Event | None = None,
                 sender: EmailSender | None = None):
        super().__init__(container.settings.amqp_url, QUEUE, CONNECTION_NAME,
                         container.settings.notification_prefetch, "notification consumer", stop,
                         batch_window=container.settings.notification_batch_window_seconds)
        self._c = container
        self._sender = sender

    def read(self, body: bytes) -> Notification:
        try:
            notification = Notification.model_validate_json(body)
        except ValidationError as exc:
            raise Unreadable("malformed notification", errors=exc.error_count(),
                             body_preview=body[:200].decode("utf-8", "replace")) from None
        if has_nul(notification.notification_id) or has_nul(notification.data):
            raise Unreadable("notification text with NUL characters",
                             notification_id=repr(notification.notification_id))
        return notification

    def describe(self, n: Notification) -> dict:
        return {"notification_id": n.notification_id, "kind": str(n.kind), "user_id": str(n.user_id)}

    def handle(self, messages: list[Notification]) -> list[str]:
        outcomes = services.deliver_notifications(self._c, messages)
        if "delivered" in outcomes and self._sender is not None:
            self._sender.wake()
        return outcomes

    def settle(self, connection, channel, d: Delivery[Notification], outcome: str) -> None:
        self.stats[outcome] += 1
        if outcome == "unknown_user":
            self.park(channel, d.tag, "unknown user", **self.describe(d.message))
            return
        log.info(f"notification {outcome}", extra={**self.describe(d.message), "redelivered": d.redelivered})
        channel.basic_ack(d.tag)


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
