"""Races against the real server and PostgreSQL: many threads at once on one seat, or one user."""
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import sqlalchemy as sa
from trproto import inventory_pb2 as pb

from inventory_service.adapters.tables import entry_logs, seats
from trcommon.grpc_support import app_error_from_rpc


def _id() -> str:
    return str(uuid.uuid4())


def _all_at_once(n: int, call):
    """Run call(i) in n threads released together; returns ("ok", reply) or (status, AppError code) per call."""
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        try:
            return "ok", call(i)
        except grpc.RpcError as exc:
            return exc.code(), app_error_from_rpc(exc).code

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_fifty_concurrent_reservations_of_one_seat_hold_it_exactly_once(inventory, container, new_seat):
    seat_id = new_seat()
    outcomes = _all_at_once(50, lambda i: inventory.ReserveSeat(pb.ReserveSeatRequest(
        seat_id=seat_id, user_id=_id(), hold_id=_id(), hold_seconds=60)))
    winners = [reply for kind, reply in outcomes if kind == "ok"]
    losers = Counter(outcome for outcome in outcomes if outcome[0] != "ok")
    assert len(winners) == 1
    assert set(losers) <= {(grpc.StatusCode.ABORTED, "SEAT_UNAVAILABLE"),
                           (grpc.StatusCode.FAILED_PRECONDITION, "SEAT_UNAVAILABLE")}, losers
    assert sum(losers.values()) == 49
    with container.engine.connect() as conn:
        rows = conn.execute(sa.select(seats.c.status, seats.c.hold_id).where(seats.c.seat_id == seat_id)).all()
    assert rows == [("HELD", winners[0].seat.hold_id)]


def test_ten_concurrent_check_ins_of_one_ticket_check_it_in_exactly_once(inventory, container, new_seat):
    seat_id, user, hold = new_seat(), _id(), _id()
    inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=seat_id, user_id=user, hold_id=hold, hold_seconds=60))
    inventory.ConfirmSeat(pb.ConfirmSeatRequest(seat_id=seat_id, user_id=user, hold_id=hold))
    hall = _id()
    outcomes = _all_at_once(10, lambda i: inventory.MarkCheckedIn(pb.MarkCheckedInRequest(
        seat_id=seat_id, hall_id=hall, scanner_user_id=_id(), holder_user_id=user, ticket_version=1)))
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    assert sorted(reply.checked_in for _, reply in outcomes) == [False] * 9 + [True]
    assert {reply.seat.status for _, reply in outcomes} == {pb.CHECKED_IN}
    with container.engine.connect() as conn:
        results = conn.execute(sa.select(entry_logs.c.result).where(entry_logs.c.seat_id == seat_id)).scalars()
        assert Counter(results) == {"CHECKED_IN": 1, "DUPLICATE": 9}


def test_the_ninth_live_hold_of_a_user_is_too_many_holds_until_the_first_ends(inventory, new_seat, rpc_error):
    user = _id()
    for seconds in (60, 20, 60, 60, 60, 60, 60, 60):
        inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=new_seat(), user_id=user, hold_id=_id(),
                                                    hold_seconds=seconds))
    ninth = new_seat()
    exc = rpc_error(inventory.ReserveSeat, pb.ReserveSeatRequest(seat_id=ninth, user_id=user, hold_id=_id(),
                                                                 hold_seconds=60),
                    grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_HOLDS", 429)
    # The refusal says when the cap ends by itself: when the hold that ends first (20 s) lapses.
    assert 18 <= app_error_from_rpc(exc).retry_after <= 20
    # Another user is not affected, and the refused seat is still free.
    inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=ninth, user_id=_id(), hold_id=_id(), hold_seconds=60))


def test_lapsed_and_released_holds_do_not_count_toward_the_cap(inventory, new_seat):
    user = _id()
    first_seat, first_hold = new_seat(), _id()
    inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=first_seat, user_id=user, hold_id=first_hold,
                                                hold_seconds=60))
    for _ in range(7):
        inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=new_seat(), user_id=user, hold_id=_id(),
                                                    hold_seconds=60))
    inventory.ReleaseSeat(pb.ReleaseSeatRequest(seat_id=first_seat, hold_id=first_hold))
    inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=new_seat(), user_id=user, hold_id=_id(), hold_seconds=60))


def test_the_hold_cap_holds_under_concurrent_reservations(inventory, container, new_seat):
    user = _id()
    seat_ids = [new_seat() for _ in range(20)]
    outcomes = _all_at_once(20, lambda i: inventory.ReserveSeat(pb.ReserveSeatRequest(
        seat_id=seat_ids[i], user_id=user, hold_id=_id(), hold_seconds=60)))
    kinds = Counter(kind if kind == "ok" else outcome for kind, outcome in outcomes)
    assert kinds == {"ok": 8, "TOO_MANY_HOLDS": 12}, kinds
    with container.engine.connect() as conn:
        held = conn.execute(sa.select(sa.func.count()).select_from(seats)
                            .where(seats.c.held_by_user_id == user, seats.c.status == "HELD")).scalar_one()
    assert held == 8
