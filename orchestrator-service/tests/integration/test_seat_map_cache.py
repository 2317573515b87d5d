"""The public seat map is kept for SEAT_MAP_CACHE_SECONDS: one inventory read serves the fans asking meanwhile (a
flash sale's herd included), and a change this process makes to a seat shows at once. Against inventory's real
gRPC server, on seats seeded in its database."""
import threading
import time
import uuid

import pytest

from orchestrator_service.adapters.inventory import InventoryClient
from trcommon.testing import run_together


class ListSeatsSpy:
    """Inventory's real stub, passing every call on to the server and counting the ListSeats calls; each of those
    waits `delay` seconds first, so that concurrent readers meet."""

    def __init__(self, stub, delay: float = 0.0):
        self._stub = stub
        self._delay = delay
        self._lock = threading.Lock()
        self.list_calls = 0

    def ListSeats(self, request, **kwargs):
        with self._lock:
            self.list_calls += 1
        time.sleep(self._delay)
        return self._stub.ListSeats(request, **kwargs)

    def __getattr__(self, name):
        return getattr(self._stub, name)


def _id() -> str:
    return str(uuid.uuid4())


def _map(seats, statuses: dict[str, str] | None = None) -> list[tuple]:
    """The public map a fan should see of these seats: their seeded statuses, but those given by seat id."""
    statuses = statuses or {}
    return sorted((s.seat_id, s.section, s.row, s.number, s.price, statuses.get(s.seat_id, s.status.value))
                  for s in seats)


def _seen(seat_map) -> list[tuple]:
    return sorted((s.seat_id, s.section, s.row, s.number, s.price, s.status) for s in seat_map)


@pytest.fixture
def client(inventory_grpc_server, inventory_settings):
    """An InventoryClient on the real server with `seat_map_seconds`, its stub behind a ListSeatsSpy."""
    made: list[InventoryClient] = []

    def make(seat_map_seconds: float, delay: float = 0.0) -> tuple[InventoryClient, ListSeatsSpy]:
        c = InventoryClient(inventory_grpc_server.target, inventory_settings.internal_service_token, 10,
                            seat_map_seconds=seat_map_seconds)
        made.append(c)
        c._stub = ListSeatsSpy(c._stub, delay)
        return c, c._stub

    yield make
    for c in made:
        c.close()


def test_a_seat_map_is_read_once_while_it_is_fresh_and_again_after(client, new_seats):
    seats = new_seats()
    event_id, free = seats[0].event_id, seats[0].seat_id
    c, spy = client(1.0)
    first = c.list_seats(event_id)
    assert _seen(first) == _map(seats)
    # Another replica holds a seat: this process's map shows it once the map's time is up, not before.
    other, _ = client(0)
    other.reserve([free], _id(), _id(), 60)
    assert c.list_seats(event_id) == first
    assert spy.list_calls == 1
    time.sleep(1.1)
    assert _seen(c.list_seats(event_id)) == _map(seats, {free: "HELD"})
    assert spy.list_calls == 2


def test_a_herd_of_readers_on_a_cold_map_makes_one_read(client, new_seats):
    seats = new_seats()
    c, spy = client(5, delay=0.05)
    maps = run_together([lambda: c.list_seats(seats[0].event_id)] * 50)
    assert spy.list_calls == 1
    assert all(_seen(m) == _map(seats) for m in maps), maps


def test_a_reserve_or_release_made_here_drops_that_events_maps_only(client, new_seats):
    seats, others = new_seats(), new_seats()
    e1, e2, seat, hold = seats[0].event_id, others[0].event_id, seats[0].seat_id, _id()
    c, spy = client(60)
    c.list_seats(e1), c.list_seats(e2)
    c.reserve([seat], _id(), hold, 30)
    held, kept = c.list_seats(e1), c.list_seats(e2)
    assert spy.list_calls == 3            # e1 read again, e2 still kept
    assert _seen(held) == _map(seats, {seat: "HELD"}) and _seen(kept) == _map(others)
    assert c.release([seat], hold)
    assert _seen(c.list_seats(e1)) == _map(seats)
    assert spy.list_calls == 4


def test_without_a_cache_every_read_asks_inventory(client, new_seats):
    seats = new_seats()
    c, spy = client(0)
    assert _seen(c.list_seats(seats[0].event_id)) == _seen(c.list_seats(seats[0].event_id)) == _map(seats)
    assert spy.list_calls == 2
