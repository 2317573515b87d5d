"""Events read for seat maps and gate scans are reused for EVENT_CACHE_SECONDS; unknown ones are asked again.
Against event-service's real app over HTTP, on events stored in its database."""
import time
import uuid

import pytest

from orchestrator_service.adapters.services import EventService
from trcommon.errors import AppError
from trcommon.http_client import ServiceClient
from trcontracts import events


class GetEventSpy:
    """The real event-service client, passing every call on and recording the event id of each GET_EVENT."""

    def __init__(self, client: ServiceClient):
        self._client = client
        self.calls: list[str] = []

    def call(self, route, body=None, **kwargs):
        if route is events.GET_EVENT:
            self.calls.append(kwargs["path"]["event_id"])
        return self._client.call(route, body, **kwargs)


@pytest.fixture
def client(event_service_url, events_settings):
    real = ServiceClient("event-service", event_service_url, events_settings.internal_service_token, 10)
    yield GetEventSpy(real)
    real.close()


def test_a_found_event_is_reused_until_its_time_is_up(client, new_event):
    event_id, name = new_event()
    service = EventService(client, cache_seconds=1.0)
    event = service.get(event_id)
    assert (event.event_id, event.name, event.hall_name) == (event_id, name, "Hall A")
    assert service.get(event_id) == event
    assert client.calls == [event_id]
    time.sleep(1.1)
    assert service.get(event_id) == event
    assert client.calls == [event_id, event_id]


def test_an_unknown_event_is_never_kept_and_no_cache_means_every_call_asks(client, new_event):
    unknown = str(uuid.uuid4())
    service = EventService(client, cache_seconds=60)
    for _ in range(2):
        with pytest.raises(AppError) as caught:
            service.get(unknown)
        assert (caught.value.code, caught.value.status) == (events.EventError.EVENT_NOT_FOUND, 404)
    assert client.calls == [unknown, unknown]
    new_event(unknown)                        # once it exists, it is seen at once
    assert service.get(unknown).event_id == unknown
    uncached = EventService(client)
    uncached.get(unknown), uncached.get(unknown)
    assert client.calls == [unknown] * 5
