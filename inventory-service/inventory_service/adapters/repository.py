"""Seat and entry-log persistence.

Every time comparison uses the database clock (`statement_timestamp()`: one value per statement), never the
clock of whichever process happens to run the code.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import DBAPIError

from trcommon.db import LOCK_NOT_AVAILABLE, Prepared, sqlstate

from ..domain.exceptions import SeatLocked
from ..domain.model import (GateReport, HoldReleased, Position, ScanResult, Seat, SectionSales, SeatStatus)
from .tables import entry_logs, ownership_changes, seats

log = logging.getLogger("inventory.repository")

DB_NOW = sa.func.statement_timestamp()
# First key of the two-key advisory lock that serialises one user's reservations (the per-user hold cap);
# the second key is a hash of the user id. A constant namespace keeps it apart from any other advisory lock.
HOLD_CAP_LOCK_NAMESPACE = 0x5EA7
# First key of the advisory lock that serialises the grid creations of one event (the second: a hash of its id).
GRID_LOCK_NAMESPACE = 0x6A1D

_STATE_FIELDS = ("status", "held_by_user_id", "hold_id", "held_until", "owner_user_id", "ticket_version",
                 "checked_in_at", "checked_in_hall_id")
_SEAT_FIELDS = tuple(f.name for f in dataclasses.fields(Seat))
_SEAT_COLUMNS = [seats.c[name] for name in _SEAT_FIELDS]


# The hot statements, built once and run as Prepared statements (trcommon.db).
# A list of seat ids travels as one array parameter (a Prepared statement cannot expand IN lists).
_SEAT_IDS = sa.cast(sa.bindparam("p_seat_ids"), ARRAY(UUID(as_uuid=False)))
_IN_SEAT_IDS = seats.c.seat_id == sa.func.any(_SEAT_IDS)
# A reservation's hold in one call of the database function hold_seats (migration 0007): the seats' NOWAIT locks
# with the user's hold-cap lock, then the write if the seats are holdable, on sale, within the cap and the hold id
# is unused; the seats as they were when locked, the database clock and whether it wrote.
_HOLD = Prepared(sa.text(
    "SELECT * FROM hold_seats(CAST(:p_seat_ids AS UUID[]), CAST(:p_user_id AS UUID), CAST(:p_hold_id AS UUID), "
    "CAST(:p_hold_seconds AS INTEGER), CAST(:p_max_holds AS INTEGER), CAST(:p_namespace AS INTEGER))"))

_GET = Prepared(sa.select(*_SEAT_COLUMNS, DB_NOW.label("db_now")).where(seats.c.seat_id == sa.bindparam("p_seat_id")))
_GET_MANY = Prepared(sa.select(*_SEAT_COLUMNS, DB_NOW.label("db_now")).where(_IN_SEAT_IDS)
                     .order_by(seats.c.seat_id))
# Whether a hold id has seats outside the given ones (held or sold by it): a hold id names one set of seats (the
# refusal path's question; hold_seats asks it inside its write).
_OTHER_SEATS = seats.alias("other")
_HOLD_ELSEWHERE = Prepared(sa.select(
    sa.exists().where(_OTHER_SEATS.c.hold_id == sa.bindparam("p_hold_id"),
                      sa.not_(_OTHER_SEATS.c.seat_id == sa.func.any(_SEAT_IDS))).label("elsewhere")))

# Confirm and release wait for a row lock held by a (short) concurrent transaction, so they take their rows in the
# one lock order too (ascending seat_id, in a locking CTE): two such calls on overlapping seats never deadlock.
_TO_CONFIRM = (sa.select(seats.c.seat_id)
               .where(_IN_SEAT_IDS, seats.c.status == SeatStatus.HELD.value,
                      seats.c.hold_id == sa.bindparam("p_hold_id"),
                      seats.c.held_by_user_id == sa.bindparam("p_user_id"),
                      seats.c.held_until > DB_NOW)
               .order_by(seats.c.seat_id).with_for_update().cte("to_confirm"))
_CONFIRM = Prepared(seats.update()
            .where(seats.c.seat_id == _TO_CONFIRM.c.seat_id,
                   # all or nothing in the one statement: every seat asked for is this live hold's, or none is sold
                   sa.select(sa.func.count()).select_from(_TO_CONFIRM).scalar_subquery()
                   == sa.bindparam("p_seat_count"))
            .values(status=SeatStatus.SOLD.value, owner_user_id=sa.bindparam("p_user_id"), held_by_user_id=None,
                    held_until=None, updated_at=DB_NOW)
            .returning(*_SEAT_COLUMNS))

def _release_of(targets: sa.Select) -> sa.Update:
    """The seats `targets` selects (seat_id, hold_id, held_until; rows locked) → AVAILABLE, returning each seat with
    the hold it had and when, by the database clock."""
    target = targets.cte("target")
    return (seats.update().where(seats.c.seat_id == target.c.seat_id)
            .values(status=SeatStatus.AVAILABLE.value, held_by_user_id=None, hold_id=None, held_until=None,
                    updated_at=DB_NOW)
            .returning(*_SEAT_COLUMNS, target.c.hold_id.label("released_hold_id"),
                       target.c.held_until.label("released_held_until"), DB_NOW.label("db_now")))


# The hold timers' release: the (seat_id, hold_id) pairs travel as two arrays of the same length; the seat ids'
# array also serves the primary key's index.
_PAIR_SEAT_IDS = sa.cast(sa.bindparam("p_pair_seat_ids"), ARRAY(UUID(as_uuid=False)))
_TIMER_PAIRS = sa.func.unnest(_PAIR_SEAT_IDS, sa.cast(sa.bindparam("p_pair_hold_ids"), ARRAY(UUID(as_uuid=False)))
                              ).table_valued("seat_id", "hold_id").render_derived()
_RELEASE_LAPSED = Prepared(_release_of(
    sa.select(seats.c.seat_id, seats.c.hold_id, seats.c.held_until)
    .where(seats.c.seat_id == sa.func.any(_PAIR_SEAT_IDS),
           sa.tuple_(seats.c.seat_id, seats.c.hold_id).in_(sa.select(_TIMER_PAIRS.c.seat_id, _TIMER_PAIRS.c.hold_id)),
           seats.c.status == SeatStatus.HELD.value, seats.c.held_until <= DB_NOW)
    .order_by(seats.c.seat_id).with_for_update()))

_CHECKED_IN = (seats.update()
               .where(seats.c.seat_id == sa.bindparam("p_seat_id"), seats.c.status == SeatStatus.SOLD.value,
                      seats.c.owner_user_id == sa.bindparam("p_holder_user_id"),
                      seats.c.ticket_version == sa.bindparam("p_ticket_version"))
               .values(status=SeatStatus.CHECKED_IN.value, checked_in_at=DB_NOW,
                       checked_in_hall_id=sa.bindparam("p_hall_id"), updated_at=DB_NOW)
               .returning(*_SEAT_COLUMNS, DB_NOW.label("db_now"))
               .cte("checked_in"))
_CHECK_IN_LOGGED = (entry_logs.insert()
                    .from_select(["seat_id", "hall_id", "result", "detail", "scanner_user_id", "ticket_version"],
                                 sa.select(sa.bindparam("p_log_seat_id", type_=sa.Text),
                                           sa.bindparam("p_log_hall_id", type_=sa.Text),
                                           sa.literal(ScanResult.CHECKED_IN.value), sa.literal(""),
                                           sa.bindparam("p_scanner_user_id", type_=sa.Text),
                                           _CHECKED_IN.c.ticket_version).select_from(_CHECKED_IN))
                    .returning(entry_logs.c.id)
                    .cte("logged"))
_ADD_ENTRY = Prepared(entry_logs.insert()
              .values(seat_id=sa.bindparam("p_seat_id"), hall_id=sa.bindparam("p_hall_id"),
                      result=sa.bindparam("p_result"), detail=sa.bindparam("p_detail"),
                      scanner_user_id=sa.bindparam("p_scanner_user_id"),
                      ticket_version=sa.bindparam("p_ticket_version"))
              .returning(entry_logs.c.id))
# The entry row is written whenever the UPDATE matched (a data-modifying CTE runs whether or not it is read).
_CHECK_IN = Prepared(sa.select(_CHECKED_IN).add_cte(_CHECK_IN_LOGGED))


def _seat(m: RowMapping) -> Seat:
    values = {name: m[name] for name in _SEAT_FIELDS}
    values["status"] = SeatStatus(values["status"])
    return Seat(**values)


def _released(m: RowMapping) -> HoldReleased:
    return HoldReleased(seat=_seat(m), hold_id=m["released_hold_id"], held_until=m["released_held_until"],
                        released_at=m["db_now"])


class SeatRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add(self, new_seats: Iterable[Seat]) -> None:
        """Insert seats; a seat that already exists (same id or same position) is left as it is."""
        rows = [{**{name: getattr(s, name) for name in _SEAT_FIELDS}, "status": s.status.value} for s in new_seats]
        if rows:
            self._conn.execute(insert(seats).on_conflict_do_nothing(), rows)

    def hold(self, seat_ids: list[str], user_id: str, hold_id: str, hold_seconds: int,
             max_holds: int) -> tuple[list[Seat], datetime | None, bool]:
        """A reservation's hold in one round trip (run it in autocommit): lock the seats' rows NOWAIT in ascending
        seat_id (SeatLocked at once if another transaction has one, never a wait), then the user's hold-cap lock
        (serialising this user's reservations, so that counting their held seats and adding some cannot interleave
        with another reservation of theirs), then write the hold only if every seat was found, all of one event,
        on sale and free (`model.hold_seats`' rule), the user's seats in live holds plus these stay within
        `max_holds` (counted after the hold-cap lock was granted) and no other seat has the hold id: all seats or
        none. The seats as they were when locked (in lock order), the database clock, and whether it wrote."""
        try:
            rows = _HOLD.rows(self._conn, {"p_seat_ids": seat_ids, "p_user_id": user_id, "p_hold_id": hold_id,
                                           "p_hold_seconds": hold_seconds, "p_max_holds": max_holds,
                                           "p_namespace": HOLD_CAP_LOCK_NAMESPACE})
        except DBAPIError as exc:
            if sqlstate(exc) == LOCK_NOT_AVAILABLE:
                log.info("seat busy: row lock not available (55P03)", extra={"seat_ids": seat_ids})
                raise SeatLocked("seat busy" if len(seat_ids) == 1 else "one of the seats is busy; try again",
                                 seat_ids=None if len(seat_ids) == 1 else seat_ids) from None
            raise
        if not rows:
            return [], None, False
        return [_seat(r) for r in rows], rows[0]["db_now"], rows[0]["written"]

    def hold_id_used_elsewhere(self, hold_id: str, seat_ids: list[str]) -> bool:
        return _HOLD_ELSEWHERE.first(self._conn, {"p_hold_id": hold_id, "p_seat_ids": seat_ids})["elsewhere"]

    def lock_for_update(self, seat_id: str) -> tuple[Seat, datetime] | None:
        """Lock the seat's row, waiting for a concurrent (short) transaction on it to finish."""
        stmt = sa.select(*_SEAT_COLUMNS, DB_NOW.label("db_now")).where(seats.c.seat_id == seat_id) \
            .with_for_update()
        row = self._conn.execute(stmt).mappings().first()
        return (_seat(row), row["db_now"]) if row else None

    def lock_many_for_update(self, seat_ids: list[str]) -> tuple[list[Seat], datetime | None]:
        """Lock the seats' rows in ascending seat_id (the one lock order), waiting for a concurrent (short)
        transaction on them; the seats found, in that order, and the database clock."""
        rows = self._conn.execute(
            sa.select(*_SEAT_COLUMNS, DB_NOW.label("db_now")).where(seats.c.seat_id.in_(seat_ids))
            .order_by(seats.c.seat_id).with_for_update()).mappings().all()
        return [_seat(r) for r in rows], (rows[0]["db_now"] if rows else None)

    def get(self, seat_id: str) -> tuple[Seat, datetime] | None:
        row = _GET.first(self._conn, {"p_seat_id": seat_id})
        return (_seat(row), row["db_now"]) if row else None

    def get_many(self, seat_ids: list[str]) -> tuple[list[Seat], datetime | None]:
        """The seats found, by seat_id, and the database clock (None when none was found)."""
        rows = _GET_MANY.rows(self._conn, {"p_seat_ids": seat_ids})
        return [_seat(r) for r in rows], (rows[0]["db_now"] if rows else None)

    def list_by_event(self, event_id: str) -> list[tuple[Seat, datetime]]:
        rows = self._conn.execute(
            sa.select(*_SEAT_COLUMNS, DB_NOW.label("db_now")).where(seats.c.event_id == event_id)
            # Rows are text; shorter first gives the natural order of both "1".."10" and "A".."Z", "AA".
            .order_by(seats.c.section, sa.func.length(seats.c.row), seats.c.row, seats.c.number)).mappings()
        return [(_seat(r), r["db_now"]) for r in rows]

    def list_tickets(self, user_id: str) -> list[tuple[Seat, datetime]]:
        """The seats the user owns, and those they hold while the hold is live (a lapsed hold is not theirs)."""
        owned = seats.c.owner_user_id == user_id
        held = sa.and_(seats.c.held_by_user_id == user_id, seats.c.status == SeatStatus.HELD.value,
                       seats.c.held_until > DB_NOW)
        rows = self._conn.execute(
            sa.select(*_SEAT_COLUMNS, DB_NOW.label("db_now")).where(sa.or_(owned, held))
            .order_by(seats.c.event_id, seats.c.section, sa.func.length(seats.c.row), seats.c.row,
                      seats.c.number)).mappings()
        return [(_seat(r), r["db_now"]) for r in rows]

    def first_live_hold_ends_in(self, user_id: str) -> timedelta | None:
        """How long until the user's first live hold ends, by the database clock; None when they have none."""
        return self._conn.execute(
            sa.select(sa.func.min(seats.c.held_until) - DB_NOW)
            .where(seats.c.held_by_user_id == user_id, seats.c.status == SeatStatus.HELD.value,
                   seats.c.held_until > DB_NOW)).scalar_one()

    def save(self, seat: Seat) -> None:
        """Write the seat's state (the caller holds its row lock)."""
        values = {name: getattr(seat, name) for name in _STATE_FIELDS}
        values["status"] = seat.status.value
        self._conn.execute(seats.update().where(seats.c.seat_id == seat.seat_id).values(**values, updated_at=DB_NOW))

    def release_hold(self, seat_ids: list[str], hold_id: str) -> list[HoldReleased]:
        """Every one of these seats HELD by this hold → AVAILABLE, as one conditional UPDATE (rows locked in lock
        order); the seats it released: none when no seat is held by it (already released, sold, or held again by
        another hold)."""
        return self._release(sa.select(seats.c.seat_id, seats.c.hold_id, seats.c.held_until)
                             .where(seats.c.seat_id.in_(seat_ids), seats.c.hold_id == hold_id,
                                    seats.c.status == SeatStatus.HELD.value)
                             .order_by(seats.c.seat_id).with_for_update())

    def release_lapsed(self, seat_holds: list[tuple[str, str]]) -> list[HoldReleased]:
        """The hold timer's release, for one hold or many: each (seat_id, hold_id) pair's seat, if that hold still
        has it and its held_until has passed by the database clock → AVAILABLE, as one conditional UPDATE (rows
        locked in lock order); the seats it released."""
        rows = _RELEASE_LAPSED.rows(self._conn, {
            "p_pair_seat_ids": [seat_id for seat_id, _ in seat_holds],
            "p_pair_hold_ids": [hold_id for _, hold_id in seat_holds]})
        return [_released(r) for r in rows]

    def release_lapsed_holds(self, grace_seconds: float, limit: int) -> list[HoldReleased]:
        """Release up to `limit` holds whose held_until passed more than grace_seconds ago, oldest first; rows
        locked by a running transaction (a reservation taking the seat over) are skipped, not waited for."""
        cutoff = DB_NOW - sa.func.make_interval(0, 0, 0, 0, 0, 0, grace_seconds)
        return self._release(
            sa.select(seats.c.seat_id, seats.c.hold_id, seats.c.held_until)
            .where(seats.c.status == SeatStatus.HELD.value, seats.c.held_until < cutoff)
            .order_by(seats.c.held_until).limit(limit).with_for_update(skip_locked=True))

    def _release(self, targets: sa.Select) -> list[HoldReleased]:
        return [_released(m) for m in self._conn.execute(_release_of(targets)).mappings()]

    def confirm(self, seat_ids: list[str], user_id: str, hold_id: str) -> list[Seat]:
        """Those of the seats HELD by this hold, live by the database clock → SOLD to the user, as one conditional
        UPDATE (rows locked in lock order) that sells them only if every one of them is, all or nothing; the seats it
        sold: all of them, or none (the caller then reads the seats to tell why). A concurrent release of the hold is
        decided by the row locks: whichever commits first, the other re-checks the rows and matches nothing."""
        rows = _CONFIRM.rows(self._conn, {"p_seat_ids": seat_ids, "p_seat_count": len(seat_ids), "p_user_id": user_id,
                                          "p_hold_id": hold_id})
        return sorted((_seat(r) for r in rows), key=lambda s: s.seat_id)

    def mark_checked_in(self, seat_id: str, hall_id: str, holder_user_id: str, ticket_version: int,
                        scanner_user_id: str | None) -> tuple[Seat, datetime] | None:
        """SOLD → CHECKED_IN as one conditional UPDATE, only while the code's holder and version are the seat's,
        logging the CHECKED_IN entry in the same statement: of any number of concurrent calls exactly one matches
        (the others wait for its row lock, then find the seat no longer SOLD), and a transfer committed first
        leaves nothing to match. None, and nothing logged, when it did not match."""
        row = _CHECK_IN.first(self._conn, {
            "p_seat_id": seat_id, "p_hall_id": hall_id, "p_holder_user_id": holder_user_id,
            "p_log_seat_id": seat_id, "p_log_hall_id": hall_id,
            "p_ticket_version": ticket_version, "p_scanner_user_id": scanner_user_id})
        return (_seat(row), row["db_now"]) if row else None


    # --- organizer operations --------------------------------------------------------------------------------

    def lock_event_grid(self, event_id: str) -> None:
        """Serialise grid creations of this event until the transaction ends: a second concurrent call waits,
        then finds the first one's seats."""
        self._conn.execute(sa.select(sa.func.pg_advisory_xact_lock(
            GRID_LOCK_NAMESPACE, sa.func.hashtext(sa.literal(event_id, sa.Text)))))

    def positions(self, event_id: str) -> set[Position]:
        rows = self._conn.execute(sa.select(seats.c.section, seats.c.row, seats.c.number, seats.c.price)
                                  .where(seats.c.event_id == event_id))
        return {tuple(r) for r in rows}

    def add_grid(self, event_id: str, positions: list[Position], on_sale: bool) -> int:
        """Insert every position as a new AVAILABLE seat in one set-based statement (unnest of four arrays);
        the number inserted."""
        sections, rows, numbers, prices = (list(column) for column in zip(*positions))
        return self._conn.execute(sa.text(
            "INSERT INTO seats (seat_id, event_id, section, \"row\", number, price, on_sale) "
            "SELECT gen_random_uuid(), CAST(:event_id AS uuid), g.section, g.row, g.number, g.price, :on_sale "
            "FROM unnest(CAST(:sections AS text[]), CAST(:rows AS text[]), CAST(:numbers AS integer[]), "
            "CAST(:prices AS bigint[])) AS g(section, row, number, price)"),
            {"event_id": event_id, "on_sale": on_sale, "sections": sections, "rows": rows, "numbers": numbers,
             "prices": prices}).rowcount

    def set_sale(self, event_id: str, on_sale: bool) -> tuple[int, int]:
        """on_sale for every seat of the event, in one statement (rows locked in lock order, waiting for a
        reservation in flight); closing also ends every hold of it (HELD -> AVAILABLE, hold cleared). A seat held
        by a reservation that commits while this waits for its row is read again as that reservation left it, so
        its hold is ended too. (seats whose on_sale changed, holds ended)."""
        row = self._conn.execute(sa.text(
            "WITH target AS (SELECT seat_id, on_sale, status FROM seats "
            "                WHERE event_id = :event_id AND (on_sale <> :on_sale OR (NOT :on_sale AND status = 'HELD'))"
            "                ORDER BY seat_id FOR UPDATE), "
            "changed AS (UPDATE seats SET on_sale = :on_sale, "
            "              status = CASE WHEN target.status = 'HELD' AND NOT :on_sale THEN 'AVAILABLE' "
            "                            ELSE seats.status END, "
            "              held_by_user_id = CASE WHEN target.status = 'HELD' AND NOT :on_sale THEN NULL "
            "                                     ELSE seats.held_by_user_id END, "
            "              hold_id = CASE WHEN target.status = 'HELD' AND NOT :on_sale THEN NULL ELSE seats.hold_id END, "
            "              held_until = CASE WHEN target.status = 'HELD' AND NOT :on_sale THEN NULL "
            "                                ELSE seats.held_until END, "
            "              updated_at = statement_timestamp() "
            "            FROM target WHERE seats.seat_id = target.seat_id "
            "            RETURNING target.on_sale <> :on_sale AS sale_changed, "
            "                      target.status = 'HELD' AND NOT :on_sale AS released) "
            "SELECT count(*) FILTER (WHERE sale_changed) AS changed, count(*) FILTER (WHERE released) AS released "
            "FROM changed"), {"event_id": event_id, "on_sale": on_sale}).one()
        return row.changed, row.released

    def update_prices(self, event_id: str, price: int, section: str | None,
                      seat_ids: list[str] | None) -> tuple[int, int, list[str]]:
        """The price of the event's seats in scope (all, the section, the listed seats) that are free (AVAILABLE, or
        HELD by a lapsed hold), rows locked in lock order: (updated, skipped, seat ids in scope)."""
        scope = "event_id = :event_id"
        params: dict = {"event_id": event_id, "price": price}
        if section is not None:
            scope += " AND section = :section"
            params["section"] = section
        if seat_ids:
            scope += " AND seat_id = ANY(CAST(:seat_ids AS uuid[]))"
            params["seat_ids"] = seat_ids
        row = self._conn.execute(sa.text(
            "WITH target AS (SELECT seat_id, (status = 'AVAILABLE' OR (status = 'HELD' AND held_until <= "
            "                statement_timestamp())) AS free FROM seats WHERE " + scope +
            "                ORDER BY seat_id FOR UPDATE), "
            "updated AS (UPDATE seats SET price = :price, updated_at = statement_timestamp() FROM target "
            "            WHERE seats.seat_id = target.seat_id AND target.free RETURNING seats.seat_id) "
            "SELECT (SELECT count(*) FROM updated) AS updated, "
            "       (SELECT count(*) FROM target WHERE NOT free) AS skipped, "
            "       (SELECT coalesce(array_agg(CAST(seat_id AS text)), '{}') FROM target) AS in_scope"),
            params).one()
        return row.updated, row.skipped, list(row.in_scope)

    def sales_by_section(self, event_id: str) -> list[SectionSales]:
        rows = self._conn.execute(sa.text(
            "SELECT section, count(*) AS total, "
            "  count(*) FILTER (WHERE status = 'AVAILABLE' OR (status = 'HELD' AND held_until <= statement_timestamp()))"
            "    AS available, "
            "  count(*) FILTER (WHERE status = 'HELD' AND held_until > statement_timestamp()) AS held, "
            "  count(*) FILTER (WHERE status = 'SOLD') AS sold, "
            "  count(*) FILTER (WHERE status = 'CHECKED_IN') AS checked_in, "
            "  min(price) AS price_min, max(price) AS price_max, "
            "  CAST(coalesce(sum(price) FILTER (WHERE status IN ('SOLD', 'CHECKED_IN')), 0) AS bigint) AS face_value_sold "
            "FROM seats WHERE event_id = :event_id GROUP BY section ORDER BY section"), {"event_id": event_id})
        return [SectionSales(**r._mapping) for r in rows]

    def gate_report(self, event_id: str, bucket_seconds: int, limit: int, offset: int) -> GateReport:
        """The event's scans: entry_logs rows of its seats (found through the seats' event index, then each seat's
        entries through ix_entry_logs_seat_id). A scan that named no seat of the event is not the event's."""
        scans = ("FROM seats JOIN entry_logs ON entry_logs.seat_id = CAST(seats.seat_id AS text) "
                 "WHERE seats.event_id = :event_id")
        params = {"event_id": event_id, "bucket": bucket_seconds, "limit": limit, "offset": offset}
        by_hall = self._conn.execute(sa.text(
            f"SELECT coalesce(entry_logs.hall_id, '') AS hall_id, entry_logs.result, count(*) AS n {scans} "
            "GROUP BY 1, 2 ORDER BY 1, 2"), params).all()
        by_result: dict[str, int] = {}
        for hall_id, result, n in by_hall:
            by_result[result] = by_result.get(result, 0) + n
        buckets = (f"SELECT to_timestamp(floor(extract(epoch FROM entry_logs.scanned_at) / :bucket) * :bucket) AS start, "
                   f"count(*) AS n {scans} AND entry_logs.result = 'CHECKED_IN' GROUP BY 1")
        page = self._conn.execute(sa.text(f"{buckets} ORDER BY 1 LIMIT :limit OFFSET :offset"), params).all()
        total = self._conn.execute(sa.text(f"SELECT count(*) FROM ({buckets}) AS b"), params).scalar_one()
        return GateReport(by_result=tuple(sorted(by_result.items())),
                          by_hall=tuple((h, r, n) for h, r, n in by_hall),
                          check_ins=tuple((start, n) for start, n in page), total_buckets=total)


class OwnershipChangeRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def exists(self, change_key: str) -> bool:
        return self._conn.execute(sa.select(sa.literal(1)).where(ownership_changes.c.change_key == change_key)) \
            .first() is not None

    def add(self, change_key: str, before: Seat, after: Seat) -> None:
        self._conn.execute(ownership_changes.insert().values(
            change_key=change_key, seat_id=after.seat_id, from_user_id=before.owner_user_id,
            to_user_id=after.owner_user_id, ticket_version=after.ticket_version))


class EntryLogRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add(self, seat_id: str | None, hall_id: str | None, result: ScanResult, detail: str = "",
            scanner_user_id: str | None = None, ticket_version: int | None = None) -> int:
        return _ADD_ENTRY.first(self._conn, {
            "p_seat_id": seat_id, "p_hall_id": hall_id, "p_result": result.value, "p_detail": detail,
            "p_scanner_user_id": scanner_user_id, "p_ticket_version": ticket_version})["id"]
