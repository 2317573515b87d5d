"""The internal API of event-service: the event catalogue, the venues with their halls, and the organizer's moves
of an event through its life (DRAFT -> ON_SALE -> CANCELLING -> CANCELLED)."""
from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum, auto
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, field_serializer, field_validator

from .base import ErrorCode, Page, QueryInt, Route, Timestamp, UtcTimestamp, has_control_characters
from .orders import OrderError


class EventStatus(StrEnum):
    DRAFT = "DRAFT"            # created, not on sale yet
    ON_SALE = "ON_SALE"        # published
    CANCELLING = "CANCELLING"  # the cancellation saga is running: no sale; orders being refunded
    CANCELLED = "CANCELLED"    # every order refunded, every hold and transfer ended


class EventError(ErrorCode):
    EVENT_NOT_FOUND = auto(), 404
    VENUE_NOT_FOUND = auto(), 404
    HALL_NOT_FOUND = auto(), 404
    # The same id again with other details (a create is idempotent by its id, not a way to edit).
    VENUE_CONFLICT = auto(), 409
    HALL_CONFLICT = auto(), 409
    EVENT_CONFLICT = auto(), 409
    # Another hall of the venue has this name.
    HALL_NAME_TAKEN = auto(), 409
    # Publishing an event that is being, or has been, cancelled.
    EVENT_CANCELLED = auto(), 409
    INVALID_TRANSITION = OrderError.INVALID_TRANSITION


def _no_control_characters(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters")
    return value


def _trimmed(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not begin or end with spaces")
    return value


# A name shown to fans (1-200 characters, no control characters, no leading or trailing spaces) and free text.
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control_characters),
                 AfterValidator(_trimmed)]
Address = Annotated[str, Field(max_length=500), AfterValidator(_no_control_characters)]
Description = Annotated[str, Field(max_length=2000), AfterValidator(_no_control_characters)]
Reason = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_control_characters),
                   AfterValidator(_trimmed)]


# --- answers -----------------------------------------------------------------------------------------------------

class Event(BaseModel):
    event_id: str
    name: str
    venue_id: str
    venue_name: str
    hall_id: str
    hall_name: str
    starts_at: UtcTimestamp
    description: str
    status: EventStatus
    cancel_reason: str | None
    # How far the cancellation saga has come (its own count of steps done; only ever grows).
    cancel_step: int
    created_at: UtcTimestamp
    updated_at: UtcTimestamp


class EventList(BaseModel):
    events: list[Event]


class Hall(BaseModel):
    hall_id: str
    name: str
    venue_id: str


class VenueHall(BaseModel):
    """A hall as its venue lists it (the venue is the one listing it)."""

    hall_id: str
    name: str


class Venue(BaseModel):
    venue_id: str
    name: str
    address: str
    halls: list[VenueHall]


class VenueList(BaseModel):
    venues: list[Venue]


# --- requests ----------------------------------------------------------------------------------------------------

class EventQuery(Page):
    """`status`: only events in these states, one or several separated by commas (`DRAFT,ON_SALE`); all
    without it."""

    status: list[EventStatus] | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _comma_list(cls, value):
        if isinstance(value, str):
            return [part.strip() for part in value.split(",")]
        return value

    @field_serializer("status", when_used="json")
    def _as_comma_list(self, value: list[EventStatus] | None) -> str | None:
        # A query string carries one value per name here (the server reads the first of repeated names).
        return None if value is None else ",".join(s.value for s in value)


class StaleCancellationsQuery(BaseModel):
    grace_seconds: QueryInt = Field(0, ge=0, le=366 * 24 * 3600)
    limit: QueryInt = Field(100, ge=1, le=1000)


class CreateVenueBody(BaseModel):
    venue_id: uuid.UUID
    name: Name
    address: Address = ""


class CreateHallBody(BaseModel):
    hall_id: uuid.UUID
    name: Name


class CreateEventBody(BaseModel):
    """`starts_at` must be in the future (by the service's clock)."""

    event_id: uuid.UUID
    name: Name
    hall_id: uuid.UUID
    starts_at: Timestamp
    description: Description = ""

    @field_validator("starts_at")
    @classmethod
    def _in_the_future(cls, value: datetime) -> datetime:
        from datetime import timezone

        if value <= datetime.now(timezone.utc):
            raise ValueError("must be in the future")
        return value


class BeginCancelBody(BaseModel):
    reason: Reason


class CancelProgressBody(BaseModel):
    done: int = Field(strict=True, ge=0, le=2**31 - 1)


# --- routes ------------------------------------------------------------------------------------------------------

E = EventError

LIST_EVENTS = Route("GET", "/events", EventList, query=EventQuery, idempotent=True,
                    doc="By start time; `status` (a comma list) keeps the events in those states.")
GET_EVENT = Route("GET", "/events/{event_id}", Event, errors=(E.EVENT_NOT_FOUND,), idempotent=True)

LIST_VENUES = Route("GET", "/venues", VenueList, query=Page, idempotent=True,
                    doc="By name, each with its halls by name (a gate picks its hall from these).")

CREATE_VENUE = Route(
    "POST", "/internal/venues", Venue, 201, body=CreateVenueBody, errors=(E.VENUE_CONFLICT,), idempotent=True,
    doc="Keyed by `venue_id`: the same venue again is 200 with the venue as it is (halls included); the same id "
        "with another name or address is VENUE_CONFLICT.")
GET_VENUE = Route("GET", "/internal/venues/{venue_id}", Venue, errors=(E.VENUE_NOT_FOUND,), idempotent=True,
                  doc="With its halls by name.")
CREATE_HALL = Route(
    "POST", "/internal/venues/{venue_id}/halls", Hall, 201, body=CreateHallBody,
    errors=(E.VENUE_NOT_FOUND, E.HALL_NAME_TAKEN, E.HALL_CONFLICT), idempotent=True,
    doc="Keyed by `hall_id`: the same hall again is 200; the same id with another name or venue is HALL_CONFLICT. "
        "HALL_NAME_TAKEN when another hall of the venue has the name (a unique index decides between concurrent "
        "creates).")
CREATE_EVENT = Route(
    "POST", "/internal/events", Event, 201, body=CreateEventBody, errors=(E.HALL_NOT_FOUND, E.EVENT_CONFLICT),
    idempotent=True,
    doc="A DRAFT event in the hall (its venue is the hall's). Keyed by `event_id`: the same event again is 200 "
        "with the event as it is now (whatever its status); the same id with other details is EVENT_CONFLICT. "
        "`starts_at` in the past is INVALID_INPUT.")
PUBLISH_EVENT = Route(
    "POST", "/internal/events/{event_id}/publish", Event, errors=(E.EVENT_NOT_FOUND, E.EVENT_CANCELLED),
    idempotent=True, doc="DRAFT -> ON_SALE; ON_SALE: unchanged; CANCELLING or CANCELLED: EVENT_CANCELLED.")
BEGIN_CANCEL = Route(
    "POST", "/internal/events/{event_id}/cancel", Event, body=BeginCancelBody, errors=(E.EVENT_NOT_FOUND,),
    idempotent=True,
    doc="DRAFT or ON_SALE -> CANCELLING with the reason, cancel_step 0; CANCELLING or CANCELLED: returned as it is "
        "(the first reason kept).")
CANCEL_PROGRESS = Route(
    "POST", "/internal/events/{event_id}/cancel-progress", Event, body=CancelProgressBody,
    errors=(E.EVENT_NOT_FOUND, E.INVALID_TRANSITION), idempotent=True,
    doc="While CANCELLING: cancel_step = max(cancel_step, done) (a late or repeated report never moves it back); "
        "otherwise INVALID_TRANSITION.")
FINISH_CANCEL = Route(
    "POST", "/internal/events/{event_id}/cancel-finish", Event, errors=(E.EVENT_NOT_FOUND, E.INVALID_TRANSITION),
    idempotent=True, doc="CANCELLING -> CANCELLED; CANCELLED: unchanged; otherwise INVALID_TRANSITION.")
STALE_CANCELLATIONS = Route(
    "GET", "/internal/events/stale-cancellations", EventList, query=StaleCancellationsQuery, idempotent=True,
    doc="CANCELLING events not updated for more than `grace_seconds`, oldest update first (for the recovery "
        "worker).")

ROUTES = (LIST_EVENTS, GET_EVENT, LIST_VENUES, CREATE_VENUE, GET_VENUE, CREATE_HALL, CREATE_EVENT, PUBLISH_EVENT,
          BEGIN_CANCEL, CANCEL_PROGRESS, FINISH_CANCEL, STALE_CANCELLATIONS)
