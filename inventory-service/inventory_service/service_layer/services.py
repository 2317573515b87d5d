"""Use cases of inventory-service. Each owns one short transaction and reads time from the database clock."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Sequence

from ..domain.exceptions import EventNotOnSale, GridExists, HoldExpired, HoldIdInUse, SeatNotFound
from ..domain.model import (GateReport, GridSection, HoldReleased, SalesReport, ScanResult, Seat, grid_positions,
                            hold_cap_reached, hold_seats, lock_order)
from .unit_of_work import InventoryUnitOfWork

UowFactory = Callable[..., InventoryUnitOfWork]  # called with autocommit=True for single-statement work


@dataclass(frozen=True)
class CheckInOutcome:
    checked_in: bool   # True only for the one call that moved the seat to CHECKED_IN
    seat: Seat
    result: ScanResult  # what was logged


@dataclass(frozen=True)
class ExpiryOutcome:
    """What a hold-timer message found: the hold's seats released now; the hold still holding them
    (`live_for_seconds` is not None: the message came early, and the hold is live for that long — 0 when its
    held_until passed between the release statement and the read after it); or the hold gone."""

    released: tuple[HoldReleased, ...] = ()
    live_for_seconds: float | None = None


def reserve_seats(uow_factory: UowFactory, seat_ids: list[str], user_id: str, hold_id: str, hold_seconds: int,
                  max_holds: int) -> list[Seat]:
    """Hold 1-8 seats under one hold id, all or nothing, in one round trip (SeatRepository.hold): lock every seat
    NOWAIT in lock order with the user's hold-cap lock, then write the hold if the seats are free, on sale, within
    the cap and the hold id is unused. Any seat busy, taken or missing fails the whole call and nothing is written;
    the seats as they were when locked say which error. The seats, in lock order."""
    ids = lock_order(seat_ids)
    with uow_factory(autocommit=True) as uow:
        found, now, written = uow.seats.hold(ids, user_id, hold_id, hold_seconds, max_holds)
    # The same rule the database applied before writing: its refusals are answered from the seats as they were.
    held = hold_seats(found, ids, user_id, hold_id, now, hold_seconds)
    if held is None:
        return found    # the same reservation again (a retried call): its hold stands, unchanged
    if written:
        return held
    # Free seats it did not write: a seat is off sale, the hold id already names other seats, or the user would go
    # over the cap. No live hold left now means theirs lapsed since: retry at once.
    if not all(s.on_sale for s in found):
        raise EventNotOnSale()
    with uow_factory(autocommit=True) as uow:
        if uow.seats.hold_id_used_elsewhere(hold_id, ids):
            raise HoldIdInUse()
        raise hold_cap_reached(max_holds, uow.seats.first_live_hold_ends_in(user_id) or timedelta())


def confirm_seats(uow_factory: UowFactory, seat_ids: list[str], user_id: str, hold_id: str) -> list[Seat]:
    """Every seat HELD by this live hold → SOLD to the user, all or nothing, as one conditional UPDATE (autocommit:
    one round trip); when it sold nothing, the seats as they are now say why: already sold by this hold (a retry:
    returned as they are), the hold lapsed, or a seat is not this hold's."""
    ids = lock_order(seat_ids)
    with uow_factory(autocommit=True) as uow:
        sold = uow.seats.confirm(ids, user_id, hold_id)
        if len(sold) == len(ids):
            return sold
        found, now = uow.seats.get_many(ids)
    missing = sorted(set(ids) - {s.seat_id for s in found})
    if missing:
        raise SeatNotFound(seat_ids=None if len(ids) == 1 else missing)
    if all(s.is_sold_by(hold_id, user_id) for s in found):
        return found
    for seat in found:
        seat.confirm(user_id, hold_id, now)     # raises for the first seat that is not this live hold's
    # Every seat still confirmable by the clock of the read: the hold lapsed between the two statements by a hair;
    # the UPDATE, which decides, found it not live.
    raise HoldExpired()


def release_seats(uow_factory: UowFactory, seat_ids: list[str], hold_id: str) -> tuple[bool, list[Seat]]:
    """Release on request (payment failed, saga compensation): whether this call released any seat, and the
    seats as they are now."""
    ids = lock_order(seat_ids)
    with uow_factory(autocommit=True) as uow:
        released = {r.seat.seat_id: r.seat for r in uow.seats.release_hold(ids, hold_id)}
        uow.commit()
        if len(released) == len(ids):
            return True, [released[i] for i in ids]
        found, now = uow.seats.get_many(ids)
    if not found:
        raise SeatNotFound(seat_ids=None if len(ids) == 1 else ids)
    return bool(released), [released.get(s.seat_id) or s.as_seen_at(now) for s in found]


def release_expired_holds(uow_factory: UowFactory, holds: Sequence[tuple[Sequence[str], str]]) -> list[ExpiryOutcome]:
    """Hold timers fired, one or a batch of (seat ids, hold id): release the seats of each hold that still has them
    and whose held_until has passed, all in one statement; what each found, in the order given (a hold named twice
    is released by its first mention)."""
    pairs = sorted({(seat_id, hold_id) for seat_ids, hold_id in holds for seat_id in seat_ids})
    with uow_factory(autocommit=True) as uow:
        released: dict[str, list[HoldReleased]] = {}
        for r in uow.seats.release_lapsed(pairs):
            released.setdefault(r.hold_id, []).append(r)
        if released:
            uow.commit()
        unreleased = sorted({seat_id for seat_id, hold_id in pairs if hold_id not in released})
        found, now = uow.seats.get_many(unreleased) if unreleased else ([], None)
    # A hold the statement left that still holds its seats came early by the database clock when the statement
    # ran; its held_until may have passed since (by the read's clock), and then it is due now, not gone.
    live_for: dict[str, float] = {}
    for seat in found:
        due_in = seat.hold_due_in(now)
        if due_in is not None:
            live_for[seat.hold_id] = due_in
    outcomes = []
    for _, hold_id in holds:
        if hold_id in released:
            outcomes.append(ExpiryOutcome(released=tuple(sorted(released.pop(hold_id),
                                                                key=lambda r: r.seat.seat_id))))
        else:
            outcomes.append(ExpiryOutcome(live_for_seconds=live_for.get(hold_id)))
    return outcomes


def release_lapsed_holds(uow_factory: UowFactory, grace_seconds: float, limit: int) -> list[HoldReleased]:
    with uow_factory(autocommit=True) as uow:
        released = uow.seats.release_lapsed_holds(grace_seconds, limit)
        uow.commit()
        return released


def update_owner(uow_factory: UowFactory, seat_id: str, expected_owner_id: str, new_owner_id: str,
                 change_key: str) -> Seat:
    """Move a SOLD ticket to a new owner (a new ticket_version), once per change_key: a repeat of the same change
    returns the seat as it is now, whatever happened to it since; another change needs the expected owner."""
    with uow_factory() as uow:
        found = uow.seats.lock_for_update(seat_id)
        if found is None:
            raise SeatNotFound()
        seat, now = found
        if uow.ownership_changes.exists(change_key):
            return seat.as_seen_at(now)
        transferred = seat.transfer(expected_owner_id, new_owner_id)
        uow.seats.save(transferred)
        uow.ownership_changes.add(change_key, seat, transferred)
        uow.commit()
        return transferred


def return_seats(uow_factory: UowFactory, seat_ids: list[str], owner_user_id: str, hold_id: str,
                 change_key: str) -> list[Seat]:
    """A refund: every seat SOLD by this order and still the buyer's → AVAILABLE with a new ticket_version, all
    or nothing, once per change_key. The rows are locked in lock order first, so of concurrent calls with one key
    exactly one makes the change and the others, once it has committed, find its key and return the seats."""
    ids = lock_order(seat_ids)
    with uow_factory() as uow:
        found, now = uow.seats.lock_many_for_update(ids)
        missing = sorted(set(ids) - {s.seat_id for s in found})
        if missing:
            raise SeatNotFound(seat_ids=None if len(ids) == 1 else missing)
        if uow.ownership_changes.exists(change_key):
            return [s.as_seen_at(now) for s in found]
        returned = [s.take_back(owner_user_id, hold_id) for s in found]    # the first seat at fault raises
        for before, after in zip(found, returned):
            uow.seats.save(after)
            uow.ownership_changes.add(change_key, before, after)
        uow.commit()
        return returned


def get_seat(uow_factory: UowFactory, seat_id: str) -> Seat:
    with uow_factory(autocommit=True) as uow:
        found = uow.seats.get(seat_id)
    if found is None:
        raise SeatNotFound()
    seat, now = found
    return seat.as_seen_at(now)


def list_seats(uow_factory: UowFactory, event_id: str) -> list[Seat]:
    with uow_factory(autocommit=True) as uow:
        return [seat.as_seen_at(now) for seat, now in uow.seats.list_by_event(event_id)]


def list_tickets(uow_factory: UowFactory, user_id: str) -> list[Seat]:
    with uow_factory(autocommit=True) as uow:
        return [seat for seat, _ in uow.seats.list_tickets(user_id)]


def mark_checked_in(uow_factory: UowFactory, seat_id: str, hall_id: str, scanner_user_id: str | None,
                    holder_user_id: str, ticket_version: int) -> CheckInOutcome:
    """Check a ticket in by a code of (holder, version) and log the scan: CHECKED_IN for the winner, logged by the
    very statement that checks it in; for the others INVALID when the ticket is no longer the code's, else
    DUPLICATE (logged after a read of the seat)."""
    with uow_factory(autocommit=True) as uow:
        won = uow.seats.mark_checked_in(seat_id, hall_id, holder_user_id, ticket_version, scanner_user_id)
        if won is not None:
            seat, _ = won
            return CheckInOutcome(True, seat, ScanResult.CHECKED_IN)
        found = uow.seats.get(seat_id)
        if found is None:
            raise SeatNotFound()
        seat, _ = found
        result = seat.refuse_check_in(holder_user_id, ticket_version)
        detail = (f"code of version {ticket_version} for {holder_user_id}; the ticket is version "
                  f"{seat.ticket_version} of {seat.owner_user_id}" if result is ScanResult.INVALID
                  else f"already checked in at {seat.checked_in_at.isoformat()} in hall {seat.checked_in_hall_id}")
        uow.entry_logs.add(seat_id, hall_id, result, detail, scanner_user_id, ticket_version)
        return CheckInOutcome(False, seat, result)


def record_scan(uow_factory: UowFactory, seat_id: str | None, hall_id: str | None, result: ScanResult,
                detail: str, scanner_user_id: str | None, ticket_version: int | None = None) -> int:
    with uow_factory(autocommit=True) as uow:
        entry_id = uow.entry_logs.add(seat_id, hall_id, result, detail, scanner_user_id, ticket_version)
        uow.commit()
        return entry_id


# --- organizer operations ---------------------------------------------------------------------------------------

def create_seat_grid(uow_factory: UowFactory, event_id: str, sections: list[GridSection],
                     on_sale: bool) -> tuple[int, int]:
    """Create the event's seat grid in one transaction, concurrent calls for one event serialised by an advisory
    lock: (created, total). The same grid already there: (0, total); other seats there: GridExists."""
    wanted = grid_positions(sections)
    with uow_factory() as uow:
        uow.seats.lock_event_grid(event_id)
        existing = uow.seats.positions(event_id)
        if existing:
            if existing != set(wanted):
                raise GridExists(f"the event already has {len(existing)} seats, not this grid of {len(wanted)}")
            return 0, len(existing)
        created = uow.seats.add_grid(event_id, wanted, on_sale)
        uow.commit()
        return created, created


def set_event_sale(uow_factory: UowFactory, event_id: str, on_sale: bool) -> tuple[int, int]:
    """Open or close the sale of every seat of the event (closing ends its holds): (changed, released)."""
    with uow_factory(autocommit=True) as uow:
        return uow.seats.set_sale(event_id, on_sale)


def update_prices(uow_factory: UowFactory, event_id: str, price: int, section: str | None,
                  seat_ids: list[str] | None) -> tuple[int, int]:
    """Reprice the event's free seats in scope: (updated, skipped). Listed seats that are not the event's (or not
    of the section) change nothing: SeatNotFound naming them."""
    with uow_factory() as uow:
        updated, skipped, in_scope = uow.seats.update_prices(event_id, price, section, seat_ids)
        if seat_ids:
            missing = sorted(set(seat_ids) - set(in_scope))
            if missing:
                raise SeatNotFound(f"not seats of this event{' and section' if section is not None else ''}: "
                                   f"{', '.join(missing)}", seat_ids=missing)
        uow.commit()
        return updated, skipped


def sales_report(uow_factory: UowFactory, event_id: str) -> SalesReport:
    with uow_factory(autocommit=True) as uow:
        return SalesReport(tuple(uow.seats.sales_by_section(event_id)))


def gate_report(uow_factory: UowFactory, event_id: str, bucket_seconds: int, limit: int, offset: int) -> GateReport:
    # One snapshot for the three reads, so the counts agree with each other.
    with uow_factory() as uow:
        uow.conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return uow.seats.gate_report(event_id, bucket_seconds, limit, offset)
