from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain.model import Event, Hall, Venue
from .tables import events, halls, venues

_EVENT_COLUMNS = sa.select(
    events.c.event_id, events.c.name, events.c.venue_id, venues.c.name.label("venue_name"), events.c.hall_id,
    halls.c.name.label("hall_name"), events.c.starts_at, events.c.description,
).select_from(events.join(venues, venues.c.venue_id == events.c.venue_id)
              .join(halls, halls.c.hall_id == events.c.hall_id))


class EventRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def list(self, limit: int, offset: int) -> list[Event]:
        rows = self._conn.execute(
            _EVENT_COLUMNS.order_by(events.c.starts_at, events.c.event_id).limit(limit).offset(offset))
        return [Event(**row._mapping) for row in rows]

    def get(self, event_id: str) -> Event | None:
        row = self._conn.execute(_EVENT_COLUMNS.where(events.c.event_id == event_id)).first()
        return Event(**row._mapping) if row else None

    def list_venues(self, limit: int, offset: int) -> list[Venue]:
        page = (sa.select(venues.c.venue_id, venues.c.name, venues.c.address)
                .order_by(venues.c.name, venues.c.venue_id).limit(limit).offset(offset).subquery())
        rows = self._conn.execute(
            sa.select(page, halls.c.hall_id, halls.c.name.label("hall_name"))
            .select_from(page.outerjoin(halls, halls.c.venue_id == page.c.venue_id))
            .order_by(page.c.name, page.c.venue_id, halls.c.name, halls.c.hall_id)).all()
        found: dict[str, tuple] = {}
        for row in rows:
            venue = found.setdefault(row.venue_id, (row.name, row.address, []))
            if row.hall_id is not None:
                venue[2].append(Hall(row.hall_id, row.hall_name))
        return [Venue(vid, name, address, tuple(hs)) for vid, (name, address, hs) in found.items()]

    def add_venue(self, venue_id: str, name: str, address: str = "") -> None:
        self._conn.execute(sa.dialects.postgresql.insert(venues)
                           .values(venue_id=venue_id, name=name, address=address)
                           .on_conflict_do_nothing())

    def add_hall(self, hall_id: str, venue_id: str, name: str) -> None:
        self._conn.execute(sa.dialects.postgresql.insert(halls)
                           .values(hall_id=hall_id, venue_id=venue_id, name=name).on_conflict_do_nothing())

    def add_event(self, event_id: str, name: str, venue_id: str, hall_id: str, starts_at, description="") -> None:
        self._conn.execute(sa.dialects.postgresql.insert(events)
                           .values(event_id=event_id, name=name, venue_id=venue_id, hall_id=hall_id,
                                   starts_at=starts_at, description=description).on_conflict_do_nothing())
