"""The internal API of event-service: the event catalogue and the venues with their halls."""
from __future__ import annotations

from enum import auto

from pydantic import BaseModel

from .base import ErrorCode, Page, Route, UtcTimestamp


class EventError(ErrorCode):
    EVENT_NOT_FOUND = auto(), 404


class Event(BaseModel):
    event_id: str
    name: str
    venue_id: str
    venue_name: str
    hall_id: str
    hall_name: str
    starts_at: UtcTimestamp
    description: str


class EventList(BaseModel):
    events: list[Event]


class Hall(BaseModel):
    hall_id: str
    name: str


class Venue(BaseModel):
    venue_id: str
    name: str
    address: str
    halls: list[Hall]


class VenueList(BaseModel):
    venues: list[Venue]


LIST_EVENTS = Route("GET", "/events", EventList, query=Page, idempotent=True, doc="By start time.")
GET_EVENT = Route("GET", "/events/{event_id}", Event, errors=(EventError.EVENT_NOT_FOUND,), idempotent=True)

LIST_VENUES = Route("GET", "/venues", VenueList, query=Page, idempotent=True,
                    doc="By name, each with its halls by name (a gate picks its hall from these).")

ROUTES = (LIST_EVENTS, GET_EVENT, LIST_VENUES)
