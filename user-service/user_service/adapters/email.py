"""E-mail delivery over SMTP (smtplib), for the notification consumer's sender thread.

Without SMTP_HOST nothing is sent: users_db.email_outbox is then the record of every e-mail, as sms_outbox is of
every SMS (developers and tests read them there)."""
from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid


class MailerUnavailable(Exception):
    """The SMTP server cannot be reached or dropped the connection: nothing about any message is known."""


class MessageRefused(Exception):
    """The server refused this message (its recipient, sender or content); others may still go through."""


class SmtpSession:
    def __init__(self, smtp: smtplib.SMTP, sender: str):
        self._smtp = smtp
        self._sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="ticketremaster")
        message.set_content(body)
        try:
            self._smtp.send_message(message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise MessageRefused(repr(exc)) from exc
        except ValueError as exc:      # an address or header the e-mail library cannot write
            raise MessageRefused(repr(exc)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise MailerUnavailable(repr(exc)) from exc


class Mailer:
    """One SMTP connection per session (a pass over the outbox), with STARTTLS and login when configured."""

    def __init__(self, host: str, port: int, sender: str, user: str | None = None, password: str | None = None,
                 starttls: bool = True, timeout: float = 10.0):
        self.host, self.port, self.sender = host, port, sender
        self._user, self._password = user, password
        self._starttls, self._timeout = starttls, timeout

    @contextmanager
    def session(self) -> Iterator[SmtpSession]:
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
        except (smtplib.SMTPException, OSError) as exc:
            raise MailerUnavailable(repr(exc)) from exc
        try:
            try:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._user:
                    smtp.login(self._user, self._password or "")
            except (smtplib.SMTPException, OSError) as exc:
                raise MailerUnavailable(repr(exc)) from exc
            yield SmtpSession(smtp, self.sender)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
