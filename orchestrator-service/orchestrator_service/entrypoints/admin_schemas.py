"""Request bodies and queries of the admin API (role `admin`). The organizer's inputs are checked here in full before
any remote call, so a bad grid or date is one 400 naming the field and nothing is written."""
from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator, model_validator

from trcontracts.base import MAX_OFFSET, Page, QueryInt, Timestamp
from trcontracts.events import EventStatus

from ..domain.ids import UUID_PATTERN
from .schemas import NOT_BLANK, Id

MAX_GRID_SEATS = 20_000
MAX_PRICE = 100_000_000
MAX_GRANT = 1_000_000



class VenueBody(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK, examples=["Riverside Hall"])
    address: str = Field("", max_length=500, examples=["1 River Road"])


class HallBody(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK, examples=["Main Floor"])


class GridSection(BaseModel):
    """`rows` × seats numbered 1..`seats_per_row`, all at `price` credits."""

    section: str = Field(min_length=1, max_length=40, pattern=NOT_BLANK, examples=["Stalls"])
    price: int = Field(strict=True, ge=0, le=MAX_PRICE, examples=[80])
    rows: list[str] = Field(min_length=1, max_length=200, examples=[["A", "B", "C"]],
                            json_schema_extra={"uniqueItems": True})
    seats_per_row: int = Field(strict=True, ge=1, le=500, examples=[50])

    @field_validator("rows")
    @classmethod
    def _rows(cls, rows: list[str]) -> list[str]:
        for row in rows:
            if not 1 <= len(row) <= 8 or not row.strip():
                raise ValueError("each row label is 1 to 8 characters, not only whitespace")
        if len(set(rows)) != len(rows):
            raise ValueError("a row label appears more than once")
        return rows


class EventBody(BaseModel):
    """An event in a hall with its whole seat grid (at most 20,000 seats), created DRAFT (not listed, not on sale)
    unless `publish` is true."""

    name: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK, examples=["Autumn Gala"])
    hall_id: Id
    starts_at: Timestamp = Field(description="RFC 3339 with a time zone; in the future",
                                 examples=["2030-01-02T20:00:00Z"])
    description: str = Field("", max_length=2000)
    sections: list[GridSection] = Field(min_length=1, max_length=50)
    publish: bool = Field(False, strict=True, description="put the event on sale at once")

    @field_validator("starts_at")
    @classmethod
    def _future(cls, starts_at: datetime) -> datetime:
        if starts_at <= datetime.now(timezone.utc):
            raise ValueError("must be in the future")
        return starts_at

    @model_validator(mode="after")
    def _grid(self):
        names = [s.section for s in self.sections]
        if len(set(names)) != len(names):
            raise ValueError("a section name appears more than once")
        total = sum(len(s.rows) * s.seats_per_row for s in self.sections)
        if total > MAX_GRID_SEATS:
            raise ValueError(f"the grid has {total} seats; at most {MAX_GRID_SEATS} per event")
        return self

    def event_fields(self) -> dict:
        return {"name": self.name, "hall_id": self.hall_id, "starts_at": self.starts_at.isoformat(),
                "description": self.description}

    def grid(self) -> list[dict]:
        return [s.model_dump() for s in self.sections]


class CancelEventBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500, pattern=NOT_BLANK, examples=["the artist is ill"])


class PricesBody(BaseModel):
    """The new price of the event's unsold seats: all of them, one `section`, or the listed `seat_ids`."""

    price: int = Field(strict=True, ge=0, le=MAX_PRICE, examples=[60])
    section: str | None = Field(None, min_length=1, max_length=40)
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
    reason: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK, examples=["complimentary: show delayed"])


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
    email: str = Field(min_length=3, max_length=254, examples=["fan1@demo.test"])


class AuditQuery(Page):
    admin_id: str | None = Field(None, pattern=UUID_PATTERN)
    target_id: str | None = Field(None, min_length=1, max_length=200)
    target_type: str | None = Field(None, min_length=1, max_length=32)
    action: str | None = Field(None, min_length=1, max_length=64)

    def filters(self) -> dict:
        return {k: v for k, v in self.model_dump(exclude={"limit", "offset"}).items() if v is not None}
