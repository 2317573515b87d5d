"""Request bodies and queries of the admin API (role `admin`). The organizer's inputs are checked here in full before
any remote call, so a bad grid or date is one 400 naming the field and nothing is written."""
from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from trcommon.errors import InvalidInput

from trcontracts.base import MAX_OFFSET, Page, QueryInt, Timestamp
from trcontracts.events import EventStatus
from trcontracts.users import NO_CONTROL_CHARACTERS

from ..domain.ids import UUID_PATTERN
from .schemas import NOT_BLANK, Id

MAX_GRID_SEATS = 20_000
MAX_PRICE = 100_000_000
MAX_GRANT = 1_000_000


def _stripped(value: str) -> str:
    """Names are kept without leading or trailing spaces (as the catalogue stores them)."""
    return value.strip()


def Text(max_length: int, min_length: int = 1, **field) -> object:
    """Text of a name: `min_length`-`max_length` characters with something besides spaces (the JSON guard refuses
    control characters in every body); leading and trailing spaces are dropped."""
    if min_length:
        field["pattern"] = NOT_BLANK
    return Annotated[str, Field(min_length=min_length, max_length=max_length, **field), AfterValidator(_stripped)]



class VenueBody(BaseModel):
    name: Text(200, examples=["Riverside Hall"])
    address: Text(500, 0, examples=["1 River Road"]) = ""


class HallBody(BaseModel):
    name: Text(200, examples=["Main Floor"])


class GridSection(BaseModel):
    """`rows` × seats numbered 1..`seats_per_row`, all at `price` credits."""

    section: Text(40, examples=["Stalls"])
    price: int = Field(strict=True, ge=0, le=MAX_PRICE, examples=[80])
    rows: list[Text(8)] = Field(min_length=1, max_length=200, examples=[["A", "B", "C"]],
                                description="row labels, distinct once leading and trailing spaces are dropped "
                                            "(else 400 GRID_INVALID)")
    seats_per_row: int = Field(strict=True, ge=1, le=500, examples=[50])



class GridInvalid(InvalidInput):
    code = "GRID_INVALID"


class GridTooLarge(InvalidInput):
    code = "GRID_TOO_LARGE"


class StartsInThePast(InvalidInput):
    code = "STARTS_IN_THE_PAST"


class EventBody(BaseModel):
    """An event in a hall with its whole seat grid, created DRAFT (not listed, not on sale) unless `publish` is true.
    Rules a schema cannot state, each a 400 of its own: `starts_at` in the future (STARTS_IN_THE_PAST); section names
    distinct, and row labels within a section (GRID_INVALID); at most 20,000 seats in all (GRID_TOO_LARGE)."""

    name: Text(200, examples=["Autumn Gala"])
    hall_id: Id
    starts_at: Timestamp = Field(description="RFC 3339 with a time zone; in the future (else 400 STARTS_IN_THE_PAST)",
                                 examples=["2030-01-02T20:00:00Z"])
    description: str = Field("", max_length=2000)
    sections: list[GridSection] = Field(min_length=1, max_length=50)
    publish: bool = Field(False, strict=True, description="put the event on sale at once")

    def check(self) -> "EventBody":
        """The rules the schema cannot state (see above), each with its own code."""
        if self.starts_at <= datetime.now(timezone.utc):
            raise StartsInThePast("starts_at must be in the future",
                                  details=[{"field": "starts_at", "message": "must be in the future"}])
        names = [s.section for s in self.sections]
        if len(set(names)) != len(names):
            raise GridInvalid("a section name appears more than once", details=[{"field": "sections"}])
        for i, s in enumerate(self.sections):
            if len(set(s.rows)) != len(s.rows):
                raise GridInvalid(f"section {s.section!r}: a row label appears more than once",
                                  details=[{"field": f"sections.{i}.rows"}])
        total = sum(len(s.rows) * s.seats_per_row for s in self.sections)
        if total > MAX_GRID_SEATS:
            raise GridTooLarge(f"the grid has {total} seats; at most {MAX_GRID_SEATS} per event")
        return self

    def event_fields(self) -> dict:
        return {"name": self.name, "hall_id": self.hall_id, "starts_at": self.starts_at.isoformat(),
                "description": self.description}

    def grid(self) -> list[dict]:
        return [s.model_dump() for s in self.sections]


class CancelEventBody(BaseModel):
    reason: Text(500, examples=["the artist is ill"])


class PricesBody(BaseModel):
    """The new price of the event's unsold seats: all of them, one `section`, or the listed `seat_ids`."""

    model_config = ConfigDict(json_schema_extra={"not": {"required": ["section", "seat_ids"]}})

    price: int = Field(strict=True, ge=0, le=MAX_PRICE, examples=[60])
    section: Text(40) | None = None
    seat_ids: list[Id] | None = Field(None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_scope(self):
        if self.section is not None and self.seat_ids is not None:
            raise ValueError("give section or seat_ids, not both")
        return self


class FlagBody(BaseModel):
    flagged: bool = Field(strict=True, description="true: the fan needs an OTP to pay")


class GrantBody(BaseModel):
    amount: int = Field(strict=True, ge=1, le=MAX_GRANT, examples=[500])
    reason: Text(200, examples=["complimentary: show delayed"])


class EventStatusFilter(StrEnum):
    DRAFT = EventStatus.DRAFT.value
    ON_SALE = EventStatus.ON_SALE.value
    CANCELLING = EventStatus.CANCELLING.value
    CANCELLED = EventStatus.CANCELLED.value


class AdminEventQuery(Page):
    status: EventStatusFilter | None = Field(None, description="only events in this status")


class GateQuery(BaseModel):
    bucket_seconds: QueryInt = Field(300, ge=60, le=86400, description="width of the check-ins-over-time buckets")
    limit: QueryInt = Field(100, ge=1, le=500)
    offset: QueryInt = Field(0, ge=0, le=MAX_OFFSET)


class EmailQuery(BaseModel):
    email: str = Field(min_length=3, max_length=254, pattern=NO_CONTROL_CHARACTERS, examples=["fan1@demo.test"])


class AuditQuery(Page):
    admin_id: str | None = Field(None, pattern=UUID_PATTERN)
    target_id: str | None = Field(None, min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    target_type: str | None = Field(None, min_length=1, max_length=32, pattern=NO_CONTROL_CHARACTERS)
    action: str | None = Field(None, min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)

    def filters(self) -> dict:
        return {k: v for k, v in self.model_dump(exclude={"limit", "offset"}).items() if v is not None}
