from datetime import datetime, timezone

import pytest

from event_service.domain.model import Event
from event_service.service_layer import services
from trcommon.errors import NotFound
from trcontracts import events
from trcontracts.events import EventStatus


def test_the_event_reply_carries_hall_and_venue_and_an_iso_time():
    at = datetime(2030, 1, 2, 20, tzinfo=timezone.utc)
    e = Event("e1", "Gig", "v1", "Arena", "h1", "Hall A", at, "", EventStatus.DRAFT, None, 0, at, at)
    d = events.Event.model_validate(e, from_attributes=True).model_dump(mode="json")
    assert d["hall_id"] == "h1" and d["venue_id"] == "v1"
    assert d["starts_at"] == "2030-01-02T20:00:00+00:00"


def test_malformed_event_id_is_not_found_without_touching_the_database():
    def no_db():
        raise AssertionError("the database must not be queried for a malformed id")

    with pytest.raises(NotFound):
        services.get_event(no_db, "../etc/passwd")
