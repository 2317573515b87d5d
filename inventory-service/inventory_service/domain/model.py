"""Seats and the rules of their life cycle: AVAILABLE → HELD → SOLD → CHECKED_IN, and HELD → AVAILABLE.

Plain data and pure functions: no framework imports. Every rule takes the current time as an argument (the
database clock, read by the caller) so that one clock decides whether a hold is live.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterable

from .exceptions import HoldExpired, NotOwner, SeatCheckedIn, SeatNotFound, SeatsNotInOneEvent, SeatUnavailable, TooManyHolds

MIN_HOLD_SECONDS = 1
MAX_HOLD_SECONDS = 3600


class SeatStatus(str, enum.Enum):
    AVAILABLE = "AVAILABLE"
    HELD = "HELD"
    SOLD = "SOLD"
    CHECKED_IN = "CHECKED_IN"


class ScanResult(str, enum.Enum):
    """The answer of a gate scan (docs/design.md); every scan is logged with one of these."""

    CHECKED_IN = "CHECKED_IN"
    DUPLICATE = "DUPLICATE"
    UNPAID = "UNPAID"
    NOT_FOUND = "NOT_FOUND"
    WRONG_HALL = "WRONG_HALL"
    EXPIRED = "EXPIRED"
    INVALID = "INVALID"


@dataclass(frozen=True)
class Seat:
    seat_id: str
    event_id: str
    section: str
    row: str
    number: int
    price: int
    status: SeatStatus = SeatStatus.AVAILABLE
    held_by_user_id: str | None = None
    hold_id: str | None = None          # the order id; a SOLD seat keeps the id of the order that bought it
    held_until: datetime | None = None
    owner_user_id: str | None = None
    ticket_version: int = 1
    checked_in_at: datetime | None = None
    checked_in_hall_id: str | None = None
    on_sale: bool = True                # false: the event's sale is closed (not published yet, or cancelled)

    # --- questions -------------------------------------------------------------------------------------------

    def hold_is_live(self, now: datetime) -> bool:
        return self.status is SeatStatus.HELD and self.held_until is not None and self.held_until > now

    def hold_has_lapsed(self, now: datetime) -> bool:
        return self.status is SeatStatus.HELD and not self.hold_is_live(now)

    def hold_due_in(self, now: datetime) -> float | None:
        """A HELD seat: the seconds until its hold's held_until, 0 once that has passed; None when not held."""
        if self.status is not SeatStatus.HELD:
            return None
        return (self.held_until - now).total_seconds() if self.hold_is_live(now) else 0.0

    def is_free(self, now: datetime) -> bool:
        """AVAILABLE, or HELD by a hold whose held_until has passed (it counts as AVAILABLE)."""
        return self.status is SeatStatus.AVAILABLE or self.hold_has_lapsed(now)

    def is_held_by(self, hold_id: str, user_id: str, now: datetime) -> bool:
        return self.hold_is_live(now) and self.hold_id == hold_id and self.held_by_user_id == user_id

    def is_sold_by(self, hold_id: str, user_id: str) -> bool:
        return (self.status in (SeatStatus.SOLD, SeatStatus.CHECKED_IN) and self.hold_id == hold_id
                and self.owner_user_id == user_id)

    def as_seen_at(self, now: datetime) -> Seat:
        """What callers are shown: a lapsed hold is reported as AVAILABLE with its hold fields empty."""
        if self.hold_has_lapsed(now):
            return self._freed()
        return self

    # --- transitions (each returns the new seat, or raises the business outcome) ------------------------------

    def hold(self, user_id: str, hold_id: str, now: datetime, hold_seconds: int) -> Seat:
        if not self.is_free(now):
            raise SeatUnavailable("seat is not available")
        return replace(self, status=SeatStatus.HELD, held_by_user_id=user_id, hold_id=hold_id,
                       held_until=now + timedelta(seconds=hold_seconds))

    def confirm(self, user_id: str, hold_id: str, now: datetime) -> Seat:
        """HELD by this hold and still live → SOLD to the user. Already sold by this hold: unchanged."""
        if self.is_sold_by(hold_id, user_id):
            return self
        if self.status is SeatStatus.HELD and self.hold_id == hold_id and self.held_by_user_id == user_id:
            if not self.hold_is_live(now):
                raise HoldExpired()
            return replace(self, status=SeatStatus.SOLD, owner_user_id=user_id, held_by_user_id=None,
                           held_until=None)
        raise SeatUnavailable("seat is not held by this hold")

    def transfer(self, expected_owner_id: str, new_owner_id: str) -> Seat:
        if self.status is not SeatStatus.SOLD:
            raise NotOwner(f"seat is {self.status.value}, only a SOLD ticket can change owner")
        if self.owner_user_id != expected_owner_id:
            raise NotOwner("the seat is not owned by the expected owner")
        return replace(self, owner_user_id=new_owner_id, ticket_version=self.ticket_version + 1)

    def take_back(self, owner_user_id: str, hold_id: str) -> Seat:
        """A refund of the order `hold_id` returns the ticket to sale: only while it is still SOLD to the fan who
        bought it. AVAILABLE, no owner, a new ticket_version (every code issued for it is INVALID at the gate)."""
        if self.status is SeatStatus.CHECKED_IN:
            raise SeatCheckedIn(f"seat {self.seat_id} was checked in; it cannot be refunded")
        if self.status is not SeatStatus.SOLD or self.hold_id != hold_id or self.owner_user_id != owner_user_id:
            raise NotOwner(f"seat {self.seat_id} is no longer the buyer's ticket (transferred or returned)")
        return replace(self, status=SeatStatus.AVAILABLE, owner_user_id=None, hold_id=None, held_by_user_id=None,
                       held_until=None, ticket_version=self.ticket_version + 1)

    # Releasing a hold and checking in are single conditional UPDATEs in the repository (the atomicity lives in
    # PostgreSQL: of concurrent callers exactly one matches); these are the rules for the calls that lose.

    def refuse_check_in(self, holder_user_id: str, ticket_version: int) -> ScanResult:
        """Why a check-in by a code of (holder, version) did not happen: INVALID when the ticket changed hands
        since the code was issued; DUPLICATE when already checked in; anything but SOLD is not a ticket."""
        if self.status in (SeatStatus.SOLD, SeatStatus.CHECKED_IN) and (
                self.owner_user_id != holder_user_id or self.ticket_version != ticket_version):
            return ScanResult.INVALID
        if self.status is SeatStatus.CHECKED_IN:
            return ScanResult.DUPLICATE
        raise SeatUnavailable(f"seat is {self.status.value}, not a paid ticket")

    def _freed(self) -> Seat:
        return replace(self, status=SeatStatus.AVAILABLE, held_by_user_id=None, hold_id=None, held_until=None)


def lock_order(seat_ids: Iterable[str]) -> list[str]:
    """The one order in which every multi-seat call locks its rows: ascending seat_id. Two holds of overlapping
    seats then never wait for each other in a cycle (and reservations never wait at all: NOWAIT)."""
    return sorted(set(seat_ids))


def hold_seats(found: list[Seat], seat_ids: list[str], user_id: str, hold_id: str, now: datetime,
               hold_seconds: int) -> list[Seat] | None:
    """The seats `found` (locked, in lock order) held under one hold: all of them, or an error naming the seats at
    fault, so that nothing is written. None when this same hold already has every one of them (a repeated call)."""
    missing = sorted(set(seat_ids) - {s.seat_id for s in found})
    if missing:
        raise SeatNotFound("no such seat" if len(seat_ids) == 1 else f"no such seats: {', '.join(missing)}",
                           seat_ids=None if len(seat_ids) == 1 else missing)
    if len({s.event_id for s in found}) > 1:
        raise SeatsNotInOneEvent()
    if all(s.is_held_by(hold_id, user_id, now) for s in found):
        return None
    taken = [s.seat_id for s in found if not s.is_free(now)]
    if taken:
        if len(found) == 1:
            raise SeatUnavailable("seat is not available")
        raise SeatUnavailable(f"not available ({len(taken)} of {len(found)} seats): {', '.join(taken)}",
                              seat_ids=taken)
    return [s.hold(user_id, hold_id, now, hold_seconds) for s in found]


def hold_cap_reached(max_holds: int, first_hold_ends_in: timedelta | None = None) -> TooManyHolds:
    """The refusal when a hold would take the user beyond `max_holds` seats in live holds (the rule itself is the
    hold's write, SeatRepository.hold). The cap ends by itself when the user's first live hold ends (or
    sooner, if they pay or a hold is released): the refusal says when, as every error that ends by itself does."""
    retry_after = None if first_hold_ends_in is None else max(1, math.ceil(first_hold_ends_in.total_seconds()))
    return TooManyHolds(f"at most {max_holds} seats can be held at once", retry_after=retry_after)


@dataclass(frozen=True)
class HoldReleased:
    """A hold ended without a sale: the seat (now AVAILABLE), the hold it had and when, by the database clock."""

    seat: Seat
    hold_id: str
    held_until: datetime
    released_at: datetime

    @property
    def late_seconds(self) -> float:
        """How long after held_until the seat became available again (negative: released early, on request)."""
        return (self.released_at - self.held_until).total_seconds()


# --- organizer operations: seat grids and reports ---------------------------------------------------------------

@dataclass(frozen=True)
class GridSection:
    """One section of a seat grid: every row holds the seats numbered 1..seats_per_row, all at one price."""

    section: str
    price: int
    rows: tuple[str, ...]
    seats_per_row: int


# A seat's place and price in a grid: (section, row, number, price).
Position = tuple[str, str, int, int]


def grid_positions(sections: Iterable[GridSection]) -> list[Position]:
    return [(s.section, row, number, s.price) for s in sections for row in s.rows
            for number in range(1, s.seats_per_row + 1)]


@dataclass(frozen=True)
class SectionSales:
    section: str
    total: int
    available: int
    held: int
    sold: int
    checked_in: int
    price_min: int
    price_max: int
    face_value_sold: int


@dataclass(frozen=True)
class SalesReport:
    sections: tuple[SectionSales, ...]

    def _sum(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sections)

    @property
    def available(self) -> int:
        return self._sum("available")

    @property
    def held(self) -> int:
        return self._sum("held")

    @property
    def sold(self) -> int:
        return self._sum("sold")

    @property
    def checked_in(self) -> int:
        return self._sum("checked_in")

    @property
    def total(self) -> int:
        return self._sum("total")

    @property
    def face_value_sold(self) -> int:
        return self._sum("face_value_sold")


@dataclass(frozen=True)
class GateReport:
    by_result: tuple[tuple[str, int], ...]               # (result, count), by result
    by_hall: tuple[tuple[str, str, int], ...]            # (hall_id, result, count), by hall then result
    check_ins: tuple[tuple[datetime, int], ...]          # (bucket_start, count), by time: one page
    total_buckets: int
