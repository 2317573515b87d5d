"""Events read for seat maps and gate scans are reused for EVENT_CACHE_SECONDS; unknown ones are asked again."""
import time

import pytest

from trcommon.errors import NotFound
from trcontracts import events

from orchestrator_service.adapters.services import EventService

EVENT = events.Event(event_id="e1", name="Gig", venue_id="v", venue_name="V", hall_id="h", hall_name="H",
                     starts_at="2030-01-01T20:00:00Z", description="")


class CountingClient:
    def __init__(self):
        self.calls = []

    def call(self, route, body=None, *, path=None, query=None):
        self.calls.append(path["event_id"])
        if path["event_id"] != "e1":
            raise NotFound("no such event")
        return EVENT


def test_a_found_event_is_reused_until_its_time_is_up():
    client = CountingClient()
    service = EventService(client, cache_seconds=0.2)
    assert service.get("e1") == EVENT and service.get("e1") == EVENT
    assert client.calls == ["e1"]
    time.sleep(0.25)
    service.get("e1")
    assert client.calls == ["e1", "e1"]


def test_an_unknown_event_is_never_kept_and_no_cache_means_every_call_asks():
    client = CountingClient()
    service = EventService(client, cache_seconds=60)
    for _ in range(2):
        with pytest.raises(NotFound):
            service.get("e2")
    assert client.calls == ["e2", "e2"]
    uncached = EventService(client)
    uncached.get("e1"), uncached.get("e1")
    assert client.calls[2:] == ["e1", "e1"]
