"""The orchestrator's client of event-service (adapters/services.py EventService) against this service over real
HTTP: every organizer method, the status filter, and the event cache it keeps."""
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from event_service.entrypoints.app import create_app
from orchestrator_service.adapters.services import EventService
from trcommon.errors import AppError
from trcommon.http_client import ServiceClient
from trcommon.testing import served_over_http
from trcontracts import events


def _id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def service(settings, container):
    @contextmanager
    def make(cache_seconds: float = 0.0):
        with served_over_http(create_app(settings, container)) as url:
            yield EventService(ServiceClient("event-service", url, settings.internal_service_token, 5),
                               cache_seconds=cache_seconds)

    return make


def test_the_client_runs_an_event_from_venue_to_cancelled(service):
    with service() as svc:
        venue, hall, event_id = _id(), _id(), _id()
        created = svc.create_venue({"venue_id": venue, "name": "Arena", "address": "1 Main St"})
        assert isinstance(created, events.Venue) and created.halls == []
        assert svc.create_venue({"venue_id": venue, "name": "Arena", "address": "1 Main St"}) == created
        assert svc.create_hall(venue, {"hall_id": hall, "name": "Main"}) == events.Hall(
            hall_id=hall, name="Main", venue_id=venue)
        assert [h.hall_id for h in svc.get_venue(venue).halls] == [hall]
        starts = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=5)
        event = svc.create_event({"event_id": event_id, "name": "Gig", "hall_id": hall,
                                  "starts_at": starts.isoformat()})
        assert (event.status, event.venue_id, event.starts_at) == (events.EventStatus.DRAFT, venue, starts)
        assert svc.publish(event_id).status is events.EventStatus.ON_SALE
        assert event_id in [e.event_id for e in svc.list(200, 0, status=events.EventStatus.ON_SALE).events]
        assert event_id not in [e.event_id for e in svc.list(200, 0, status=["DRAFT", "CANCELLED"]).events]
        cancelling = svc.begin_cancel(event_id, "Storm")
        assert (cancelling.status, cancelling.cancel_reason) == (events.EventStatus.CANCELLING, "Storm")
        assert svc.cancel_progress(event_id, 2).cancel_step == 2
        assert event_id in [e.event_id for e in svc.stale_cancellations(0, limit=1000)]
        assert event_id not in [e.event_id for e in svc.stale_cancellations(3600, limit=1000)]
        assert svc.finish_cancel(event_id).status is events.EventStatus.CANCELLED
        with pytest.raises(AppError) as refused:
            svc.publish(event_id)
        assert (refused.value.status, refused.value.code) == (409, "EVENT_CANCELLED")
        with pytest.raises(AppError) as missing:
            svc.get_venue(_id())
        assert (missing.value.status, missing.value.code) == (404, "VENUE_NOT_FOUND")


def test_the_cached_get_is_dropped_by_the_clients_own_changes_and_by_forget(service, container):
    with service(cache_seconds=300) as svc:
        venue, hall, event_id = _id(), _id(), _id()
        svc.create_venue({"venue_id": venue, "name": "Arena"})
        svc.create_hall(venue, {"hall_id": hall, "name": "Main"})
        svc.create_event({"event_id": event_id, "name": "Gig", "hall_id": hall,
                          "starts_at": (datetime.now(timezone.utc) + timedelta(days=5)).isoformat()})
        assert svc.get(event_id).status is events.EventStatus.DRAFT
        svc.publish(event_id)
        assert svc.get(event_id).status is events.EventStatus.ON_SALE         # dropped by publish
        with container.uow() as uow:                                           # a change made elsewhere
            uow.events.save_state(uow.events.get(event_id).begin_cancel("elsewhere"))
            uow.commit()
        assert svc.get(event_id).status is events.EventStatus.ON_SALE         # still the cached one
        svc.forget(event_id)
        assert svc.get(event_id).status is events.EventStatus.CANCELLING
    with service() as uncached:
        uncached.forget(event_id)                                              # no cache: nothing to do
        assert uncached.get(event_id).status is events.EventStatus.CANCELLING
