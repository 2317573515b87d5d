"""Use cases of user-service. Each owns its transaction(s)."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from trcommon.auth import Principal
from trcommon.errors import Unauthorized
from trcontracts.notifications import Notification
from trcontracts.users import PENDING_REFERENCE_SUFFIX, Account, UserError, normalize_email

from ..adapters.email import Mailer, MailerUnavailable, MessageRefused
from ..adapters.repository import NewEmail, NewNotification
from ..adapters.stripe_gateway import PaymentIntent
from ..domain import notifications, otp, payments
from ..domain.errors import (
    AdminActionNotFound,
    DeadlinePassed,
    DevelopmentOnly,
    InsufficientCredits,
    InsufficientPendingCredits,
    InvalidCredentials,
    OtpExpired,
    OtpInvalid,
    OtpLocked,
    OtpProviderUnavailable,
    OtpRequired,
    PaymentsNotConfigured,
    ReferenceConflict,
    UserNotFound,
)
from ..domain.model import AdminAction, BalanceChange, LedgerEntry, NotificationRecord, User
from ..domain.otp import OtpChallenge
from ..domain.payments import CompletedPayment, RecordedIntent, StripeEvent
from .unit_of_work import UserUnitOfWork

if TYPE_CHECKING:
    from ..bootstrap import Container

log = logging.getLogger("user_service.services")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


def _existing_user(uow: UserUnitOfWork, user_id: str) -> User:
    user = uow.users.get(user_id) if _is_uuid(user_id) else None
    if user is None:
        raise UserNotFound()
    return user


# --- accounts ----------------------------------------------------------------------------------------------------

def register(c: Container, email: str, password: str, phone: str) -> str:
    user_id = str(uuid.uuid4())
    password_hash = c.passwords.hash(password)
    with c.uow(autocommit=True) as uow:
        uow.users.add(user_id, normalize_email(email), password_hash, phone)
        uow.commit()
    return user_id


def login(c: Container, email: str, password: str) -> dict:
    with c.uow(autocommit=True) as uow:
        user = uow.users.get_by_email(normalize_email(email))
    if user is None:
        c.passwords.verify_dummy(password)
        raise InvalidCredentials()
    if not c.passwords.verify(user.password_hash, password):
        raise InvalidCredentials()
    if c.passwords.needs_rehash(user.password_hash):
        with c.uow() as uow:
            uow.users.replace_password_hash(user.user_id, user.password_hash, c.passwords.hash(password))
            uow.commit()
    return c.tokens.issue_pair(Principal(user.user_id, user.role))


def refresh(c: Container, refresh_token: str) -> dict:
    principal = c.tokens.verify(refresh_token, typ="refresh")
    with c.uow(autocommit=True) as uow:
        user = uow.users.get(principal.user_id) if _is_uuid(principal.user_id) else None
    if user is None:
        raise Unauthorized("token is invalid", code=UserError.INVALID_TOKEN)
    # The role is read again: a token refreshed after a role change carries the new role.
    return c.tokens.issue_access(Principal(user.user_id, user.role))


def get_user(c: Container, user_id: str) -> User:
    with c.uow(autocommit=True) as uow:
        return _existing_user(uow, user_id)


def get_user_by_email(c: Container, email: str) -> User:
    with c.uow(autocommit=True) as uow:
        user = uow.users.get_by_email(normalize_email(email))
    if user is None:
        raise UserNotFound()
    return user


# --- credits -----------------------------------------------------------------------------------------------------

def _replayed(existing: LedgerEntry, user_id: str, amount: int, account: Account,
              actor_user_id: str | None = None) -> BalanceChange:
    if not existing.is_same_request(user_id, amount, account, actor_user_id):
        raise ReferenceConflict()
    return BalanceChange(existing, applied=False)


def _apply(uow: UserUnitOfWork, user_id: str, amount: int, reason: str, reference: str, account: Account,
           not_after: datetime | None = None, actor_user_id: str | None = None) -> BalanceChange:
    """Claim the reference with a ledger row, then move the account's balance; the caller commits only if
    applied. With `not_after`, a new change is refused once the database clock has passed it (a replay still
    answers). `actor_user_id` is the admin granting it, stored on the row."""
    entry = uow.ledger.add(str(uuid.uuid4()), user_id, amount, reason, reference, account, not_after, actor_user_id)
    if entry is None:
        existing = uow.ledger.get(reference)
        if existing is not None:
            return _replayed(existing, user_id, amount, account, actor_user_id)
        if not_after is not None:
            raise DeadlinePassed()
        # Only if a row could vanish between the two statements; ledger rows are never deleted.
        raise ReferenceConflict("the reference is being used concurrently; retry")
    balance = uow.ledger.apply_to_balance(entry)
    if balance is None:
        raise InsufficientPendingCredits() if account == Account.PENDING else InsufficientCredits()
    return BalanceChange(replace(entry, balance_after=balance), applied=True)


def _apply_at_once(c: Container, user_id: str, amount: int, reason: str, reference: str, account: Account,
                   not_after: datetime | None = None, refuse_flagged: bool = False) -> BalanceChange | None:
    """The usual case of `_apply` in one autocommitted statement (no BEGIN, no COMMIT), and a replay answered from
    the ledger with one more; None when it did not apply for another reason (a refusal, a flagged user with
    `refuse_flagged`): then `_apply`, in a transaction, says why."""
    if not _is_uuid(user_id):
        return None
    with c.uow(autocommit=True) as uow:
        entry = uow.ledger.add_and_apply(str(uuid.uuid4()), user_id, amount, reason, reference, account, not_after,
                                         refuse_flagged)
        if entry is not None:
            return BalanceChange(entry, applied=True)
        existing = uow.ledger.get(reference)
    return _replayed(existing, user_id, amount, account) if existing is not None else None


def credit(c: Container, user_id: str, amount: int, reference: str, reason: str,
           account: Account = Account.SPENDABLE, actor_user_id: str | None = None) -> BalanceChange:
    # A transaction, not `_apply_at_once`: credits are off the purchase's path (refunds, transfer proceeds), and a
    # credit whose caller died while it waited for a lock is then rolled back rather than committed anyway
    # (e2e-tests/test_transfer_crashes.py builds its "killed between the debit and the credit" case that way).
    # An admin's grant (`actor_user_id`) is a credit like any other, keyed by its reference.
    with c.uow() as uow:
        change = _apply(uow, user_id, amount, reason, reference, account, actor_user_id=actor_user_id)
        if change.applied:
            uow.commit()
        return change


def debit(c: Container, user_id: str, amount: int, reference: str, reason: str,
          account: Account = Account.SPENDABLE, otp_purpose: str | None = None, otp_code: str | None = None,
          otp_parties: Mapping[str, str] | None = None, not_after: datetime | None = None) -> BalanceChange:
    """Take `amount` credits from `account` once per reference. With `otp_purpose`, a flagged user must also
    present a valid code for it (`otp_code`), and each of `otp_parties` ({user_id: code}, e.g. a transfer's seller
    and buyer) must, flagged or not. The codes are checked in the debit's transaction and used only if the debit is
    applied (a 402 leaves them usable). With `not_after` (the end of the seat hold being paid for) no new debit
    lands after that instant."""
    if not otp_parties:
        # The usual purchase: one statement, which also refuses a flagged user when a code may be needed (that
        # case, like every refusal and replay, goes on to the path below).
        change = _apply_at_once(c, user_id, -amount, reason, reference, account, not_after,
                                refuse_flagged=bool(otp_purpose))
        if change is not None:
            return change
    codes = dict(otp_parties or {})
    code_needed = False
    with c.uow() as uow:
        if otp_purpose:
            user = _existing_user(uow, user_id)
            if user.is_flagged and user_id not in codes:
                if otp_code:
                    codes[user_id] = otp_code
                else:
                    code_needed = True
        if codes or code_needed:
            # A retry of an applied debit returns the stored result and looks at no code.
            existing = uow.ledger.get(reference)
            if existing is not None:
                return _replayed(existing, user_id, -amount, account)
        if not code_needed:
            if codes:
                try:
                    _check_codes(c, uow, otp_purpose, codes, name_parties=otp_parties is not None)
                except otp.REFUSALS:
                    # A concurrent twin of this request may have used the codes for this very reference: then
                    # this is a retry, answered from the ledger (committed with the codes, so visible now).
                    existing = uow.ledger.get(reference)
                    if existing is None:
                        raise
                    return _replayed(existing, user_id, -amount, account)
            change = _apply(uow, user_id, -amount, reason, reference, account, not_after)
            if change.applied:
                uow.commit()
            return change
    expires_at = send_otp(c, user_id, otp_purpose)
    raise OtpRequired(details={"otp_purpose": otp_purpose, "expires_at": expires_at.isoformat()})


def release_pending(c: Container, user_id: str, amount: int, reference: str, reason: str) -> BalanceChange:
    """Move `amount` of the user's pending credits to their spendable balance, once per reference: a spendable
    row under `reference` and a pending row under its pending twin, in one transaction, so that each balance
    stays the sum of its account's rows. The answer is the spendable row."""
    pending_reference = reference + PENDING_REFERENCE_SUFFIX
    with c.uow() as uow:
        released = _apply(uow, user_id, amount, reason, reference, Account.SPENDABLE)
        if not released.applied:
            # A retry, but only if the reference was a release: a plain credit under it moved no pending credits.
            pending = uow.ledger.get(pending_reference)
            if pending is None or not pending.is_same_request(user_id, -amount, Account.PENDING):
                raise ReferenceConflict()
            return released
        if not _apply(uow, user_id, -amount, reason, pending_reference, Account.PENDING).applied:
            # The twin reference was used on its own: taking it as done would create credits.
            raise ReferenceConflict(f"{pending_reference} was already used")
        uow.commit()
        return released


def ledger_entries(c: Container, reference: str | None, user_id: str | None, limit: int,
                   offset: int) -> list[LedgerEntry]:
    with c.uow(autocommit=True) as uow:
        if reference is not None:
            entry = uow.ledger.get(reference)
            entries = [entry] if entry is not None and (user_id is None or entry.user_id == user_id) else []
            return entries[offset:offset + limit]
        return uow.ledger.for_user(user_id, limit, offset)


def set_flag(c: Container, user_id: str, flagged: bool) -> User:
    """Flag or unflag a user (any role: an admin's account can be at risk too); the same value again changes
    nothing."""
    with c.uow(autocommit=True) as uow:
        user = uow.users.set_flag(user_id, flagged) if _is_uuid(user_id) else None
    if user is None:
        raise UserNotFound()
    log.info("user flag set", extra={"user_id": user_id, "flagged": flagged})
    return user


# --- admin audit trail -------------------------------------------------------------------------------------------

def record_admin_action(c: Container, action_id: str, admin_id: str, action: str, target_type: str, target_id: str,
                        request: dict, before: dict | None) -> tuple[AdminAction, bool]:
    """Record an action as PENDING once per action_id; returns the record and whether this call created it (a
    retry gets the stored record, unchanged)."""
    with c.uow(autocommit=True) as uow:
        created = uow.admin_actions.add(action_id, admin_id, action, target_type, target_id, request, before)
        if created is not None:
            return created, True
        return uow.admin_actions.get(action_id), False


def finish_admin_action(c: Container, action_id: str, outcome: str, after: dict | None,
                        error_code: str | None) -> AdminAction:
    """End a PENDING action; a later finish answers the record as the first one left it."""
    if not _is_uuid(action_id):
        raise AdminActionNotFound()
    with c.uow(autocommit=True) as uow:
        finished = uow.admin_actions.finish(action_id, outcome, after, error_code)
        if finished is not None:
            return finished
        existing = uow.admin_actions.get(action_id)
    if existing is None:
        raise AdminActionNotFound()
    return existing


def admin_actions(c: Container, admin_id: str | None, target_type: str | None, target_id: str | None,
                  action: str | None, limit: int, offset: int) -> list[AdminAction]:
    with c.uow(autocommit=True) as uow:
        return uow.admin_actions.list(admin_id, target_type, target_id, action, limit, offset)


# --- notifications -----------------------------------------------------------------------------------------------

def deliver_notifications(c: Container, batch: Sequence[Notification]) -> list[str]:
    """Deliver notifications (one, or a batch the consumer received together) once per notification_id, in one
    transaction: each one's record, an SMS to the user's phone (through the SMS backend) and an e-mail in
    email_outbox. What became of each, in order: "delivered"; "duplicate" when its id was delivered before or
    earlier in the batch (nothing written); "unknown_user" for a user this service does not know (nothing written)."""
    with c.uow() as uow:
        users = uow.users.get_many(str(n.user_id) for n in batch)
        recorded = uow.notifications.add_new([
            NewNotification(n.notification_id, str(n.user_id), str(n.kind), dict(n.data), n.occurred_at)
            for n in batch if str(n.user_id) in users])
        outcomes, sms, emails = [], [], []
        for n in batch:
            user = users.get(str(n.user_id))
            if user is None:
                outcomes.append("unknown_user")
                continue
            if n.notification_id not in recorded:
                outcomes.append("duplicate")
                continue
            recorded.discard(n.notification_id)       # a second mention in the batch is a duplicate
            message = notifications.render(n.kind, dict(n.data))
            if user.phone:
                sms.append((user.phone, message.sms))
            emails.append(NewEmail(str(n.user_id), user.email, message.subject, message.body, n.notification_id))
            outcomes.append("delivered")
        c.sms.send_all(uow.sms_outbox, sms)
        uow.email_outbox.add_all(emails)
        uow.commit()
    return outcomes


def user_notifications(c: Container, user_id: str, limit: int, offset: int) -> list[NotificationRecord]:
    with c.uow(autocommit=True) as uow:
        _existing_user(uow, user_id)
        return uow.notifications.for_user(user_id, limit, offset)


def send_pending_emails(c: Container, mailer: Mailer, batch: int) -> int:
    """Send up to `batch` unsent e-mails of the outbox and mark each sent; returns how many were sent. The rows are
    locked while they are sent, so two senders never send one twice; a crash after sending and before the commit
    sends it again (at least once). A message the server refuses counts one attempt (given up after
    EMAIL_MAX_ATTEMPTS); a server that cannot be reached ends the pass without counting."""
    sent = 0
    with c.uow() as uow:
        pending = uow.email_outbox.claim_unsent(batch, c.settings.email_max_attempts)
        if not pending:
            return 0
        unavailable: MailerUnavailable | None = None
        try:
            with mailer.session() as session:
                for email in pending:
                    try:
                        session.send(email.email, email.subject, email.body)
                    except MessageRefused as refused:
                        log.warning("e-mail refused by the SMTP server",
                                    extra={"email_id": email.id, "error": str(refused)})
                        uow.email_outbox.record_failure(email.id, str(refused))
                        continue
                    uow.email_outbox.mark_sent(email.id)
                    sent += 1
        except MailerUnavailable as exc:
            # What went out before the server was lost stays sent; the rest waits for the next pass.
            unavailable = exc
        uow.commit()
    if unavailable is not None:
        raise unavailable
    return sent


# --- one-time codes ----------------------------------------------------------------------------------------------

def send_otp(c: Container, user_id: str, purpose: str) -> datetime:
    """Send a new code for `purpose`, retiring the previous one; returns when it expires."""
    provider = c.otp_provider
    prepared = provider.prepare(user_id, purpose)
    with c.uow() as uow:
        if not _is_uuid(user_id):
            raise UserNotFound()
        # The row lock makes the hourly cap exact under concurrent sends.
        user = uow.users.get_for_update(user_id)
        if user is None:
            raise UserNotFound()
        now = _now()
        sent, oldest = uow.otps.sends_since(user_id, now - otp.SEND_WINDOW)
        otp.ensure_send_allowed(sent, oldest, now, c.settings.otp_sends_per_hour)
        uow.otps.supersede_live(user_id, None if provider.supersedes_every_purpose else purpose, now)
        challenge = OtpChallenge(otp_id=str(uuid.uuid4()), user_id=user_id, purpose=purpose,
                                 code_hash=prepared.code_hash,
                                 expires_at=now + timedelta(seconds=c.settings.otp_ttl_seconds),
                                 attempts=0, used_at=None, created_at=now)
        uow.otps.add(challenge)
        if prepared.sms_body:
            c.sms.send(uow.sms_outbox, user.phone, prepared.sms_body)
        uow.commit()
    try:
        provider.deliver(user.phone)
    except OtpProviderUnavailable:
        # Not delivered: forget it, so it neither counts toward the cap nor waits to be guessed.
        with c.uow() as uow:
            uow.otps.discard(challenge.otp_id)
            uow.commit()
        raise
    return challenge.expires_at


def _check_codes(c: Container, uow: UserUnitOfWork, purpose: str, codes: Mapping[str, str],
                 name_parties: bool = False) -> None:
    """The one check of one-time codes: `codes[user_id]` must be the valid, unused code last sent to that user for
    `purpose`, for every user given. All are marked used in the caller's transaction, so they are used only if
    what they authorise commits with them. If any is refused none is used: each wrong one is counted and committed
    at once (the request fails, but a try must stay counted), and the first refusal in the order given is raised;
    with `name_parties` its details list every refused party."""
    holders = {user_id: _existing_user(uow, user_id) for user_id in codes}
    max_attempts = c.settings.otp_max_attempts
    usable: list[OtpChallenge] = []
    refused: dict[str, OtpInvalid | OtpExpired | OtpLocked] = {}
    counted = False
    # Locked in one order whatever the caller's, so that concurrent checks of the same codes cannot deadlock.
    for user_id in sorted(codes):
        challenge = uow.otps.current_for_update(user_id, purpose)
        try:
            if challenge is None:
                raise OtpInvalid("no code was sent for this purpose")
            # Read after the lock: a wait for a concurrent check must not stretch the code's life.
            challenge.ensure_usable(_now(), max_attempts)
            if not c.otp_provider.verify(challenge, holders[user_id].phone, codes[user_id]):
                uow.otps.record_failure(challenge.otp_id)
                counted = True
                raise otp.wrong_code(challenge, max_attempts)
        except otp.REFUSALS as refusal:
            refused[user_id] = refusal
        else:
            usable.append(challenge)
    if refused:
        if counted:
            uow.commit()
        in_order = [user_id for user_id in codes if user_id in refused]
        first = refused[in_order[0]]
        if name_parties:
            first.details = {"parties": [{"user_id": user_id, "code": str(refused[user_id].code),
                                          "message": refused[user_id].message} for user_id in in_order]}
        raise first
    now = _now()
    for challenge in usable:
        uow.otps.mark_used(challenge.otp_id, now)


def verify_otp(c: Container, user_id: str, purpose: str, code: str) -> None:
    with c.uow() as uow:
        _check_codes(c, uow, purpose, {user_id: code})
        uow.commit()


# --- Stripe ------------------------------------------------------------------------------------------------------

def create_topup(c: Container, user_id: str, amount: int) -> PaymentIntent:
    # The amount first: an amount out of bounds is the caller's mistake whether or not payments are configured.
    payments.check_topup_amount(amount, c.settings.topup_min_amount, c.settings.topup_max_amount)
    if not c.stripe.payments_enabled:
        raise PaymentsNotConfigured()
    with c.uow() as uow:
        _existing_user(uow, user_id)
    # No transaction is open during the call to Stripe.
    intent = c.stripe.create_payment_intent(user_id, amount, c.settings.currency)
    with c.uow() as uow:
        uow.payments.add_intent(RecordedIntent(intent.payment_intent_id, user_id, intent.amount, intent.currency,
                                               intent.status))
        uow.commit()
    return intent


def record_development_intent(c: Container, user_id: str, amount: int) -> RecordedIntent:
    """A PaymentIntent recorded as a top-up records one, without Stripe: what a development payment (`make topup`,
    the tests, the bench) then pays with a signed webhook. Never in production; at most the top-up maximum."""
    if c.settings.environment == "production":
        raise DevelopmentOnly()
    payments.check_topup_amount(amount, 1, c.settings.topup_max_amount)
    intent = RecordedIntent(f"{payments.DEVELOPMENT_INTENT_PREFIX}{uuid.uuid4().hex}", user_id, amount,
                            c.settings.currency, "requires_payment_method", origin="development")
    with c.uow() as uow:
        _existing_user(uow, user_id)
        uow.payments.add_intent(intent)
        uow.commit()
    return intent


def _credit_payment(uow: UserUnitOfWork, payment: CompletedPayment | None) -> str:
    """Credit a reported payment only as it was ordered: its PaymentIntent recorded by a top-up, to the recorded
    user, for the recorded amount and currency. Anything else credits nothing and is logged (the event is still
    acknowledged, so that Stripe stops sending it)."""
    if payment is None:
        return "ignored"
    intent = uow.payments.get_intent(payment.payment_id)
    if intent is None:
        log.warning("payment for a payment intent this system did not create; not credited",
                    extra={"payment_id": payment.payment_id, "amount": payment.amount, "currency": payment.currency})
        return "unknown_intent"
    problem = payments.mismatch(payment, intent)
    if problem is not None:
        log.error("payment differs from its recorded payment intent; not credited",
                  extra={"payment_id": payment.payment_id, "problem": problem})
        return "mismatch"
    try:
        change = _apply(uow, intent.user_id, intent.amount, payments.TOPUP_REASON, payment.reference,
                        Account.SPENDABLE)
    except ReferenceConflict:
        # Only if a row under this reference was written some other way: keep it, flag this one.
        log.error("payment already credited differently", extra={"payment_id": payment.payment_id})
        return "conflict"
    if not change.applied:
        return "already_credited"
    uow.payments.mark_intent(payment.payment_id, "succeeded")
    return "credited"


def receive_stripe_webhook(c: Container, payload: bytes, signature_header: str | None) -> str:
    """Verify a webhook delivery and apply its event; returns what was done with it."""
    return handle_stripe_event(c, c.stripe.parse_event(payload, signature_header))


def handle_stripe_event(c: Container, event: StripeEvent) -> str:
    """Apply a verified webhook event once per event id, and credit each payment once whatever events report it
    (the ledger reference is the payment's)."""
    payment = payments.completed_payment(event)
    with c.uow() as uow:
        if not uow.payments.claim_event(event.event_id, event.type):
            outcome = "duplicate"
        else:
            outcome = _credit_payment(uow, payment)
            uow.payments.set_event_outcome(event.event_id, outcome, payment.reference if payment else None)
            uow.commit()
    log.info("stripe event", extra={"event_id": event.event_id, "event_type": event.type, "outcome": outcome})
    return outcome
