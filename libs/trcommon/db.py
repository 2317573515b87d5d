"""Database plumbing: pooled engines, the unit of work, lock-error detection, database creation and Alembic.

Every schema is created by the owning service's Alembic migrations; nothing here creates tables.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from .errors import DependencyUnavailable

log = logging.getLogger("trcommon.db")

LOCK_NOT_AVAILABLE = "55P03"
UNIQUE_VIOLATION = "23505"
CHECK_VIOLATION = "23514"
SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"


def make_engine(url: str, pool_size: int = 20, max_overflow: int = 10) -> Engine:
    # No pre-ping: it would add a round trip to every transaction. A connection that died with its server
    # fails its statement (503 to that caller); SQLAlchemy then invalidates the whole pool, so the next caller
    # gets fresh connections.
    return sa.create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=False,
                            pool_recycle=1800, connect_args={"connect_timeout": 5})


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of a DBAPI error, if any."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None)


# Connection exceptions (08xxx), the server shutting down or killing us (57P01-57P03), too many clients (53300).
_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03", "53300")


def database_unavailable(exc: BaseException) -> bool:
    """Whether a database error means "the database cannot be reached right now" (503) rather than a bug."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = sqlstate(exc)
    if state is None:
        return isinstance(exc, OperationalError)
    return state.startswith("08") or state in _UNAVAILABLE_STATES


class UnitOfWork:
    """One unit of database work on one pooled connection. Rolls back on exit unless `commit()` was called.

    By default a transaction: several statements that must be atomic (BEGIN and COMMIT are a round trip each).
    With `autocommit=True` every statement commits on its own (psycopg autocommit): for reads and for writes that
    are one statement each, which then cost one round trip and no BEGIN/COMMIT; `commit()` and `rollback()` are
    no-ops there. Services subclass it to attach their repositories to `self.conn` in `_open()`.
    """

    def __init__(self, engine: Engine, autocommit: bool = False):
        self._engine = engine
        self._autocommit = autocommit
        self.conn: Connection | None = None
        self._tx = None
        self._driver = None

    def __enter__(self):
        try:
            self.conn = self._engine.connect()
        except OperationalError as exc:
            raise DependencyUnavailable("database is unavailable") from exc
        if self._autocommit:
            # Set on the driver's connection and put back on exit (client-side only, no round trip): SQLAlchemy's
            # own isolation-level option does the same through its connection characteristics and resets them,
            # and the isolation level with them, when the pool takes the connection back (205 -> 165-170 us of
            # CPU for a unit of work with one prepared statement).
            self._driver = self.conn.connection.driver_connection
            self._driver.autocommit = True
        else:
            self._tx = self.conn.begin()
        self._open()
        return self

    def _open(self) -> None:
        """Hook for subclasses: build repositories on self.conn."""

    def commit(self) -> None:
        if self._tx is not None:
            self._tx.commit()

    def rollback(self) -> None:
        if self._tx is not None and self._tx.is_active:
            self._tx.rollback()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.rollback()
        finally:
            try:
                if self._driver is not None:
                    self._driver.autocommit = False
            except Exception:  # noqa: BLE001 - a connection that cannot be put back is not given back to the pool
                self.conn.invalidate()
            finally:
                self.conn.close()
                self.conn = None
                self._tx = None
                self._driver = None
        if database_unavailable(exc):
            raise DependencyUnavailable("database is unavailable") from exc
        return False


class Row(dict):
    """A row of a `Prepared` statement, read by column name as a mapping (`row["x"]`, `row._mapping["x"]`) or as
    an attribute (`row.x`), like SQLAlchemy's rows. UUIDs come as text, as our `UUID(as_uuid=False)` columns do."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> "Row":
        return self


class Prepared:
    """A constant statement of the hot path, run straight on the unit of work's driver connection.

    SQLAlchemy compiles it once (per dialect) and psycopg prepares it on the server after a few runs (its
    prepare_threshold), so a call costs the driver's own work only: make bench found SQLAlchemy's per-execution
    work (execution context, parameter and result set-up) to be a fifth to a third of the CPU of order-service and
    inventory's gRPC server. The statement runs inside the unit of work's transaction (or autocommit), on the
    same connection as everything else there; a database error goes through SQLAlchemy's own handling, so callers
    see the same exceptions (IntegrityError, OperationalError, …) and a lost connection invalidates the pool as
    with `Connection.execute`. A statement with expanding parameters (`IN` lists) is refused: write it with
    `=` and `OR`, or run it with `Connection.execute`.

        _GET = Prepared(sa.select(seats).where(seats.c.seat_id == sa.bindparam("p_seat_id")))
        row = _GET.first(uow.conn, {"p_seat_id": seat_id})
    """

    def __init__(self, statement: sa.Executable):
        self.statement = statement
        self._compiled: dict[str, tuple[str, dict, tuple[str, ...]]] = {}
        # The names of the statement's result columns, read once from the first result: a constant statement's
        # columns never change, and psycopg builds every column's description anew each time it is asked (half
        # of the driver's CPU for a 13-column row). An empty tuple: the statement returns no rows.
        self._names: tuple[str, ...] | None = None
        self._lock = threading.Lock()

    def _sql(self, conn: Connection) -> tuple[str, dict, tuple[str, ...]]:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            with self._lock:
                compiled = self.statement.compile(dialect=dialect)
                if compiled.post_compile_params or compiled.literal_execute_params:
                    raise TypeError("a Prepared statement cannot expand parameters (IN lists)")
                # Values the statement carries itself; the caller gives the others (a missing one is psycopg's error).
                constants = {k: v for k, v in compiled.params.items() if not compiled.binds[k].required}
                sql = str(compiled)
                found = self._compiled[dialect.name] = (sql, constants, _cast_arrays(sql, compiled.binds))
        return found

    def rows(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Row]:
        sql, constants, arrays = self._sql(conn)
        values = {**constants, **params} if params else constants
        for name in arrays:
            value = values.get(name)
            if type(value) is list and all(type(item) is str for item in value):
                values[name] = array_literal(value)
        driver = conn.connection.driver_connection
        try:
            cursor = driver.execute(sql, values)
            names = self._names
            if names is None:
                description = cursor.description
                names = self._names = tuple(column.name for column in description) if description else ()
            if not names:
                return []
            return [Row(zip(names, (str(v) if type(v) is uuid.UUID else v for v in record)))
                    for record in cursor.fetchall()]
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy wraps (or re-raises) it as Connection.execute would
            conn._handle_dbapi_exception(exc, sql, values, None, None)

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Row | None:
        found = self.rows(conn, params)
        return found[0] if found else None


def _cast_arrays(sql: str, binds: Mapping[str, Any]) -> tuple[str, ...]:
    """The caller's parameters that the SQL casts to an array of a text-like type (uuid[], text[], varchar[])
    wherever it uses them: those may be sent as one array literal (see array_literal)."""
    names = []
    for name, bind in binds.items():
        placeholder = re.escape(f"%({name})s")
        used = len(re.findall(placeholder, sql))
        cast = len(re.findall(rf"CAST\({placeholder} AS {_TEXT_LIKE}\[\]\)|{placeholder}::{_TEXT_LIKE}\[\]", sql))
        if bind.required and used and used == cast:
            names.append(name)
    return tuple(names)


_TEXT_LIKE = r"(?:UUID|TEXT|VARCHAR(?:\(\d+\))?)"


def array_literal(items: list[str]) -> str:
    """A list of strings as PostgreSQL's array literal ('{"a","b"}'), each item quoted and escaped: sent as text to a
    parameter the statement casts to its array type. psycopg's list dumper inspects every list it is given anew to
    choose the items' type: 18 µs of client CPU per list parameter here, against under 1 µs for the literal."""
    return "{" + ",".join('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items) + "}"


def check_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def wait_for_database(engine: Engine, seconds: float) -> None:
    """Bounded wait for the database at start-up."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check_database(engine)
            return
        except DBAPIError as exc:
            if time.monotonic() >= deadline:
                raise SystemExit(f"database {engine.url.render_as_string(hide_password=True)} is unreachable: "
                                 f"{exc.orig}") from None
            log.info("waiting for database", extra={"url": engine.url.render_as_string(hide_password=True)})
            time.sleep(1)


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist (local development and tests). True if created."""
    target = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": target.database}).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
            return not exists
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    target = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def alembic_config(migrations_dir: Path, url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(migrations_dir: Path, url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(migrations_dir, url), revision)


def run_alembic_env() -> None:
    """The body of every service's migrations/env.py (online mode only)."""
    from alembic import context

    cfg = context.config
    engine = sa.create_engine(cfg.get_main_option("sqlalchemy.url"), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
