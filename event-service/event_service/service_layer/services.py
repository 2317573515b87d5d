"""Use cases of event-service. Reads are one statement each in autocommit (no BEGIN, no COMMIT); the organizer's
writes are short transactions that lock what they change."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from trcommon.errors import Conflict, NotFound
from trcontracts.base import canonical_uuid
from trcontracts.events import EventError, EventStatus

from ..adapters.repository import HallNameTaken
from ..domain.model import Event, Hall, Venue
from .unit_of_work import EventUnitOfWork

UowFactory = Callable[..., EventUnitOfWork]  # called with autocommit=True for single-statement work


def _event_not_found() -> NotFound:
    return NotFound("no such event", code=EventError.EVENT_NOT_FOUND)


def _venue_not_found() -> NotFound:
    return NotFound("no such venue", code=EventError.VENUE_NOT_FOUND)


def list_events(uow_factory: UowFactory, limit: int, offset: int,
                statuses: list[EventStatus] | None = None) -> list[Event]:
    with uow_factory(autocommit=True) as uow:
        return uow.events.list(limit, offset, statuses)


def get_event(uow_factory: UowFactory, event_id: str) -> Event:
    if canonical_uuid(event_id) is None:
        raise _event_not_found()
    with uow_factory(autocommit=True) as uow:
        event = uow.events.get(event_id)
    if event is None:
        raise _event_not_found()
    return event


def list_venues(uow_factory: UowFactory, limit: int, offset: int) -> list[Venue]:
    with uow_factory(autocommit=True) as uow:
        return uow.events.list_venues(limit, offset)


def get_venue(uow_factory: UowFactory, venue_id: str) -> Venue:
    if canonical_uuid(venue_id) is None:
        raise _venue_not_found()
    with uow_factory(autocommit=True) as uow:
        venue = uow.events.get_venue(venue_id)
    if venue is None:
        raise _venue_not_found()
    return venue


def create_venue(uow_factory: UowFactory, venue_id: str, name: str, address: str) -> tuple[Venue, bool]:
    """Idempotent by venue_id: (the venue, whether it was created now). VENUE_CONFLICT for the same id with
    another name or address."""
    with uow_factory(autocommit=True) as uow:
        created = uow.events.add_venue(venue_id, name, address)
        venue = uow.events.get_venue(venue_id)
    if not created and (venue.name, venue.address) != (name, address):
        raise Conflict(f"venue {venue_id} already exists with other details", code=EventError.VENUE_CONFLICT)
    return venue, created


def create_hall(uow_factory: UowFactory, venue_id: str, hall_id: str, name: str) -> tuple[Hall, bool]:
    """Idempotent by hall_id: (the hall, whether it was created now). VENUE_NOT_FOUND; HALL_NAME_TAKEN when another
    hall of the venue has the name; HALL_CONFLICT for the same id with another name or venue."""
    if canonical_uuid(venue_id) is None:
        raise _venue_not_found()
    with uow_factory() as uow:
        if uow.events.get_venue(venue_id) is None:
            raise _venue_not_found()
        existing = uow.events.get_hall(hall_id)
        if existing is None:
            try:
                created = uow.events.add_hall(hall_id, venue_id, name)
            except HallNameTaken:
                raise Conflict(f"the venue already has a hall named {name!r}",
                               code=EventError.HALL_NAME_TAKEN) from None
            existing = uow.events.get_hall(hall_id)
        else:
            created = False
        uow.commit()
    if not created and (existing.venue_id, existing.name) != (venue_id, name):
        raise Conflict(f"hall {hall_id} already exists with other details", code=EventError.HALL_CONFLICT)
    return existing, created


def create_event(uow_factory: UowFactory, event_id: str, name: str, hall_id: str, starts_at: datetime,
                 description: str) -> tuple[Event, bool]:
    """A DRAFT event in the hall, at the hall's venue. Idempotent by event_id: (the event as it is now, whether it
    was created now). HALL_NOT_FOUND; EVENT_CONFLICT for the same id with other details."""
    with uow_factory() as uow:
        hall = uow.events.get_hall(hall_id)
        if hall is None:
            raise NotFound("no such hall", code=EventError.HALL_NOT_FOUND)
        created = uow.events.add_event(event_id, name, hall.venue_id, hall_id, starts_at, description)
        event = uow.events.get(event_id)
        uow.commit()
    if not created and not event.matches(name, hall_id, starts_at, description):
        raise Conflict(f"event {event_id} already exists with other details", code=EventError.EVENT_CONFLICT)
    return event, created


def _change(uow_factory: UowFactory, event_id: str, change: Callable[[Event], Event]) -> Event:
    """Apply one rule of the event's life under its row lock; written (and updated_at moved) only when it
    changes something."""
    if canonical_uuid(event_id) is None:
        raise _event_not_found()
    with uow_factory() as uow:
        event = uow.events.get(event_id, for_update=True)
        if event is None:
            raise _event_not_found()
        changed = change(event)
        if changed == event:
            return event
        uow.events.save_state(changed)
        event = uow.events.get(event_id)
        uow.commit()
        return event


def publish(uow_factory: UowFactory, event_id: str) -> Event:
    return _change(uow_factory, event_id, lambda e: e.publish())


def begin_cancel(uow_factory: UowFactory, event_id: str, reason: str) -> Event:
    return _change(uow_factory, event_id, lambda e: e.begin_cancel(reason))


def cancel_progress(uow_factory: UowFactory, event_id: str, done: int) -> Event:
    return _change(uow_factory, event_id, lambda e: e.cancel_progress(done))


def finish_cancel(uow_factory: UowFactory, event_id: str) -> Event:
    return _change(uow_factory, event_id, lambda e: e.finish_cancel())


def stale_cancellations(uow_factory: UowFactory, grace_seconds: int, limit: int) -> list[Event]:
    with uow_factory(autocommit=True) as uow:
        return uow.events.stale_cancellations(grace_seconds, limit)
