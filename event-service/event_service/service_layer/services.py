"""Use cases of event-service: reads, each one statement in autocommit (no BEGIN, no COMMIT)."""
from __future__ import annotations

import uuid
from typing import Callable

from trcommon.errors import NotFound
from trcontracts.events import EventError

from ..domain.model import Event, Venue
from .unit_of_work import EventUnitOfWork

UowFactory = Callable[..., EventUnitOfWork]  # called with autocommit=True for single-statement work


def list_events(uow_factory: UowFactory, limit: int, offset: int) -> list[Event]:
    with uow_factory(autocommit=True) as uow:
        return uow.events.list(limit, offset)


def get_event(uow_factory: UowFactory, event_id: str) -> Event:
    try:
        uuid.UUID(event_id)
    except ValueError:
        raise NotFound("no such event", code=EventError.EVENT_NOT_FOUND) from None
    with uow_factory(autocommit=True) as uow:
        event = uow.events.get(event_id)
    if event is None:
        raise NotFound("no such event", code=EventError.EVENT_NOT_FOUND)
    return event


def list_venues(uow_factory: UowFactory, limit: int, offset: int) -> list[Venue]:
    with uow_factory(autocommit=True) as uow:
        return uow.events.list_venues(limit, offset)
