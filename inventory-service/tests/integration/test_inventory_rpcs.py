"""Every RPC through the real gRPC server process and PostgreSQL: happy paths and error codes."""
import time
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2
from inventory_service.adapters.tables import entry_logs, metadata
from inventory_service.seed import seed_demo
from trcommon import demo
from trcommon.grpc_support import app_error_from_rpc
from trcommon.testing import schema_differences
from trproto import inventory_pb2 as pb
from trproto import inventory_pb2_grpc

ABORTED, NOT_FOUND, FAILED, INVALID = (grpc.StatusCode.ABORTED, grpc.StatusCode.NOT_FOUND,
                                       grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)


def _id() -> str:
    return str(uuid.uuid4())


def _reserve(inventory, seat_id, user_id=None, hold_id=None, hold_seconds=60):
    return inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=seat_id, user_id=user_id or _id(),
                                                       hold_id=hold_id or _id(), hold_seconds=hold_seconds)).seat


def _sold_seat(inventory, new_seat):
    seat_id, user, hold = new_seat(), _id(), _id()
    _reserve(inventory, seat_id, user, hold)
    inventory.ConfirmSeat(pb.ConfirmSeatRequest(seat_id=seat_id, user_id=user, hold_id=hold))
    return seat_id, user, hold


def _entry_logs(container, seat_id):
    with container.engine.connect() as conn:
        return conn.execute(sa.select(entry_logs).where(entry_logs.c.seat_id == seat_id)
                            .order_by(entry_logs.c.id)).mappings().all()


def test_migrations_create_exactly_the_declared_tables(database_url):
    assert schema_differences(database_url, metadata) == []


def test_seeding_twice_loads_the_200_demo_seats_once(settings, inventory):
    seed_demo(settings)
    seed_demo(settings)
    seats = inventory.ListSeats(pb.ListSeatsRequest(event_id=demo.EVENT_ID)).seats
    assert len(seats) == 200
    assert {s.seat_id for s in seats} == {demo.seat_id(*position) for position in demo.SEATS}
    assert {s.price for s in seats} == {demo.SEAT_PRICE}


def test_reserve_holds_an_available_seat_until_now_plus_hold_seconds(inventory, new_seat):
    seat_id, user, hold = new_seat(), _id(), _id()
    before = datetime.now(timezone.utc)
    seat = _reserve(inventory, seat_id, user, hold, hold_seconds=120)
    assert (seat.status, seat.held_by_user_id, seat.hold_id, seat.owner_user_id) == (pb.HELD, user, hold, "")
    held_until = datetime.fromisoformat(seat.held_until)
    assert held_until.utcoffset() == timedelta(0)
    assert before + timedelta(seconds=119) < held_until < before + timedelta(seconds=122)


def test_reserve_fails_when_seat_already_held(inventory, new_seat, rpc_error):
    seat_id = new_seat()
    _reserve(inventory, seat_id)
    exc = rpc_error(inventory.ReserveSeat, pb.ReserveSeatRequest(seat_id=seat_id, user_id=_id(), hold_id=_id(),
                                                                 hold_seconds=60), FAILED, "SEAT_UNAVAILABLE", 409)
    assert "busy" not in exc.details()


def test_reserve_again_with_the_same_hold_returns_the_hold_unchanged(inventory, new_seat):
    seat_id, user, hold = new_seat(), _id(), _id()
    first = _reserve(inventory, seat_id, user, hold)
    again = _reserve(inventory, seat_id, user, hold, hold_seconds=600)
    assert again == first


def test_a_hold_id_holds_one_seat_only(inventory, new_seat, rpc_error, stored_seat):
    hold = _id()
    _reserve(inventory, new_seat(), hold_id=hold)
    other = new_seat()
    rpc_error(inventory.ReserveSeat, pb.ReserveSeatRequest(seat_id=other, user_id=_id(), hold_id=hold,
                                                           hold_seconds=60), FAILED, "HOLD_ID_IN_USE", 409)
    assert stored_seat(other).status.value == "AVAILABLE"


def test_reserve_of_an_unknown_seat_is_seat_not_found(inventory, rpc_error):
    rpc_error(inventory.ReserveSeat, pb.ReserveSeatRequest(seat_id=_id(), user_id=_id(), hold_id=_id(),
                                                           hold_seconds=60), NOT_FOUND, "SEAT_NOT_FOUND", 404)


@pytest.mark.parametrize("fields", [{"seat_id": "seat-1"}, {"user_id": ""}, {"hold_id": "x"}, {"hold_seconds": 0},
                                    {"hold_seconds": 3601}])
def test_malformed_ids_and_out_of_range_hold_seconds_are_invalid_argument(inventory, new_seat, rpc_error, fields):
    request = {"seat_id": new_seat(), "user_id": _id(), "hold_id": _id(), "hold_seconds": 60, **fields}
    rpc_error(inventory.ReserveSeat, pb.ReserveSeatRequest(**request), INVALID, "INVALID_INPUT", 400)


def test_malformed_ids_are_invalid_argument_on_every_rpc(inventory, rpc_error):
    for call, request in ((inventory.ConfirmSeat, pb.ConfirmSeatRequest(seat_id="1", user_id=_id(), hold_id=_id())),
                          (inventory.ReleaseSeat, pb.ReleaseSeatRequest(seat_id=_id(), hold_id="nope")),
                          (inventory.UpdateOwner, pb.UpdateOwnerRequest(seat_id=_id(), expected_owner_id=_id())),
                          (inventory.VerifyTicket, pb.VerifyTicketRequest(seat_id="'; --")),
                          (inventory.MarkCheckedIn, pb.MarkCheckedInRequest(seat_id=_id(), hall_id="Hall A",
                                                                            holder_user_id=_id(), ticket_version=1)),
                          (inventory.MarkCheckedIn, pb.MarkCheckedInRequest(seat_id=_id(), hall_id=_id(),
                                                                            holder_user_id=_id(), ticket_version=0)),
                          (inventory.ListSeats, pb.ListSeatsRequest(event_id="")),
                          (inventory.RecordScan, pb.RecordScanRequest(result="WAVED_THROUGH"))):
        rpc_error(call, request, INVALID, "INVALID_INPUT", 400)


def test_reserve_is_seat_busy_at_once_while_another_transaction_holds_the_row_lock(inventory, container, new_seat,
                                                                                    rpc_error, stored_seat):
    seat_id = new_seat()
    with container.uow() as uow:
        uow.seats.lock_for_update(seat_id)   # a concurrent transaction on the seat, not yet committed
        started = time.monotonic()
        exc = rpc_error(inventory.ReserveSeat, pb.ReserveSeatRequest(seat_id=seat_id, user_id=_id(), hold_id=_id(),
                                                                     hold_seconds=60),
                        ABORTED, "SEAT_UNAVAILABLE", 409)
        elapsed = time.monotonic() - started
    assert app_error_from_rpc(exc).message == "seat busy"
    assert elapsed < 1.0, "NOWAIT must answer at once, never wait for the lock"
    assert stored_seat(seat_id).status.value == "AVAILABLE"


def test_a_lapsed_hold_counts_as_available(inventory, new_seat, stored_seat):
    event_id = _id()
    seat_id = new_seat(event_id=event_id)
    _reserve(inventory, seat_id, hold_seconds=1)
    time.sleep(1.1)
    listed = inventory.ListSeats(pb.ListSeatsRequest(event_id=event_id)).seats[0]
    verified = inventory.VerifyTicket(pb.VerifyTicketRequest(seat_id=seat_id)).seat
    for seat in (listed, verified):
        assert (seat.status, seat.hold_id, seat.held_by_user_id, seat.held_until) == (pb.AVAILABLE, "", "", "")
    assert stored_seat(seat_id).status.value == "HELD"     # nothing has released it yet: it only counts as free
    user, hold = _id(), _id()
    taken = _reserve(inventory, seat_id, user, hold)
    assert (taken.status, taken.held_by_user_id, taken.hold_id) == (pb.HELD, user, hold)


def test_confirm_sells_the_seat_and_is_idempotent(inventory, new_seat):
    seat_id, user, hold = new_seat(), _id(), _id()
    _reserve(inventory, seat_id, user, hold)
    request = pb.ConfirmSeatRequest(seat_id=seat_id, user_id=user, hold_id=hold)
    sold = inventory.ConfirmSeat(request).seat
    assert (sold.status, sold.owner_user_id, sold.hold_id, sold.held_until, sold.ticket_version) == \
        (pb.SOLD, user, hold, "", 1)
    assert inventory.ConfirmSeat(request).seat == sold


def test_confirm_after_the_hold_lapsed_is_hold_expired(inventory, new_seat, rpc_error):
    seat_id, user, hold = new_seat(), _id(), _id()
    _reserve(inventory, seat_id, user, hold, hold_seconds=1)
    time.sleep(1.1)
    rpc_error(inventory.ConfirmSeat, pb.ConfirmSeatRequest(seat_id=seat_id, user_id=user, hold_id=hold),
              FAILED, "HOLD_EXPIRED", 410)


def test_confirm_with_another_hold_or_user_is_seat_unavailable(inventory, new_seat, rpc_error):
    seat_id, user, hold = new_seat(), _id(), _id()
    _reserve(inventory, seat_id, user, hold)
    for request in (pb.ConfirmSeatRequest(seat_id=seat_id, user_id=user, hold_id=_id()),
                    pb.ConfirmSeatRequest(seat_id=seat_id, user_id=_id(), hold_id=hold)):
        rpc_error(inventory.ConfirmSeat, request, FAILED, "SEAT_UNAVAILABLE", 409)
    rpc_error(inventory.ConfirmSeat, pb.ConfirmSeatRequest(seat_id=_id(), user_id=user, hold_id=hold),
              NOT_FOUND, "SEAT_NOT_FOUND", 404)


def test_release_frees_the_seat_and_is_idempotent(inventory, new_seat):
    seat_id, hold = new_seat(), _id()
    _reserve(inventory, seat_id, hold_id=hold)
    request = pb.ReleaseSeatRequest(seat_id=seat_id, hold_id=hold)
    first = inventory.ReleaseSeat(request)
    assert first.released is True
    assert (first.seat.status, first.seat.hold_id, first.seat.held_by_user_id) == (pb.AVAILABLE, "", "")
    again = inventory.ReleaseSeat(request)
    assert again.released is False and again.seat == first.seat


def test_release_leaves_a_seat_held_by_another_hold_or_sold(inventory, new_seat, rpc_error):
    held_id, holder = new_seat(), _id()
    held = _reserve(inventory, held_id, hold_id=holder)
    reply = inventory.ReleaseSeat(pb.ReleaseSeatRequest(seat_id=held_id, hold_id=_id()))
    assert reply.released is False and reply.seat == held
    sold_id, _, order = _sold_seat(inventory, new_seat)
    reply = inventory.ReleaseSeat(pb.ReleaseSeatRequest(seat_id=sold_id, hold_id=order))
    assert reply.released is False and reply.seat.status == pb.SOLD
    rpc_error(inventory.ReleaseSeat, pb.ReleaseSeatRequest(seat_id=_id(), hold_id=order),
              NOT_FOUND, "SEAT_NOT_FOUND", 404)


def _move(inventory, seat_id, expected, new, key):
    return inventory.UpdateOwner(pb.UpdateOwnerRequest(seat_id=seat_id, expected_owner_id=expected,
                                                       new_owner_id=new, change_key=key)).seat


def test_update_owner_transfers_the_ticket_and_bumps_its_version(inventory, new_seat, rpc_error):
    seat_id, seller, _ = _sold_seat(inventory, new_seat)
    buyer = _id()
    seat = _move(inventory, seat_id, seller, buyer, f"transfer:{_id()}:move-ticket")
    assert (seat.owner_user_id, seat.ticket_version, seat.status) == (buyer, 2, pb.SOLD)
    # Another transfer from the seller, who no longer owns it, is refused.
    rpc_error(inventory.UpdateOwner, pb.UpdateOwnerRequest(seat_id=seat_id, expected_owner_id=seller,
                                                           new_owner_id=buyer, change_key=f"transfer:{_id()}:m"),
              FAILED, "NOT_OWNER", 409)
    rpc_error(inventory.UpdateOwner, pb.UpdateOwnerRequest(seat_id=_id(), expected_owner_id=seller,
                                                           new_owner_id=buyer, change_key="k"),
              NOT_FOUND, "SEAT_NOT_FOUND", 404)


def test_update_owner_repeated_by_the_same_transfer_returns_the_current_seat_and_changes_nothing(
        inventory, container, new_seat):
    seat_id, seller, hold = _sold_seat(inventory, new_seat)
    buyer, key = _id(), f"transfer:{_id()}:move-ticket"
    first = _move(inventory, seat_id, seller, buyer, key)
    assert _move(inventory, seat_id, seller, buyer, key) == first
    # Even once the ticket has moved on (checked in), the repeat is answered, not refused.
    inventory.MarkCheckedIn(pb.MarkCheckedInRequest(seat_id=seat_id, hall_id=_id(), holder_user_id=buyer,
                                                    ticket_version=2))
    again = _move(inventory, seat_id, seller, buyer, key)
    assert (again.owner_user_id, again.ticket_version, again.status) == (buyer, 2, pb.CHECKED_IN)
    with container.engine.connect() as conn:
        changes = conn.execute(sa.text("SELECT change_key, from_user_id::text, to_user_id::text, ticket_version "
                                       "FROM ownership_changes WHERE seat_id = :s"), {"s": seat_id}).all()
    assert [tuple(c) for c in changes] == [(key, seller, buyer, 2)]


def test_update_owner_repeated_concurrently_moves_the_ticket_once(inventory, new_seat):
    from concurrent.futures import ThreadPoolExecutor

    seat_id, seller, _ = _sold_seat(inventory, new_seat)
    buyer, key = _id(), f"transfer:{_id()}:move-ticket"
    with ThreadPoolExecutor(8) as pool:
        seats = list(pool.map(lambda _: _move(inventory, seat_id, seller, buyer, key), range(8)))
    assert {(s.owner_user_id, s.ticket_version) for s in seats} == {(buyer, 2)}


def test_a_second_transfer_needs_the_current_owner_and_bumps_the_version_again(inventory, new_seat, rpc_error):
    seat_id, seller, _ = _sold_seat(inventory, new_seat)
    buyer, third = _id(), _id()
    _move(inventory, seat_id, seller, buyer, f"transfer:{_id()}:move-ticket")
    back = _move(inventory, seat_id, buyer, seller, f"transfer:{_id()}:return-ticket")
    assert (back.owner_user_id, back.ticket_version) == (seller, 3)
    rpc_error(inventory.UpdateOwner, pb.UpdateOwnerRequest(seat_id=seat_id, expected_owner_id=buyer,
                                                           new_owner_id=third, change_key=f"t:{_id()}"),
              FAILED, "NOT_OWNER", 409)


def test_update_owner_needs_a_change_key(inventory, new_seat, rpc_error):
    seat_id, seller, _ = _sold_seat(inventory, new_seat)
    for key in ("", "k" * 201):
        rpc_error(inventory.UpdateOwner, pb.UpdateOwnerRequest(seat_id=seat_id, expected_owner_id=seller,
                                                               new_owner_id=_id(), change_key=key),
                  INVALID, "INVALID_INPUT", 400)


def test_update_owner_of_a_seat_that_is_only_held_is_not_owner(inventory, new_seat, rpc_error):
    seat_id, user = new_seat(), _id()
    _reserve(inventory, seat_id, user)
    rpc_error(inventory.UpdateOwner, pb.UpdateOwnerRequest(seat_id=seat_id, expected_owner_id=user,
                                                           new_owner_id=_id(), change_key="k"),
              FAILED, "NOT_OWNER", 409)


def test_list_tickets_shows_the_seats_a_user_owns_or_holds_live(inventory, new_seat, rpc_error):
    fan, other = _id(), _id()
    event_id = _id()
    owned = new_seat(event_id=event_id, section="A", number=2)
    _reserve(inventory, owned, fan, hold := _id())
    inventory.ConfirmSeat(pb.ConfirmSeatRequest(seat_id=owned, user_id=fan, hold_id=hold))
    held = new_seat(event_id=event_id, section="A", number=1)
    _reserve(inventory, held, fan)
    lapsed = new_seat(event_id=event_id, section="B", number=1)
    inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=lapsed, user_id=fan, hold_id=_id(), hold_seconds=1))
    _reserve(inventory, new_seat(event_id=event_id, section="A", number=3), other)
    time.sleep(1.2)
    seats = inventory.ListTickets(pb.ListTicketsRequest(user_id=fan)).seats
    assert [(s.seat_id, s.status) for s in seats] == [(held, pb.HELD), (owned, pb.SOLD)]
    assert inventory.ListTickets(pb.ListTicketsRequest(user_id=_id())).seats == []
    rpc_error(inventory.ListTickets, pb.ListTicketsRequest(user_id="me"), INVALID, "INVALID_INPUT", 400)


def test_verify_ticket_reports_status_owner_event_and_version(inventory, new_seat, rpc_error):
    event_id = _id()
    seat_id = new_seat(event_id=event_id, section="B", row="7", number=12, price=75)
    seat = inventory.VerifyTicket(pb.VerifyTicketRequest(seat_id=seat_id)).seat
    assert (seat.seat_id, seat.event_id, seat.section, seat.row, seat.number, seat.price, seat.status,
            seat.owner_user_id, seat.ticket_version) == (seat_id, event_id, "B", "7", 12, 75, pb.AVAILABLE, "", 1)
    rpc_error(inventory.VerifyTicket, pb.VerifyTicketRequest(seat_id=_id()), NOT_FOUND, "SEAT_NOT_FOUND", 404)


def test_list_seats_returns_the_seat_map_of_the_event_in_seat_order(inventory, new_seat):
    event_id = _id()
    positions = [("B", "1", 1), ("A", "10", 1), ("A", "2", 3), ("A", "2", 1)]
    ids = {position: new_seat(event_id=event_id, section=position[0], row=position[1], number=position[2])
           for position in positions}
    new_seat()  # another event's seat
    held = ids[("A", "2", 3)]
    _reserve(inventory, held)
    seats = inventory.ListSeats(pb.ListSeatsRequest(event_id=event_id)).seats
    assert [(s.section, s.row, s.number) for s in seats] == [("A", "2", 1), ("A", "2", 3), ("A", "10", 1),
                                                             ("B", "1", 1)]
    assert {s.seat_id: s.status for s in seats}[held] == pb.HELD
    assert list(inventory.ListSeats(pb.ListSeatsRequest(event_id=_id())).seats) == []


def test_mark_checked_in_checks_in_once_and_logs_the_duplicates(inventory, container, new_seat):
    seat_id, owner, _ = _sold_seat(inventory, new_seat)
    hall, scanner = _id(), _id()
    request = pb.MarkCheckedInRequest(seat_id=seat_id, hall_id=hall, scanner_user_id=scanner, holder_user_id=owner,
                                      ticket_version=1)
    first = inventory.MarkCheckedIn(request)
    assert (first.checked_in, first.result) == (True, "CHECKED_IN")
    assert (first.seat.status, first.seat.checked_in_hall_id, first.seat.owner_user_id) == \
        (pb.CHECKED_IN, hall, owner)
    assert first.seat.checked_in_at
    second = inventory.MarkCheckedIn(request)
    assert (second.checked_in, second.result) == (False, "DUPLICATE")
    assert (second.seat.checked_in_at, second.seat.checked_in_hall_id) == (first.seat.checked_in_at, hall)
    logs = _entry_logs(container, seat_id)
    assert [(r["result"], r["hall_id"], r["scanner_user_id"], r["ticket_version"]) for r in logs] == \
        [("CHECKED_IN", hall, scanner, 1), ("DUPLICATE", hall, scanner, 1)]
    assert hall in logs[1]["detail"]


def test_a_code_from_before_the_ticket_moved_checks_nobody_in_and_is_logged_invalid(inventory, container, new_seat):
    seat_id, seller, _ = _sold_seat(inventory, new_seat)
    buyer, hall = _id(), _id()
    _move(inventory, seat_id, seller, buyer, f"transfer:{_id()}:move-ticket")
    for holder, version in ((seller, 1), (buyer, 1), (seller, 2)):
        reply = inventory.MarkCheckedIn(pb.MarkCheckedInRequest(seat_id=seat_id, hall_id=hall, holder_user_id=holder,
                                                                ticket_version=version))
        assert (reply.checked_in, reply.result, reply.seat.status) == (False, "INVALID", pb.SOLD)
    won = inventory.MarkCheckedIn(pb.MarkCheckedInRequest(seat_id=seat_id, hall_id=hall, holder_user_id=buyer,
                                                          ticket_version=2))
    assert (won.checked_in, won.result) == (True, "CHECKED_IN")
    assert [(r["result"], r["ticket_version"]) for r in _entry_logs(container, seat_id)] == [
        ("INVALID", 1), ("INVALID", 1), ("INVALID", 2), ("CHECKED_IN", 2)]


def test_mark_checked_in_of_a_seat_that_is_not_paid_is_seat_unavailable(inventory, new_seat, rpc_error):
    for seat_id in (new_seat(), _reserve(inventory, new_seat()).seat_id):
        rpc_error(inventory.MarkCheckedIn, pb.MarkCheckedInRequest(seat_id=seat_id, hall_id=_id(),
                                                                   holder_user_id=_id(), ticket_version=1),
                  FAILED, "SEAT_UNAVAILABLE", 409)
    rpc_error(inventory.MarkCheckedIn, pb.MarkCheckedInRequest(seat_id=_id(), hall_id=_id(), holder_user_id=_id(),
                                                               ticket_version=1),
              NOT_FOUND, "SEAT_NOT_FOUND", 404)


def test_record_scan_appends_an_entry_log_row_even_for_an_unknown_seat(inventory, container):
    unknown = f"forged-{uuid.uuid4()}"
    reply = inventory.RecordScan(pb.RecordScanRequest(seat_id=unknown, hall_id=_id(), result="INVALID",
                                                      detail="bad signature", scanner_user_id=_id()))
    logs = _entry_logs(container, unknown)
    assert [(r["id"], r["result"], r["detail"], r["ticket_version"]) for r in logs] == [
        (reply.id, "INVALID", "bad signature", None)]
    expired = inventory.RecordScan(pb.RecordScanRequest(seat_id=unknown, result="EXPIRED", ticket_version=3))
    assert [(r["id"], r["ticket_version"]) for r in _entry_logs(container, unknown)][-1] == (expired.id, 3)
    assert logs[0]["scanned_at"] is not None


def test_calls_without_the_internal_credential_are_unauthenticated(grpc_server, new_seat):
    seat_id = new_seat()
    for call_metadata in ((), (("x-internal-token", "wrong"),)):
        with grpc.insecure_channel(grpc_server.target) as channel:
            stub = inventory_pb2_grpc.InventoryStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.ReserveSeat(pb.ReserveSeatRequest(seat_id=seat_id, user_id=_id(), hold_id=_id(),
                                                       hold_seconds=60), metadata=call_metadata, timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert caught.value.details().startswith("INTERNAL_CREDENTIAL_REQUIRED")


def test_health_service_reports_serving(grpc_server):
    assert grpc_server.health() == health_pb2.HealthCheckResponse.SERVING


def test_the_server_stops_gracefully_on_sigterm(start_server):
    server = start_server()
    assert server.stop() == 0
    assert "stopping gRPC server" in server.log()


def test_a_party_confirm_with_one_seat_not_this_holds_sells_none_of_them(inventory, new_seat, rpc_error,
                                                                          stored_seat):
    """All or nothing in one statement: two seats of the hold and one held by another hold — nothing is sold."""
    user, hold = _id(), _id()
    event = _id()
    mine, other = [new_seat(event, number=1), new_seat(event, number=2)], new_seat(event, number=3)
    inventory.ReserveSeat(pb.ReserveSeatRequest(seat_ids=mine, user_id=user, hold_id=hold, hold_seconds=60))
    _reserve(inventory, other, _id(), _id())
    rpc_error(inventory.ConfirmSeat, pb.ConfirmSeatRequest(seat_ids=[*mine, other], user_id=user, hold_id=hold),
              FAILED, "SEAT_UNAVAILABLE", 409)
    assert [stored_seat(s).status.value for s in (*mine, other)] == ["HELD", "HELD", "HELD"]
    sold = inventory.ConfirmSeat(pb.ConfirmSeatRequest(seat_ids=mine, user_id=user, hold_id=hold)).seats
    assert sorted(s.seat_id for s in sold) == sorted(mine) and {s.status for s in sold} == {pb.SOLD}
