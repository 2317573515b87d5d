"""Venues, halls and events, and the rules of an event's life: DRAFT -> ON_SALE -> CANCELLING -> CANCELLED (a
DRAFT may be cancelled too). Plain data and pure functions: no framework imports (the reply is
trcontracts.events.Event)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from trcommon.errors import Conflict
from trcontracts.events import EventError, EventStatus


class EventCancelled(Conflict):
    code = EventError.EVENT_CANCELLED


class InvalidTransition(Conflict):
    code = EventError.INVALID_TRANSITION


@dataclass(frozen=True)
class Event:
    event_id: str
    name: str
    venue_id: str
    venue_name: str
    hall_id: str
    hall_name: str
    starts_at: datetime
    description: str
    status: EventStatus
    cancel_reason: str | None
    cancel_step: int
    created_at: datetime
    updated_at: datetime

    def matches(self, name: str, hall_id: str, starts_at: datetime, description: str) -> bool:
        """Whether a create with these details is this event's own create again (its status may have moved)."""
        return (self.name, self.hall_id, self.starts_at, self.description) == (name, hall_id, starts_at, description)

    # --- transitions: each returns the event as it is to be (itself when nothing changes), or raises -----------

    def publish(self) -> Event:
        if self.status in (EventStatus.CANCELLING, EventStatus.CANCELLED):
            raise EventCancelled(f"the event is {self.status.value}; it cannot go on sale")
        return replace(self, status=EventStatus.ON_SALE)

    def begin_cancel(self, reason: str) -> Event:
        if self.status in (EventStatus.CANCELLING, EventStatus.CANCELLED):
            return self         # a repeat: the first reason stands
        return replace(self, status=EventStatus.CANCELLING, cancel_reason=reason, cancel_step=0)

    def cancel_progress(self, done: int) -> Event:
        if self.status is not EventStatus.CANCELLING:
            raise InvalidTransition(f"the event is {self.status.value}, not CANCELLING")
        return replace(self, cancel_step=max(self.cancel_step, done))

    def finish_cancel(self) -> Event:
        if self.status is EventStatus.CANCELLED:
            return self
        if self.status is not EventStatus.CANCELLING:
            raise InvalidTransition(f"the event is {self.status.value}; only a CANCELLING event can be cancelled")
        return replace(self, status=EventStatus.CANCELLED)


@dataclass(frozen=True)
class Hall:
    hall_id: str
    name: str
    venue_id: str


@dataclass(frozen=True)
class Venue:
    venue_id: str
    name: str
    address: str
    halls: tuple[Hall, ...]
