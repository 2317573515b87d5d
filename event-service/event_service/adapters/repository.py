from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from trcontracts.events import EventStatus

from ..domain.model import Event, Hall, Venue
from .tables import events, halls, venues

_EVENT_COLUMNS = sa.select(
    events.c.event_id, events.c.name, events.c.venue_id, venues.c.name.label("venue_name"), events.c.hall_id,
    halls.c.name.label("hall_name"), events.c.starts_at, events.c.description, events.c.status,
    events.c.cancel_reason, events.c.cancel_step, events.c.created_at, events.c.updated_at,
).select_from(events.join(venues, venues.c.venue_id == events.c.venue_id)
              .join(halls, halls.c.hall_id == events.c.hall_id))


class HallNameTaken(Exception):
    """Another hall of the venue has this name (uq_halls_venue_name)."""


def _event(row) -> Event:
    values = dict(row._mapping)
    values["status"] = EventStatus(values["status"])
    return Event(**values)


class EventRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def list(self, limit: int, offset: int, statuses: list[EventStatus] | None = None) -> list[Event]:
        query = _EVENT_COLUMNS
        if statuses:
            query = query.where(events.c.status.in_([s.value for s in statuses]))
        rows = self._conn.execute(query.order_by(events.c.starts_at, events.c.event_id).limit(limit).offset(offset))
        return [_event(row) for row in rows]

    def get(self, event_id: str, *, for_update: bool = False) -> Event | None:
        query = _EVENT_COLUMNS.where(events.c.event_id == event_id)
        if for_update:
            query = query.with_for_update(of=events)
        row = self._conn.execute(query).first()
        return _event(row) if row else None

    def stale_cancellations(self, grace_seconds: int, limit: int) -> list[Event]:
        cutoff = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, grace_seconds)
        rows = self._conn.execute(
            _EVENT_COLUMNS.where(events.c.status == EventStatus.CANCELLING.value, events.c.updated_at < cutoff)
            .order_by(events.c.updated_at, events.c.event_id).limit(limit))
        return [_event(row) for row in rows]

    def save_state(self, event: Event) -> None:
        """Write the event's state (the caller holds its row lock) and mark it updated."""
        self._conn.execute(events.update().where(events.c.event_id == event.event_id).values(
            status=event.status.value, cancel_reason=event.cancel_reason, cancel_step=event.cancel_step,
            updated_at=sa.func.now()))

    def list_venues(self, limit: int, offset: int) -> list[Venue]:
        page = (sa.select(venues.c.venue_id, venues.c.name, venues.c.address)
                .order_by(venues.c.name, venues.c.venue_id).limit(limit).offset(offset).subquery())
        return self._venues_with_halls(page)

    def get_venue(self, venue_id: str) -> Venue | None:
        one = sa.select(venues.c.venue_id, venues.c.name, venues.c.address).where(
            venues.c.venue_id == venue_id).subquery()
        found = self._venues_with_halls(one)
        return found[0] if found else None

    def _venues_with_halls(self, page) -> list[Venue]:
        rows = self._conn.execute(
            sa.select(page, halls.c.hall_id, halls.c.name.label("hall_name"))
            .select_from(page.outerjoin(halls, halls.c.venue_id == page.c.venue_id))
            .order_by(page.c.name, page.c.venue_id, halls.c.name, halls.c.hall_id)).all()
        found: dict[str, tuple] = {}
        for row in rows:
            venue = found.setdefault(row.venue_id, (row.name, row.address, []))
            if row.hall_id is not None:
                venue[2].append(Hall(row.hall_id, row.hall_name, row.venue_id))
        return [Venue(vid, name, address, tuple(hs)) for vid, (name, address, hs) in found.items()]

    def get_hall(self, hall_id: str) -> Hall | None:
        row = self._conn.execute(sa.select(halls.c.hall_id, halls.c.name, halls.c.venue_id)
                                 .where(halls.c.hall_id == hall_id)).first()
        return Hall(*row) if row else None

    def add_venue(self, venue_id: str, name: str, address: str = "") -> bool:
        """Insert the venue; False when one with this id exists already (left as it is)."""
        return self._conn.execute(insert(venues).values(venue_id=venue_id, name=name, address=address)
                                  .on_conflict_do_nothing(index_elements=[venues.c.venue_id])
                                  .returning(venues.c.venue_id)).first() is not None

    def add_hall(self, hall_id: str, venue_id: str, name: str) -> bool:
        """Insert the hall; False when one with this id exists already. HallNameTaken when another hall of the
        venue has the name."""
        try:
            return self._conn.execute(
                insert(halls).values(hall_id=hall_id, venue_id=venue_id, name=name)
                .on_conflict_do_nothing(index_elements=[halls.c.hall_id])
                .returning(halls.c.hall_id)).first() is not None
        except IntegrityError as exc:
            if getattr(exc.orig.diag, "constraint_name", None) == "uq_halls_venue_name":
                raise HallNameTaken() from None
            raise

    def add_event(self, event_id: str, name: str, venue_id: str, hall_id: str, starts_at: datetime,
                  description: str = "", status: EventStatus = EventStatus.DRAFT) -> bool:
        """Insert the event; False when one with this id exists already (left as it is)."""
        return self._conn.execute(
            insert(events).values(event_id=event_id, name=name, venue_id=venue_id, hall_id=hall_id,
                                  starts_at=starts_at, description=description, status=status.value)
            .on_conflict_do_nothing(index_elements=[events.c.event_id])
            .returning(events.c.event_id)).first() is not None
