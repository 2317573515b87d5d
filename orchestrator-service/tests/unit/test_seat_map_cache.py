"""The public seat map is kept for SEAT_MAP_CACHE_SECONDS: one inventory read serves the fans asking meanwhile (a
flash sale's herd included), and a change this process makes to a seat shows at once."""
import threading
import time

from trproto import inventory_pb2 as pb

from orchestrator_service.adapters.inventory import InventoryClient


def _seat(event_id="e1", status=1):
    return pb.Seat(seat_id="s1", event_id=event_id, section="A", row="1", number=1, price=50, status=status)


class FakeStub:
    """Inventory's answers, counting ListSeats calls (slow enough for concurrent readers to meet)."""

    def __init__(self):
        self.list_calls = 0
        self.lock = threading.Lock()

    def ListSeats(self, request):
        with self.lock:
            self.list_calls += 1
        time.sleep(0.05)
        return pb.ListSeatsReply(seats=[_seat(request.event_id)])

    def ReserveSeat(self, request):
        return pb.SeatReply(seat=_seat())

    def ReleaseSeat(self, request):
        return pb.ReleaseSeatReply(released=True, seat=_seat())


def client(seconds: float) -> tuple[InventoryClient, FakeStub]:
    c = InventoryClient("127.0.0.1:9", "token", 1.0, seat_map_seconds=seconds)
    c._stub = FakeStub()
    return c, c._stub


def test_a_seat_map_is_read_once_while_it_is_fresh_and_again_after():
    c, stub = client(0.3)
    assert c.list_seats("e1") == c.list_seats("e1")
    assert stub.list_calls == 1
    time.sleep(0.35)
    c.list_seats("e1")
    assert stub.list_calls == 2


def test_a_herd_of_readers_on_a_cold_map_makes_one_read():
    c, stub = client(5)
    threads = [threading.Thread(target=c.list_seats, args=("e1",)) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stub.list_calls == 1


def test_a_reserve_or_release_made_here_drops_that_events_map_only():
    c, stub = client(60)
    c.list_seats("e1"), c.list_seats("e2")
    c.reserve("s1", "u1", "h1", 30)
    c.list_seats("e1"), c.list_seats("e2")
    assert stub.list_calls == 3            # e1 read again, e2 still kept
    c.release("s1", "h1")
    c.list_seats("e1")
    assert stub.list_calls == 4


def test_without_a_cache_every_read_asks_inventory():
    c, stub = client(0)
    c.list_seats("e1"), c.list_seats("e1")
    assert stub.list_calls == 2
