"""Read-only catalogue: events and seat maps."""
from __future__ import annotations

from ..bootstrap import Container


def seat_map(c: Container, event_id: str) -> dict:
    event = c.events.get(event_id)  # 404 EVENT_NOT_FOUND for an unknown event
    seats = c.inventory.list_seats(event.event_id)
    return {"event_id": event.event_id, "hall_id": event.hall_id, "seats": [s.public() for s in seats]}
