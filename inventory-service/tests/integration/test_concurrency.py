"""Races against the real server and PostgreSQL: many threads at once on one seat, or one user."""
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import sqlalchemy as sa
from inventory_service.adapters.tables import entry_logs, seats
from trcommon.grpc_support import app_error_from_rpc
from trproto import inventory_pb2 as pb


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


def _deadlocks(container) -> int:
    """Deadlocks PostgreSQL has detected in this database (each one is a 40P01 error in a transaction)."""
    with container.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        return conn.execute(sa.text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")) \
            .scalar_one()


def test_two_fans_asking_for_the_same_pair_in_opposite_orders_never_deadlock_nor_hold_half(
        inventory, container, new_seat):
    """RELIABILITY case 2: 500 holds of {s1, s2} each, one fan asking [s1, s2], the other [s2, s1], at once; each
    hold they get is released at once so the other can try. A third thread keeps reading the pair: at every instant
    both seats are free, or both are held by one hold."""
    event = _id()
    s1, s2 = new_seat(event, number=1), new_seat(event, number=2)
    deadlocks_before = _deadlocks(container)
    barrier = threading.Barrier(2)
    done = threading.Event()
    partial: list = []
    samples = 0

    def fan(order: list[str]) -> Counter:
        user, outcomes = _id(), Counter()
        barrier.wait()
        for _ in range(500):
            hold = _id()
            try:
                reply = inventory.ReserveSeat(pb.ReserveSeatRequest(seat_ids=order, user_id=user, hold_id=hold,
                                                                    hold_seconds=60))
            except grpc.RpcError as exc:
                outcomes[(exc.code(), app_error_from_rpc(exc).code)] += 1
                continue
            assert sorted(s.seat_id for s in reply.seats) == sorted(order)
            assert {(s.status, s.hold_id) for s in reply.seats} == {(pb.HELD, hold)}
            outcomes["held"] += 1
            assert inventory.ReleaseSeat(pb.ReleaseSeatRequest(seat_ids=order, hold_id=hold)).released
        return outcomes

    def watch() -> None:
        nonlocal samples
        with container.engine.connect() as conn:
            while not done.is_set():
                rows = conn.execute(sa.select(seats.c.status, seats.c.hold_id)
                                    .where(seats.c.seat_id.in_([s1, s2]))).all()
                conn.commit()
                samples += 1
                if len({tuple(r) for r in rows}) != 1:
                    partial.append(rows)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(2) as pool:
            a, b = pool.map(fan, ([s1, s2], [s2, s1]))
    finally:
        done.set()
        watcher.join()
    total = a + b
    # Every attempt either held both seats or failed whole as a busy or taken seat: no other error (a deadlock
    # would be an INTERNAL error), and nothing left half-held.
    assert sum(total.values()) == 1000
    assert set(total) <= {"held", (grpc.StatusCode.ABORTED, "SEAT_UNAVAILABLE"),
                          (grpc.StatusCode.FAILED_PRECONDITION, "SEAT_UNAVAILABLE")}, total
    assert a["held"] > 0 and b["held"] > 0, total
    assert partial == [] and samples > 0
    time.sleep(0.6)     # statistics reach pg_stat_database within half a second of a transaction's end
    assert _deadlocks(container) - deadlocks_before == 0
    with container.engine.connect() as conn:
        assert conn.execute(sa.select(seats.c.status).where(seats.c.seat_id.in_([s1, s2]))).scalars().all() == [
            "AVAILABLE", "AVAILABLE"]
    print(f"\nopposite-order pair holds: {dict(total)}; partial holds seen in {samples} samples: {len(partial)}; "
          f"deadlocks: {_deadlocks(container) - deadlocks_before}")


def test_a_party_hold_racing_single_holds_of_its_seats_is_all_or_nothing(inventory, container, new_seat):
    """Ten fans want one seat each of a party of four that eleven more fans want whole: every party hold that
    succeeds has all four seats, and every seat held is held by exactly one successful call."""
    event = _id()
    party = [new_seat(event, number=n) for n in range(1, 5)]
    calls = [(list(reversed(party)) if i % 2 else party) for i in range(11)] + [[party[i % 4]] for i in range(10)]
    outcomes = _all_at_once(len(calls), lambda i: inventory.ReserveSeat(pb.ReserveSeatRequest(
        seat_ids=calls[i], user_id=_id(), hold_id=_id(), hold_seconds=60)))
    assert all(kind == "ok" or code == "SEAT_UNAVAILABLE" for kind, code in outcomes), outcomes
    with container.engine.connect() as conn:
        rows = dict(conn.execute(sa.select(seats.c.seat_id, seats.c.hold_id).where(seats.c.seat_id.in_(party))).all())
    for kind, reply in outcomes:
        if kind == "ok":
            assert {rows[s.seat_id] for s in reply.seats} == {reply.seat.hold_id}
    won = [reply for kind, reply in outcomes if kind == "ok"]
    assert sum(len(r.seats) for r in won) == sum(v is not None for v in rows.values())


def test_a_refund_racing_a_check_in_of_its_ticket_lets_exactly_one_of_them_happen(inventory, container, new_seat):
    for _ in range(10):
        seat_id, user, hold, hall = new_seat(), _id(), _id(), _id()
        inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=seat_id, user_id=user, hold_id=hold, hold_seconds=60))
        inventory.ConfirmSeat(pb.ConfirmSeatRequest(seat_id=seat_id, user_id=user, hold_id=hold))
        back, scan = _all_at_once(2, lambda i: (
            inventory.ReturnSeats(pb.ReturnSeatsRequest(seat_ids=[seat_id], owner_user_id=user, hold_id=hold,
                                                        change_key=f"order:{hold}:take-back")) if i == 0 else
            inventory.MarkCheckedIn(pb.MarkCheckedInRequest(seat_id=seat_id, hall_id=hall, holder_user_id=user,
                                                            ticket_version=1))))
        with container.engine.connect() as conn:
            status, version = conn.execute(sa.select(seats.c.status, seats.c.ticket_version)
                                           .where(seats.c.seat_id == seat_id)).one()
        if back[0] == "ok":         # returned first: the old code checks nobody in
            assert (status, version) == ("AVAILABLE", 2)
            assert scan[0] != "ok" or scan[1].checked_in is False, scan
        else:                       # checked in first: the refund is refused, nothing changed
            assert back == (grpc.StatusCode.FAILED_PRECONDITION, "SEAT_CHECKED_IN"), back
            assert scan[0] == "ok" and scan[1].checked_in is True
            assert (status, version) == ("CHECKED_IN", 1)


def test_twenty_concurrent_returns_under_one_key_take_the_seats_back_once(inventory, container, new_seat):
    event = _id()
    seat_ids, user, hold = sorted(new_seat(event_id=event, number=n) for n in (1, 2, 3)), _id(), _id()
    inventory.ReserveSeat(pb.ReserveSeatRequest(seat_ids=seat_ids, user_id=user, hold_id=hold, hold_seconds=60))
    inventory.ConfirmSeat(pb.ConfirmSeatRequest(seat_ids=seat_ids, user_id=user, hold_id=hold))
    outcomes = _all_at_once(20, lambda i: inventory.ReturnSeats(pb.ReturnSeatsRequest(
        seat_ids=seat_ids, owner_user_id=user, hold_id=hold, change_key=f"order:{hold}:take-back")))
    assert [kind for kind, _ in outcomes] == ["ok"] * 20, outcomes
    with container.engine.connect() as conn:
        rows = conn.execute(sa.select(seats.c.status, seats.c.ticket_version, seats.c.owner_user_id)
                            .where(seats.c.seat_id.in_(seat_ids))).all()
        changes = conn.execute(sa.text("SELECT count(*) FROM ownership_changes WHERE change_key = :k"),
                               {"k": f"order:{hold}:take-back"}).scalar_one()
    assert sorted(rows) == [("AVAILABLE", 2, None)] * 3 and changes == 3
