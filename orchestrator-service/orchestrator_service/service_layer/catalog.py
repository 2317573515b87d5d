"""Read-only catalogue: events and seat maps, as fans see them. An event an organizer has not put on sale yet (DRAFT)
is not shown: it answers 404 like an unknown one. One on sale, being cancelled or cancelled is shown with its status."""
from __future__ import annotations

from trcommon.errors import NotFound
from trcontracts.events import Event, EventError, EventStatus

from ..bootstrap import Container

PUBLIC_STATUSES = [EventStatus.ON_SALE.value, EventStatus.CANCELLING.value, EventStatus.CANCELLED.value]


def events(c: Container, limit: int, offset: int):
    return c.events.list(limit, offset, status=PUBLIC_STATUSES)


def event(c: Container, event_id: str) -> Event:
    found = c.events.get(event_id)  # 404 EVENT_NOT_FOUND for an unknown event
    if found.status == EventStatus.DRAFT:
        raise NotFound("no such event", code=EventError.EVENT_NOT_FOUND)
    return found


def seat_map(c: Container, event_id: str) -> dict:
    found = event(c, event_id)
    seats = c.inventory.list_seats(found.event_id)
    return {"event_id": found.event_id, "hall_id": found.hall_id, "status": found.status,
            "seats": [s.public() for s in seats]}
