"""SMS backends. `outbox` (the default, and the only one so far) writes each message to users_db.sms_outbox in
the caller's transaction, so a message exists exactly when the code it carries was stored."""
from __future__ import annotations

from .repository import SmsOutboxRepository


class OutboxSms:
    def send(self, outbox: SmsOutboxRepository, phone: str, body: str) -> None:
        outbox.add(phone, body)

    def send_all(self, outbox: SmsOutboxRepository, messages: list[tuple[str, str]]) -> None:
        """(phone, body) of each message."""
        outbox.add_all(messages)


def sms_backend(provider: str) -> OutboxSms:
    if provider == "outbox":
        return OutboxSms()
    raise ValueError(f"unknown SMS provider {provider!r}")
