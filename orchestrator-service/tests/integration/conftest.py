"""The real services behind the orchestrator's clients, each on a fresh migrated database of its own: inventory's
gRPC server process (`python -m inventory_service.entrypoints.grpc_server`) and event-service's app over HTTP."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from event_service.entrypoints.app import create_app
from inventory_service.domain.model import Seat, SeatStatus
from trcommon.testing import grpc_server_fixtures, served_over_http, service_fixtures

inventory_database_url, inventory_settings, inventory_container = service_fixtures("inventory-service",
                                                                                   prefix="inventory_")
inventory_start_server, inventory_grpc_server = grpc_server_fixtures("inventory-service", prefix="inventory_")
events_database_url, events_settings, events_container = service_fixtures("event-service", prefix="events_")


@pytest.fixture(scope="session")
def event_service_url(events_settings, events_container):
    with served_over_http(create_app(events_settings, events_container)) as url:
        yield url


@pytest.fixture
def new_seats(inventory_container):
    """Seats of a fresh event in inventory's database: two AVAILABLE and one SOLD (to a fresh fan); returns them."""

    def make() -> list[Seat]:
        event_id = str(uuid.uuid4())
        seats = [Seat(str(uuid.uuid4()), event_id, "A", "1", number, 50 + number) for number in (1, 2)]
        seats.append(Seat(str(uuid.uuid4()), event_id, "B", "2", 3, 80, status=SeatStatus.SOLD,
                          hold_id=str(uuid.uuid4()), owner_user_id=str(uuid.uuid4())))
        with inventory_container.uow() as uow:
            uow.seats.add(seats)
            uow.commit()
        return seats

    return make


@pytest.fixture
def new_event(events_container):
    """A fresh event (in a fresh venue and hall) in event-service's database; returns (event id, its name)."""

    def make(event_id: str | None = None) -> tuple[str, str]:
        venue, hall, event = str(uuid.uuid4()), str(uuid.uuid4()), event_id or str(uuid.uuid4())
        name = f"Gig {event[:8]}"
        with events_container.uow() as uow:
            uow.events.add_venue(venue, f"Venue {venue[:8]}")
            uow.events.add_hall(hall, venue, "Hall A")
            uow.events.add_event(event, name, venue, hall, datetime.now(timezone.utc) + timedelta(days=3))
            uow.commit()
        return event, name

    return make
