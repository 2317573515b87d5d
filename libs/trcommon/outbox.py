"""The transactional outbox: a message is written as a row of the `outbox` table inside the transaction of the state
change that causes it, and published to RabbitMQ by a relay once that transaction has committed. So a message
exists if and only if its change committed, and it is never lost: the row stays until the broker confirmed it.

Writing (each owning service, in its own SQL): rows are inserted by the statement that makes the change where
possible (`WITH changed AS (UPDATE … RETURNING …) INSERT INTO outbox … SELECT … FROM changed`), built with
`insert_from`, which skips a message whose `message_id` is already there. A statement-level trigger (the
migration's `TRIGGER_DDL`) issues `NOTIFY outbox` with every insert, so the relay wakes at once; the NOTIFY is
delivered at commit, and not at all for a rolled-back transaction.

Relaying (`OutboxRelay`, one loop per process; several processes may run at once): claims the oldest unpublished
rows with `FOR UPDATE SKIP LOCKED`, publishes each with publisher confirms (`message_id` also in the AMQP
`message_id` property), marks them `published_at` and commits. A broker that is unreachable or refuses a message,
or a database that is down, leaves the rows as they are and the relay retries with bounded backoff. A crash between
the broker's confirm and the commit publishes those rows again: consumers dedupe by `message_id`. Published rows are
kept `retention` (for inspection and for writers' idempotence), then pruned by the relay.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .amqp import ConfirmedPublisher, PublishFailed
from .errors import DependencyUnavailable

log = logging.getLogger("trcommon.outbox")

CHANNEL = "outbox"          # the LISTEN/NOTIFY channel the trigger notifies
BACKOFF = (0.5, 10.0)       # first and longest wait between attempts while the broker or the database is down, s


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """The `outbox` table as a service declares it (its migration creates it with `TABLE_DDL` and `TRIGGER_DDL`)."""
    table = sa.Table(
        "outbox", metadata,
        sa.Column("id", sa.BigInteger, primary_key=True),    # bigserial
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("exchange", sa.Text, nullable=False),
        sa.Column("routing_key", sa.Text, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    sa.Index("ix_outbox_unpublished", table.c.id, postgresql_where=sa.text("published_at IS NULL"))
    sa.Index("ix_outbox_published_at", table.c.published_at, postgresql_where=sa.text("published_at IS NOT NULL"))
    return table


# The DDL a migration runs (kept here, beside the relay that relies on it, so that every service's outbox is the
# same). bigserial is an integer column with a sequence default, as `outbox_table` declares.
TABLE_DDL = (
    """CREATE TABLE outbox (
        id bigserial PRIMARY KEY,
        message_id text NOT NULL CONSTRAINT uq_outbox_message_id UNIQUE,
        exchange text NOT NULL,
        routing_key text NOT NULL,
        body jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz NULL)""",
    # The relay's claim reads this index only: it holds the unpublished rows, however many published ones are kept.
    "CREATE INDEX ix_outbox_unpublished ON outbox (id) WHERE published_at IS NULL",
    "CREATE INDEX ix_outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL",
)
TRIGGER_DDL = (
    f"""CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM added) THEN PERFORM pg_notify('{CHANNEL}', ''); END IF;
            RETURN NULL;
        END $$""",
    # Per statement, not per row: one NOTIFY however many rows a statement adds (and PostgreSQL folds the
    # identical NOTIFYs of one transaction into one). None for a statement that added nothing (a move refused, a
    # message already there): a NOTIFY is queued under a lock every notifying commit takes in turn.
    "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox REFERENCING NEW TABLE AS added "
    "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()",
)
DROP_DDL = ("DROP TABLE outbox", "DROP FUNCTION outbox_notify()")


def insert_from(table: sa.Table, rows: sa.Select) -> sa.Insert:
    """`INSERT INTO outbox (message_id, exchange, routing_key, body) <rows> ON CONFLICT (message_id) DO NOTHING`:
    `rows` selects those four columns, in that order (from a CTE of changed rows, or from the owning tables)."""
    c = table.c
    return (insert(table).from_select([c.message_id, c.exchange, c.routing_key, c.body], rows)
            .on_conflict_do_nothing(index_elements=[c.message_id]))


@dataclass(frozen=True)
class Message:
    id: int
    message_id: str
    exchange: str
    routing_key: str
    body: dict


class OutboxRelay:
    """Publishes the committed rows of one database's outbox. `run(stop)` loops until `stop` is set;
    `relay_once()` publishes one batch (tests, and the loop)."""

    def __init__(self, engine: Engine, amqp_url: str, *, name: str = "outbox-relay", batch_size: int = 100,
                 poll_seconds: float = 1.0, retention: timedelta = timedelta(days=7),
                 prune_every_seconds: float = 300.0, publish_timeout: float = 5.0, publishers: int = 16,
                 gather_seconds: float = 0.0):
        self._engine = engine
        self._amqp_url = amqp_url
        self._name = name
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        # After a quiet spell, wait this long once woken, so the rows of the commits that follow join one batch
        # (one claim, one burst of confirms, one UPDATE) instead of a batch per commit.
        self._gather_seconds = gather_seconds
        self._retention = retention
        self._prune_every = prune_every_seconds
        self._publish_timeout = publish_timeout
        self._publishers: dict[str, ConfirmedPublisher] = {}
        # Each publish waits for its confirm; publishing a batch from several threads puts them in flight together
        # so the broker confirms them in one go.
        self._pool = ThreadPoolExecutor(publishers, thread_name_prefix="outbox-publish")
        self._listener: psycopg.Connection | None = None
        self._last_prune = 0.0
        # published, batches, publish_failures, database_failures, pruned
        self.stats: Counter[str] = Counter()

    # --- the loop ----------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        failures = 0
        log.info("outbox relay started", extra={"batch_size": self._batch_size})
        while not stop.is_set():
            try:
                self._listen()
                published = self.relay_once()
                self._prune_when_due()
            except (PublishFailed, DBAPIError, DependencyUnavailable, psycopg.Error, OSError) as exc:
                failures += 1
                wait = _backoff(failures)
                kind = "publish_failures" if isinstance(exc, PublishFailed) else "database_failures"
                self.stats[kind] += 1
                log.warning("outbox relay cannot proceed; retrying", extra={
                    "error": repr(exc), "retry_in_seconds": wait, "failures": failures})
                self._close_listener()
                stop.wait(wait)
                continue
            failures = 0
            if published < self._batch_size:
                if self._wait_for_news(stop) and self._gather_seconds > 0:
                    stop.wait(self._gather_seconds)
        self.close()
        log.info("outbox relay stopped")

    def relay_once(self) -> int:
        """Claim up to batch_size unpublished rows, publish them, mark those the broker confirmed and commit; the
        number published. Raises PublishFailed (after marking the confirmed ones) when one could not be."""
        with self._engine.connect() as conn, conn.begin():
            rows = conn.execute(sa.text(
                "SELECT id, message_id, exchange, routing_key, body FROM outbox WHERE published_at IS NULL "
                "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"), {"n": self._batch_size}).all()
            if not rows:
                return 0
            self.stats["batches"] += 1
            messages = [Message(r.id, r.message_id, r.exchange, r.routing_key, r.body) for r in rows]
            outcomes = list(self._pool.map(self._publish, messages))
            done = [m.id for m, failure in zip(messages, outcomes) if failure is None]
            if done:
                conn.execute(sa.text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)"), {"ids": done})
        self.stats["published"] += len(done)
        failed = [f for f in outcomes if f is not None]
        if failed:
            raise PublishFailed(f"{len(failed)} of {len(messages)} outbox messages not published: {failed[0]}")
        return len(done)

    def prune(self) -> int:
        """Delete rows published more than `retention` ago; how many."""
        with self._engine.connect() as conn, conn.begin():
            count = conn.execute(sa.text("DELETE FROM outbox WHERE published_at < now() - :keep"),
                                 {"keep": self._retention}).rowcount
        self.stats["pruned"] += count
        if count:
            log.info("outbox pruned", extra={"deleted": count})
        return count

    def close(self) -> None:
        self._close_listener()
        self._pool.shutdown(wait=True)
        for publisher in self._publishers.values():
            publisher.close()
        self._publishers.clear()

    # --- parts -------------------------------------------------------------------------------------------------

    def _publish(self, m: Message) -> str | None:
        """Publish one message; None once the broker confirmed it, else why not."""
        publisher = self._publishers.get(m.exchange)
        if publisher is None:
            # A routing key of its own per message; the publisher's default is never used.
            publisher = self._publishers.setdefault(m.exchange, ConfirmedPublisher(
                self._amqp_url, m.exchange, "", name=self._name, timeout=self._publish_timeout))
        try:
            publisher.publish(m.body, message_id=m.message_id, routing_key=m.routing_key)
        except PublishFailed as exc:
            return f"{m.message_id}: {exc}"
        return None

    def _prune_when_due(self) -> None:
        now = time.monotonic()
        if now - self._last_prune >= self._prune_every:
            self._last_prune = now
            self.prune()

    def _listen(self) -> None:
        if self._listener is not None and not self._listener.closed:
            return
        url = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener = psycopg.connect(url, autocommit=True, connect_timeout=5)
        self._listener.execute(f"LISTEN {CHANNEL}")

    def _wait_for_news(self, stop: threading.Event) -> bool:
        """Until a NOTIFY arrives (True), the poll interval passes, or stop is set (checked every 0.2 s at most)."""
        deadline = time.monotonic() + self._poll_seconds
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._listener is None:
                stop.wait(left)
                return False
            try:
                for _ in self._listener.notifies(timeout=min(left, 0.2), stop_after=1):
                    return True
            except psycopg.Error as exc:
                log.warning("outbox listener lost; polling", extra={"error": repr(exc)})
                self._close_listener()
        return False

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.close()
            except psycopg.Error:
                pass


def _backoff(attempt: int) -> float:
    first, longest = BACKOFF
    return min(longest, first * 2 ** (attempt - 1))
