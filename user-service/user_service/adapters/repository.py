"""The SQL of user-service. Every method runs on the unit of work's connection, inside its transaction."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from trcommon.db import UNIQUE_VIOLATION, Prepared, sqlstate
from trcontracts.users import Account

from ..domain.errors import EmailTaken, UserNotFound
from ..domain.model import AdminAction, LedgerEntry, NotificationRecord, User
from ..domain.otp import OtpChallenge
from ..domain.payments import RecordedIntent
from .tables import (
    admin_actions,
    credit_ledger,
    email_outbox,
    notifications,
    otp_codes,
    sms_outbox,
    stripe_events,
    stripe_payment_intents,
    users,
)

FOREIGN_KEY_VIOLATION = "23503"

_USER_COLUMNS = (users.c.user_id, users.c.email, users.c.password_hash, users.c.phone, users.c.role,
                 users.c.credit_balance, users.c.pending_credits, users.c.is_flagged, users.c.created_at)
_LEDGER_COLUMNS = (credit_ledger.c.entry_id, credit_ledger.c.user_id, credit_ledger.c.amount,
                   credit_ledger.c.balance_after, credit_ledger.c.reason, credit_ledger.c.reference,
                   credit_ledger.c.account, credit_ledger.c.created_at, credit_ledger.c.actor_user_id)
_OTP_COLUMNS = (otp_codes.c.otp_id, otp_codes.c.user_id, otp_codes.c.purpose, otp_codes.c.code_hash,
                otp_codes.c.expires_at, otp_codes.c.attempts, otp_codes.c.used_at, otp_codes.c.created_at)


def _change_in_one_statement(balance: sa.Column, account: Account) -> sa.Insert:
    """Move one account's balance and write its ledger row (with balance_after) in one statement: the UPDATE of
    the user row is conditional on the balance staying at or above zero, on the reference being unused, with
    `p_refuse_flagged` on the user not being flagged, and with `p_not_after` on the database clock not having passed
    it; the ledger row is written only from the row the UPDATE returns. A concurrent twin of the same reference,
    which passed the same check, fails on the reference's unique index, and the whole statement with it."""
    c = credit_ledger.c
    user_id = sa.bindparam("p_user_id", type_=users.c.user_id.type)
    amount = sa.bindparam("p_amount", type_=sa.BigInteger)
    reference = sa.bindparam("p_reference", type_=sa.Text)
    not_after = sa.bindparam("p_not_after", type_=sa.DateTime(timezone=True))
    moved = (sa.update(users)
             .where(users.c.user_id == user_id, balance + amount >= 0,
                    sa.or_(not_after.is_(None), sa.func.clock_timestamp() <= not_after),
                    sa.not_(sa.and_(sa.bindparam("p_refuse_flagged", type_=sa.Boolean), users.c.is_flagged)),
                    ~sa.exists().where(c.reference == reference))
             .values({balance: balance + amount, users.c.updated_at: sa.func.now()})
             .returning(users.c.user_id, balance.label("balance"))
             .cte("moved"))
    row = sa.select(sa.bindparam("p_entry_id", type_=c.entry_id.type), moved.c.user_id, amount,
                    sa.bindparam("p_reason", type_=sa.Text), reference, sa.literal(str(account), sa.Text),
                    moved.c.balance)
    return (sa.insert(credit_ledger)
            .from_select(["entry_id", "user_id", "amount", "reason", "reference", "account", "balance_after"], row)
            .returning(*_LEDGER_COLUMNS)
            .add_cte(moved))


_CHANGE_IN_ONE_STATEMENT = {
    Account.SPENDABLE: Prepared(_change_in_one_statement(users.c.credit_balance, Account.SPENDABLE)),
    Account.PENDING: Prepared(_change_in_one_statement(users.c.pending_credits, Account.PENDING))}


def _ledger_entry(row) -> LedgerEntry:
    return LedgerEntry(**{**row._mapping, "account": Account(row.account)})


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(getattr(exc, "orig", None), "diag", None)
    return getattr(diag, "constraint_name", None)


class UserRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add(self, user_id: str, email: str, password_hash: str, phone: str) -> None:
        """Insert a new fan. The unique constraint, not a prior lookup, decides a race between two sign-ups."""
        try:
            self._conn.execute(sa.insert(users).values(user_id=user_id, email=email, password_hash=password_hash,
                                                       phone=phone, role="fan"))
        except IntegrityError as exc:
            if sqlstate(exc) == UNIQUE_VIOLATION and _constraint(exc) == "uq_users_email":
                raise EmailTaken() from None
            raise

    def add_if_absent(self, user_id: str, email: str, password_hash: str, phone: str, role: str,
                      is_flagged: bool) -> bool:
        result = self._conn.execute(
            insert(users).values(user_id=user_id, email=email, password_hash=password_hash, phone=phone, role=role,
                                 is_flagged=is_flagged).on_conflict_do_nothing())
        return result.rowcount == 1

    def get(self, user_id: str) -> User | None:
        row = self._conn.execute(sa.select(*_USER_COLUMNS).where(users.c.user_id == user_id)).first()
        return User(**row._mapping) if row else None

    def get_many(self, user_ids: Iterable[str]) -> dict[str, User]:
        """The users found among these ids, by id."""
        rows = self._conn.execute(sa.select(*_USER_COLUMNS).where(users.c.user_id.in_(sorted(set(user_ids)))))
        return {str(row.user_id): User(**row._mapping) for row in rows}

    def get_for_update(self, user_id: str) -> User | None:
        """The user row, locked against concurrent OTP sends (FOR NO KEY UPDATE: foreign keys are not blocked)."""
        row = self._conn.execute(sa.select(*_USER_COLUMNS).where(users.c.user_id == user_id)
                                 .with_for_update(key_share=True)).first()
        return User(**row._mapping) if row else None

    def get_by_email(self, email: str) -> User | None:
        row = self._conn.execute(sa.select(*_USER_COLUMNS).where(users.c.email == email)).first()
        return User(**row._mapping) if row else None

    def set_flag(self, user_id: str, flagged: bool) -> User | None:
        """Set is_flagged (touching the row only when it changes); None when there is no such user."""
        changed = self._conn.execute(
            sa.update(users).where(users.c.user_id == user_id, users.c.is_flagged.is_distinct_from(flagged))
            .values(is_flagged=flagged, updated_at=sa.func.now()).returning(*_USER_COLUMNS)).first()
        return User(**changed._mapping) if changed else self.get(user_id)

    def replace_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> None:
        # Conditional on the old hash, so a rehash never overwrites a password changed meanwhile.
        self._conn.execute(sa.update(users)
                           .where(users.c.user_id == user_id, users.c.password_hash == old_hash)
                           .values(password_hash=new_hash, updated_at=sa.func.now()))


class LedgerRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add(self, entry_id: str, user_id: str, amount: int, reason: str, reference: str, account: Account,
            not_after: datetime | None = None, actor_user_id: str | None = None) -> LedgerEntry | None:
        """Claim `reference` with a new entry; None when the reference already exists (the caller's retry, or
        a concurrent request with the same reference, which this insert waits for) or, with `not_after`, when
        the database clock has passed it (the caller tells the two apart with `get`)."""
        c = credit_ledger.c
        columns = ((entry_id, c.entry_id), (user_id, c.user_id), (amount, c.amount), (reason, c.reason),
                   (reference, c.reference), (str(account), c.account), (actor_user_id, c.actor_user_id))
        values = sa.select(*(sa.literal(v, col.type).label(col.name) for v, col in columns))
        if not_after is not None:
            values = values.where(sa.func.clock_timestamp() <= not_after)
        try:
            row = self._conn.execute(
                insert(credit_ledger)
                .from_select([col.name for _, col in columns], values)
                .on_conflict_do_nothing(index_elements=[credit_ledger.c.reference])
                .returning(*_LEDGER_COLUMNS)).first()
        except IntegrityError as exc:
            if sqlstate(exc) == FOREIGN_KEY_VIOLATION:
                raise UserNotFound() from None
            raise
        return _ledger_entry(row) if row else None

    def add_and_apply(self, entry_id: str, user_id: str, amount: int, reason: str, reference: str, account: Account,
                      not_after: datetime | None = None, refuse_flagged: bool = False) -> LedgerEntry | None:
        """The usual balance change in one statement: a new ledger row under `reference` and the account's balance
        moved by `amount`, or nothing at all and None: the reference is taken (a replay, or a concurrent twin), the
        balance would go below zero, the user is missing, flagged (with `refuse_flagged`) or `not_after` has
        passed. The caller tells these apart on the transactional path (`add`, `apply_to_balance`)."""
        try:
            row = _CHANGE_IN_ONE_STATEMENT[account].first(self._conn, {
                "p_entry_id": entry_id, "p_user_id": user_id, "p_amount": amount, "p_reason": reason,
                "p_reference": reference, "p_not_after": not_after, "p_refuse_flagged": refuse_flagged})
        except IntegrityError as exc:
            if sqlstate(exc) == UNIQUE_VIOLATION:
                return None
            raise
        return _ledger_entry(row) if row else None

    def apply_to_balance(self, entry: LedgerEntry) -> int | None:
        """Move the balance of the entry's account by its amount and record the new balance on the entry, in one
        statement. None, and nothing changed, when the balance would go below zero: the conditional UPDATE is
        what makes concurrent debits safe (each re-checks the row after waiting for the lock)."""
        balance = users.c.pending_credits if entry.account == Account.PENDING else users.c.credit_balance
        moved = (sa.update(users)
                 .where(users.c.user_id == entry.user_id, balance + entry.amount >= 0)
                 .values({balance: balance + entry.amount, users.c.updated_at: sa.func.now()})
                 .returning(users.c.user_id, balance.label("balance"))
                 .cte("moved"))
        row = self._conn.execute(
            sa.update(credit_ledger)
            .where(credit_ledger.c.entry_id == entry.entry_id, credit_ledger.c.user_id == moved.c.user_id)
            .values(balance_after=moved.c.balance)
            .returning(credit_ledger.c.balance_after)).first()
        return row.balance_after if row else None

    def get(self, reference: str) -> LedgerEntry | None:
        row = self._conn.execute(sa.select(*_LEDGER_COLUMNS).where(credit_ledger.c.reference == reference)).first()
        return _ledger_entry(row) if row else None

    def for_user(self, user_id: str, limit: int, offset: int) -> list[LedgerEntry]:
        rows = self._conn.execute(sa.select(*_LEDGER_COLUMNS).where(credit_ledger.c.user_id == user_id)
                                  .order_by(credit_ledger.c.created_at.desc(), credit_ledger.c.entry_id)
                                  .limit(limit).offset(offset))
        return [_ledger_entry(row) for row in rows]


class OtpRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add(self, challenge: OtpChallenge) -> None:
        self._conn.execute(sa.insert(otp_codes).values(
            otp_id=challenge.otp_id, user_id=challenge.user_id, purpose=challenge.purpose,
            code_hash=challenge.code_hash, expires_at=challenge.expires_at, attempts=challenge.attempts,
            used_at=challenge.used_at, created_at=challenge.created_at))

    def supersede_live(self, user_id: str, purpose: str | None, now: datetime) -> None:
        """Retire the user's unused codes for `purpose` (for every purpose when None)."""
        stmt = (sa.update(otp_codes)
                .where(otp_codes.c.user_id == user_id, otp_codes.c.superseded_at.is_(None),
                       otp_codes.c.used_at.is_(None))
                .values(superseded_at=now))
        if purpose is not None:
            stmt = stmt.where(otp_codes.c.purpose == purpose)
        self._conn.execute(stmt)

    def current_for_update(self, user_id: str, purpose: str) -> OtpChallenge | None:
        """The latest code for this user and purpose, locked so that two checks of it are serialised."""
        row = self._conn.execute(
            sa.select(*_OTP_COLUMNS)
            .where(otp_codes.c.user_id == user_id, otp_codes.c.purpose == purpose,
                   otp_codes.c.superseded_at.is_(None))
            .order_by(otp_codes.c.created_at.desc()).limit(1)
            .with_for_update()).first()
        return OtpChallenge(**row._mapping) if row else None

    def record_failure(self, otp_id: str) -> None:
        self._conn.execute(sa.update(otp_codes).where(otp_codes.c.otp_id == otp_id)
                           .values(attempts=otp_codes.c.attempts + 1))

    def mark_used(self, otp_id: str, now: datetime) -> None:
        self._conn.execute(sa.update(otp_codes).where(otp_codes.c.otp_id == otp_id).values(used_at=now))

    def discard(self, otp_id: str) -> None:
        self._conn.execute(sa.delete(otp_codes).where(otp_codes.c.otp_id == otp_id))

    def sends_since(self, user_id: str, since: datetime) -> tuple[int, datetime | None]:
        row = self._conn.execute(
            sa.select(sa.func.count(), sa.func.min(otp_codes.c.created_at))
            .where(otp_codes.c.user_id == user_id, otp_codes.c.created_at > since)).one()
        return row[0], row[1]


class SmsOutboxRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add(self, phone: str, body: str) -> None:
        self.add_all([(phone, body)])

    def add_all(self, messages: list[tuple[str, str]]) -> None:
        """(phone, body) of each message, in one statement."""
        if messages:
            self._conn.execute(sa.insert(sms_outbox).values([{"phone": p, "body": b} for p, b in messages]))

    def latest_for(self, phone: str, limit: int = 10) -> list[str]:
        rows = self._conn.execute(sa.select(sms_outbox.c.body).where(sms_outbox.c.phone == phone)
                                  .order_by(sms_outbox.c.id.desc()).limit(limit))
        return [row.body for row in rows]


class PaymentRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add_intent(self, intent: RecordedIntent) -> None:
        self._conn.execute(insert(stripe_payment_intents).values(
            payment_intent_id=intent.payment_intent_id, user_id=intent.user_id, amount=intent.amount,
            currency=intent.currency, status=intent.status, origin=intent.origin,
        ).on_conflict_do_nothing())

    def get_intent(self, payment_intent_id: str) -> RecordedIntent | None:
        t = stripe_payment_intents.c
        row = self._conn.execute(sa.select(t.payment_intent_id, t.user_id, t.amount, t.currency, t.status, t.origin)
                                 .where(t.payment_intent_id == payment_intent_id)).first()
        return None if row is None else RecordedIntent(**row._mapping)

    def mark_intent(self, payment_intent_id: str, status: str) -> None:
        self._conn.execute(sa.update(stripe_payment_intents)
                           .where(stripe_payment_intents.c.payment_intent_id == payment_intent_id)
                           .values(status=status, updated_at=sa.func.now()))

    def claim_event(self, event_id: str, event_type: str) -> bool:
        """Record a webhook event; False when it was recorded before (a replay). A concurrent replay waits here
        for the first delivery's transaction and then sees it."""
        row = self._conn.execute(
            insert(stripe_events).values(event_id=event_id, type=event_type, outcome="received")
            .on_conflict_do_nothing().returning(stripe_events.c.event_id)).first()
        return row is not None

    def set_event_outcome(self, event_id: str, outcome: str, payment_reference: str | None) -> None:
        self._conn.execute(sa.update(stripe_events).where(stripe_events.c.event_id == event_id)
                           .values(outcome=outcome, payment_reference=payment_reference))


_ADMIN_ACTION_COLUMNS = tuple(admin_actions.c)


class AdminActionRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add(self, action_id: str, admin_id: str, action: str, target_type: str, target_id: str, request: dict,
            before: dict | None) -> AdminAction | None:
        """Record a PENDING action; None when `action_id` is recorded already (a retry, or a concurrent twin,
        which this insert waits for)."""
        row = self._conn.execute(
            insert(admin_actions).values(action_id=action_id, admin_id=admin_id, action=action,
                                         target_type=target_type, target_id=target_id, request=request,
                                         before=before)
            .on_conflict_do_nothing(index_elements=[admin_actions.c.action_id])
            .returning(*_ADMIN_ACTION_COLUMNS)).first()
        return AdminAction(**row._mapping) if row else None

    def get(self, action_id: str) -> AdminAction | None:
        row = self._conn.execute(sa.select(*_ADMIN_ACTION_COLUMNS)
                                 .where(admin_actions.c.action_id == action_id)).first()
        return AdminAction(**row._mapping) if row else None

    def finish(self, action_id: str, outcome: str, after: dict | None, error_code: str | None) -> AdminAction | None:
        """End a PENDING action; None when it is not PENDING (finished before: the first finish wins) or absent."""
        row = self._conn.execute(
            sa.update(admin_actions)
            .where(admin_actions.c.action_id == action_id, admin_actions.c.outcome == "PENDING")
            .values(outcome=outcome, after=after, error_code=error_code, finished_at=sa.func.now())
            .returning(*_ADMIN_ACTION_COLUMNS)).first()
        return AdminAction(**row._mapping) if row else None

    def list(self, admin_id: str | None, target_type: str | None, target_id: str | None, action: str | None,
             limit: int, offset: int) -> list[AdminAction]:
        a = admin_actions.c
        stmt = sa.select(*_ADMIN_ACTION_COLUMNS)
        for column, value in ((a.admin_id, admin_id), (a.target_type, target_type), (a.target_id, target_id),
                              (a.action, action)):
            if value is not None:
                stmt = stmt.where(column == value)
        rows = self._conn.execute(stmt.order_by(a.created_at.desc(), a.action_id.desc()).limit(limit).offset(offset))
        return [AdminAction(**row._mapping) for row in rows]


_NOTIFICATION_COLUMNS = (notifications.c.notification_id, notifications.c.kind, notifications.c.data,
                         notifications.c.occurred_at, notifications.c.delivered_at)


class NotificationRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add_new(self, records: list[NewNotification]) -> set[str]:
        """Record notifications in one statement; the ids recorded now. An id recorded already (a redelivery or a
        republish, or twice in `records`) is skipped; a concurrent twin's insert waits for the first one's
        transaction. Rows go in by id, so two batches that share ids never wait for each other in a cycle."""
        if not records:
            return set()
        rows = self._conn.execute(
            insert(notifications).values([r._asdict() for r in sorted(records, key=lambda r: r.notification_id)])
            .on_conflict_do_nothing(index_elements=[notifications.c.notification_id])
            .returning(notifications.c.notification_id))
        return {row.notification_id for row in rows}

    def for_user(self, user_id: str, limit: int, offset: int) -> list[NotificationRecord]:
        n = notifications.c
        rows = self._conn.execute(sa.select(*_NOTIFICATION_COLUMNS).where(n.user_id == user_id)
                                  .order_by(n.occurred_at.desc(), n.notification_id.desc())
                                  .limit(limit).offset(offset))
        return [NotificationRecord(**row._mapping) for row in rows]


class NewNotification(NamedTuple):
    notification_id: str
    user_id: str
    kind: str
    data: dict
    occurred_at: datetime


class NewEmail(NamedTuple):
    user_id: str
    email: str
    subject: str
    body: str
    notification_id: str | None = None


@dataclass(frozen=True)
class OutgoingEmail:
    id: int
    email: str
    subject: str
    body: str


class EmailOutboxRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add(self, user_id: str, email: str, subject: str, body: str, notification_id: str | None = None) -> None:
        self.add_all([NewEmail(user_id, email, subject, body, notification_id)])

    def add_all(self, emails: list[NewEmail]) -> None:
        """Queue e-mails for the sender, in one statement."""
        if emails:
            self._conn.execute(sa.insert(email_outbox).values([e._asdict() for e in emails]))

    def claim_unsent(self, limit: int, max_attempts: int) -> list[OutgoingEmail]:
        """The oldest unsent e-mails not yet given up, locked for this sender (SKIP LOCKED: several senders share
        the outbox without sending one message twice)."""
        e = email_outbox.c
        rows = self._conn.execute(
            sa.select(e.id, e.email, e.subject, e.body)
            .where(e.sent_at.is_(None), e.attempts < max_attempts)
            .order_by(e.id).limit(limit).with_for_update(skip_locked=True))
        return [OutgoingEmail(**row._mapping) for row in rows]

    def mark_sent(self, email_id: int) -> None:
        self._conn.execute(sa.update(email_outbox).where(email_outbox.c.id == email_id).values(sent_at=sa.func.now()))

    def record_failure(self, email_id: int, error: str) -> None:
        self._conn.execute(sa.update(email_outbox).where(email_outbox.c.id == email_id)
                           .values(attempts=email_outbox.c.attempts + 1, last_error=error[:500]))
