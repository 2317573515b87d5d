"""The organizer's RPCs through the real gRPC server process and PostgreSQL: seat grids, opening and closing a
sale, prices, and the sales and gate reports."""
import time
import uuid
from datetime import datetime

import grpc
import pytest
import sqlalchemy as sa
from inventory_service.adapters.tables import entry_logs, seats
from trcommon.grpc_support import app_error_from_rpc
from trcommon.testing import run_together
from trproto import inventory_pb2 as pb

ABORTED, NOT_FOUND, FAILED, INVALID = (grpc.StatusCode.ABORTED, grpc.StatusCode.NOT_FOUND,
                                       grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)


def _id() -> str:
    return str(uuid.uuid4())


def _section(name="A", price=50, rows=("1", "2"), seats_per_row=3):
    return pb.GridSection(section=name, price=price, rows=list(rows), seats_per_row=seats_per_row)


def _grid(inventory, event_id, sections, on_sale=True):
    return inventory.CreateSeatGrid(pb.CreateSeatGridRequest(event_id=event_id, sections=sections, on_sale=on_sale))


def _seats(inventory, event_id):
    return list(inventory.ListSeats(pb.ListSeatsRequest(event_id=event_id)).seats)


def _stored(container, event_id):
    with container.engine.connect() as conn:
        return conn.execute(sa.select(seats).where(seats.c.event_id == event_id)).mappings().all()


def _reserve(inventory, seat_id, user_id=None, hold_id=None, hold_seconds=60):
    return inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=seat_id, user_id=user_id or _id(),
                                                       hold_id=hold_id or _id(), hold_seconds=hold_seconds))


def _sell(inventory, seat_id):
    user, hold = _id(), _id()
    _reserve(inventory, seat_id, user, hold)
    inventory.ConfirmSeat(pb.ConfirmSeatRequest(seat_id=seat_id, user_id=user, hold_id=hold))
    return user


# --- CreateSeatGrid -----------------------------------------------------------------------------------------------

def test_a_20_by_50_grid_is_created_in_one_call_with_every_position_once(inventory, container):
    event = _id()
    rows = [f"R{i}" for i in range(1, 21)]
    started = time.monotonic()
    reply = _grid(inventory, event, [_section("Floor", 120, rows, 50)])
    elapsed = time.monotonic() - started
    assert (reply.created, reply.total) == (1000, 1000)
    listed = _seats(inventory, event)
    assert len(listed) == 1000
    assert {(s.row, s.number) for s in listed} == {(r, n) for r in rows for n in range(1, 51)}
    assert {s.price for s in listed} == {120} and {s.status for s in listed} == {pb.AVAILABLE}
    assert len({s.seat_id for s in listed}) == 1000
    assert elapsed < 5, elapsed


def test_the_largest_grid_of_20000_seats_is_created_fast(inventory):
    event = _id()
    sections = [_section(f"S{i}", 10 * i, [f"{r}" for r in range(1, 201)], 50) for i in range(1, 3)]
    started = time.monotonic()
    reply = _grid(inventory, event, sections)
    assert (reply.created, reply.total) == (20_000, 20_000)
    assert time.monotonic() - started < 10


def test_the_same_grid_again_answers_created_zero_and_another_grid_is_grid_exists(inventory, rpc_error):
    event = _id()
    sections = [_section("A", 50), _section("B", 80, ("X",), 4)]
    assert (_grid(inventory, event, sections).created, _grid(inventory, event, sections).created) == (6 + 4, 0)
    assert _grid(inventory, event, sections).total == 10
    for other in ([_section("A", 51), _section("B", 80, ("X",), 4)],    # another price
                  [_section("A", 50)],                                  # a section fewer
                  [_section("A", 50), _section("B", 80, ("X",), 5)]):   # one seat more
        exc = rpc_error(inventory.CreateSeatGrid, pb.CreateSeatGridRequest(event_id=event, sections=other,
                                                                           on_sale=True),
                        FAILED, "GRID_EXISTS", 409)
        assert "10 seats" in exc.details()
    assert len(_seats(inventory, event)) == 10


def test_two_concurrent_identical_grid_calls_create_one_grid(inventory, container):
    event = _id()
    sections = [_section("A", 50, [str(r) for r in range(1, 21)], 50)]
    replies = run_together([lambda: _grid(inventory, event, sections) for _ in range(2)])
    assert sorted((r.created, r.total) for r in replies) == [(0, 1000), (1000, 1000)], replies
    assert len(_stored(container, event)) == 1000


def test_a_grid_can_be_created_off_sale(inventory, container, rpc_error):
    event = _id()
    _grid(inventory, event, [_section()], on_sale=False)
    assert {r["on_sale"] for r in _stored(container, event)} == {False}
    seat = _seats(inventory, event)[0].seat_id
    rpc_error(inventory.ReserveSeat, pb.ReserveSeatRequest(seat_id=seat, user_id=_id(), hold_id=_id(),
                                                           hold_seconds=60), FAILED, "EVENT_NOT_ON_SALE", 409)


@pytest.mark.parametrize("sections, message", [
    ([], "sections"),
    ([_section(f"S{i}", rows=("1",), seats_per_row=1) for i in range(51)], "sections"),
    ([_section("A"), _section("A")], "section names must be distinct"),
    ([_section("")], "section"),
    ([_section("x" * 41)], "section"),
    ([_section(" A")], "spaces"),
    ([_section(rows=())], "rows"),
    ([_section(rows=[str(i) for i in range(201)])], "rows"),
    ([_section(rows=("1", "1"))], "row labels must be distinct"),
    ([_section(rows=("",))], "rows"),
    ([_section(rows=("123456789",))], "rows"),
    ([_section(seats_per_row=0)], "seats_per_row"),
    ([_section(seats_per_row=501)], "seats_per_row"),
    ([_section(price=-1)], "price"),
    ([_section(price=100_000_001)], "price"),
    ([_section(f"S{i}", rows=[str(r) for r in range(1, 101)], seats_per_row=201) for i in range(1, 3)],
     "at most 20000"),
])
def test_a_malformed_grid_is_invalid_argument_and_creates_nothing(inventory, container, rpc_error, sections,
                                                                  message):
    event = _id()
    exc = rpc_error(inventory.CreateSeatGrid, pb.CreateSeatGridRequest(event_id=event, sections=sections,
                                                                       on_sale=True),
                    INVALID, "INVALID_INPUT", 400)
    assert message in exc.details()
    assert _stored(container, event) == []


def test_a_grid_for_a_malformed_event_id_is_invalid_argument(inventory, rpc_error):
    rpc_error(inventory.CreateSeatGrid, pb.CreateSeatGridRequest(event_id="nope", sections=[_section()]),
              INVALID, "INVALID_INPUT", 400)


# --- SetEventSale -------------------------------------------------------------------------------------------------

def test_closing_a_sale_ends_every_hold_and_refuses_new_holds_and_confirms(inventory, container, rpc_error):
    event = _id()
    _grid(inventory, event, [_section(rows=("1",), seats_per_row=4)])
    s1, s2, s3, s4 = [s.seat_id for s in _seats(inventory, event)]
    user, hold = _id(), _id()
    _reserve(inventory, s1, user, hold)
    _sell(inventory, s2)
    reply = inventory.SetEventSale(pb.SetEventSaleRequest(event_id=event, on_sale=False))
    assert (reply.changed, reply.released) == (4, 1)
    stored = {r["seat_id"]: r for r in _stored(container, event)}
    assert stored[s1]["status"] == "AVAILABLE" and stored[s1]["hold_id"] is None
    assert stored[s1]["held_until"] is None and stored[s1]["held_by_user_id"] is None
    assert stored[s2]["status"] == "SOLD"           # a ticket stays the fan's: the refund is the saga's
    assert {r["on_sale"] for r in stored.values()} == {False}
    rpc_error(inventory.ConfirmSeat, pb.ConfirmSeatRequest(seat_id=s1, user_id=user, hold_id=hold),
              FAILED, "SEAT_UNAVAILABLE", 409)
    rpc_error(inventory.ReserveSeat, pb.ReserveSeatRequest(seat_id=s3, user_id=_id(), hold_id=_id(),
                                                           hold_seconds=60), FAILED, "EVENT_NOT_ON_SALE", 409)
    rpc_error(inventory.ReserveSeat, pb.ReserveSeatRequest(seat_ids=[s3, s4], user_id=_id(), hold_id=_id(),
                                                           hold_seconds=60), FAILED, "EVENT_NOT_ON_SALE", 409)
    # Idempotent: closing again changes nothing; opening puts the seats back on sale.
    again = inventory.SetEventSale(pb.SetEventSaleRequest(event_id=event, on_sale=False))
    assert (again.changed, again.released) == (0, 0)
    opened = inventory.SetEventSale(pb.SetEventSaleRequest(event_id=event, on_sale=True))
    assert (opened.changed, opened.released) == (4, 0)
    assert _reserve(inventory, s3).seat.status == pb.HELD
    assert inventory.SetEventSale(pb.SetEventSaleRequest(event_id=event, on_sale=True)).changed == 0


def test_closing_the_sale_of_an_event_without_seats_changes_nothing(inventory, rpc_error):
    reply = inventory.SetEventSale(pb.SetEventSaleRequest(event_id=_id(), on_sale=False))
    assert (reply.changed, reply.released) == (0, 0)
    rpc_error(inventory.SetEventSale, pb.SetEventSaleRequest(event_id="x"), INVALID, "INVALID_INPUT", 400)


def test_closing_one_event_leaves_another_event_on_sale(inventory):
    closed, other = _id(), _id()
    _grid(inventory, closed, [_section()])
    _grid(inventory, other, [_section()])
    inventory.SetEventSale(pb.SetEventSaleRequest(event_id=closed, on_sale=False))
    assert _reserve(inventory, _seats(inventory, other)[0].seat_id).seat.status == pb.HELD


@pytest.mark.parametrize("round_", range(3))
def test_twenty_reservations_racing_a_sale_closing_leave_no_seat_held(inventory, container, round_):
    event = _id()
    _grid(inventory, event, [_section(rows=("1", "2"), seats_per_row=10)])
    seat_ids = [s.seat_id for s in _seats(inventory, event)]
    calls = [lambda s=s: _reserve(inventory, s) for s in seat_ids]
    calls.insert(round_ * 7, lambda: inventory.SetEventSale(pb.SetEventSaleRequest(event_id=event, on_sale=False)))
    results = run_together(calls)
    closing = results.pop(round_ * 7)
    assert isinstance(closing, pb.SetEventSaleReply), closing
    succeeded = [r for r in results if isinstance(r, pb.SeatReply)]
    refused = [app_error_from_rpc(r) for r in results if isinstance(r, grpc.RpcError)]
    assert len(succeeded) + len(refused) == 20, results
    assert {e.code for e in refused} <= {"EVENT_NOT_ON_SALE", "SEAT_UNAVAILABLE"}, [e.message for e in refused]
    # Every hold that was granted had been granted before the closing ended it: the closing released all of them.
    assert closing.released == len(succeeded)
    assert closing.changed == 20
    stored = _stored(container, event)
    assert [r for r in stored if r["status"] != "AVAILABLE" or r["hold_id"] is not None] == []
    assert {r["on_sale"] for r in stored} == {False}


# --- UpdatePrices -------------------------------------------------------------------------------------------------

def test_prices_change_only_for_seats_not_taken(inventory, container, rpc_error):
    event = _id()
    _grid(inventory, event, [_section("A", 50, ("1",), 4), _section("B", 70, ("1",), 2)])
    by_place = {(s.section, s.number): s.seat_id for s in _seats(inventory, event)}
    held, sold, lapsed = by_place["A", 1], by_place["A", 2], by_place["A", 3]
    _reserve(inventory, held)
    _sell(inventory, sold)
    _reserve(inventory, lapsed, hold_seconds=1)
    time.sleep(1.2)
    assert (lambda r: (r.updated, r.skipped))(inventory.UpdatePrices(pb.UpdatePricesRequest(
        event_id=event, price=60, section="A"))) == (2, 2)
    prices = {(r["section"], r["number"]): r["price"] for r in _stored(container, event)}
    assert prices == {("A", 1): 50, ("A", 2): 50, ("A", 3): 60, ("A", 4): 60, ("B", 1): 70, ("B", 2): 70}
    reply = inventory.UpdatePrices(pb.UpdatePricesRequest(event_id=event, price=0))
    assert (reply.updated, reply.skipped) == (4, 2)
    reply = inventory.UpdatePrices(pb.UpdatePricesRequest(event_id=event, price=99, seat_ids=[by_place["B", 1], sold]))
    assert (reply.updated, reply.skipped) == (1, 1)
    prices = {(r["section"], r["number"]): r["price"] for r in _stored(container, event)}
    assert prices[("B", 1)] == 99 and prices[("B", 2)] == 0 and prices[("A", 2)] == 50
    unknown_section = inventory.UpdatePrices(pb.UpdatePricesRequest(event_id=event, price=5, section="Z"))
    assert (unknown_section.updated, unknown_section.skipped) == (0, 0)


def test_prices_for_seats_not_of_the_event_change_nothing_and_name_them(inventory, container, rpc_error):
    event, other = _id(), _id()
    _grid(inventory, event, [_section()])
    _grid(inventory, other, [_section()])
    mine, foreign, unknown = _seats(inventory, event)[0].seat_id, _seats(inventory, other)[0].seat_id, _id()
    exc = rpc_error(inventory.UpdatePrices, pb.UpdatePricesRequest(event_id=event, price=1,
                                                                   seat_ids=[mine, foreign, unknown]),
                    NOT_FOUND, "SEAT_NOT_FOUND", 404)
    assert app_error_from_rpc(exc).details == {"seat_ids": sorted([foreign, unknown])}
    assert {r["price"] for r in _stored(container, event)} == {50}


@pytest.mark.parametrize("request_", [
    pb.UpdatePricesRequest(event_id="x", price=1),
    pb.UpdatePricesRequest(event_id=str(uuid.uuid4()), price=-1),
    pb.UpdatePricesRequest(event_id=str(uuid.uuid4()), price=100_000_001),
    pb.UpdatePricesRequest(event_id=str(uuid.uuid4()), price=1, section=""),
    pb.UpdatePricesRequest(event_id=str(uuid.uuid4()), price=1, seat_ids=["nope"]),
])
def test_malformed_price_updates_are_invalid_argument(inventory, rpc_error, request_):
    rpc_error(inventory.UpdatePrices, request_, INVALID, "INVALID_INPUT", 400)


# --- reports ------------------------------------------------------------------------------------------------------

def test_the_sales_report_counts_seats_by_status_and_face_value_by_section(inventory):
    event = _id()
    _grid(inventory, event, [_section("A", 50, ("1",), 4), _section("B", 80, ("1",), 3)])
    by_place = {(s.section, s.number): s.seat_id for s in _seats(inventory, event)}
    _reserve(inventory, by_place["A", 1])
    _reserve(inventory, by_place["A", 2], hold_seconds=1)
    owner = _sell(inventory, by_place["B", 1])
    _sell(inventory, by_place["B", 2])
    inventory.MarkCheckedIn(pb.MarkCheckedInRequest(seat_id=by_place["B", 1], hall_id=_id(), holder_user_id=owner,
                                                    ticket_version=1))
    inventory.UpdatePrices(pb.UpdatePricesRequest(event_id=event, price=90, seat_ids=[by_place["B", 3]]))
    time.sleep(1.2)
    r = inventory.SalesReport(pb.SalesReportRequest(event_id=event))
    assert (r.available, r.held, r.sold, r.checked_in, r.total, r.face_value_sold) == (4, 1, 1, 1, 7, 160)
    assert [(s.section, s.total, s.sold, s.checked_in, s.price_min, s.price_max, s.face_value_sold)
            for s in r.sections] == [("A", 4, 0, 0, 50, 50, 0), ("B", 3, 1, 1, 80, 90, 160)]
    empty = inventory.SalesReport(pb.SalesReportRequest(event_id=_id()))
    assert (empty.total, list(empty.sections)) == (0, [])


def test_the_gate_report_counts_scans_by_result_and_hall_and_check_ins_by_time(inventory, container, rpc_error):
    event = _id()
    _grid(inventory, event, [_section("A", 10, ("1",), 5)])
    seat_ids = [s.seat_id for s in _seats(inventory, event)]
    hall_1, hall_2 = sorted([_id(), _id()])
    owners = [_sell(inventory, s) for s in seat_ids[:3]]
    for seat_id, owner, hall in zip(seat_ids, owners, (hall_1, hall_1, hall_2)):
        inventory.MarkCheckedIn(pb.MarkCheckedInRequest(seat_id=seat_id, hall_id=hall, holder_user_id=owner,
                                                        ticket_version=1))
    inventory.MarkCheckedIn(pb.MarkCheckedInRequest(seat_id=seat_ids[0], hall_id=hall_1, holder_user_id=owners[0],
                                                    ticket_version=1))                         # DUPLICATE
    inventory.RecordScan(pb.RecordScanRequest(seat_id=seat_ids[4], hall_id=hall_2, result="UNPAID"))
    inventory.RecordScan(pb.RecordScanRequest(seat_id="forged", hall_id=hall_2, result="NOT_FOUND"))  # no event
    # The three check-ins in two 5-minute buckets: two a minute past the hour, one an hour before.
    with container.engine.begin() as conn:
        for seat_id, at in ((seat_ids[0], "1 minute"), (seat_ids[1], "2 minutes"), (seat_ids[2], "-1 hour")):
            conn.execute(entry_logs.update().where(entry_logs.c.seat_id == seat_id,
                                                   entry_logs.c.result == "CHECKED_IN")
                         .values(scanned_at=sa.text(f"date_trunc('hour', now()) + interval '{at}'")))
    r = inventory.GateReport(pb.GateReportRequest(event_id=event, bucket_seconds=300, limit=10))
    assert {c.result: c.count for c in r.by_result} == {"CHECKED_IN": 3, "DUPLICATE": 1, "UNPAID": 1}
    assert [(c.hall_id, c.result, c.count) for c in r.by_hall] == [
        (hall_1, "CHECKED_IN", 2), (hall_1, "DUPLICATE", 1), (hall_2, "CHECKED_IN", 1), (hall_2, "UNPAID", 1)]
    assert r.total_buckets == 2
    starts = [datetime.fromisoformat(b.bucket_start) for b in r.check_ins]
    assert [b.count for b in r.check_ins] == [1, 2] and starts == sorted(starts)
    assert all(s.timestamp() % 300 == 0 for s in starts)
    page = inventory.GateReport(pb.GateReportRequest(event_id=event, bucket_seconds=300, limit=1, offset=1))
    assert [b.count for b in page.check_ins] == [2] and page.total_buckets == 2
    beyond = inventory.GateReport(pb.GateReportRequest(event_id=event, limit=1, offset=5))
    assert (list(beyond.check_ins), beyond.total_buckets) == ([], 2)
    default = inventory.GateReport(pb.GateReportRequest(event_id=event))    # 300 s buckets, 100 a page
    assert [b.count for b in default.check_ins] == [1, 2]
    day = inventory.GateReport(pb.GateReportRequest(event_id=event, bucket_seconds=86400))
    assert sum(b.count for b in day.check_ins) == 3


@pytest.mark.parametrize("request_", [
    pb.GateReportRequest(event_id="x"),
    pb.GateReportRequest(event_id=str(uuid.uuid4()), bucket_seconds=59),
    pb.GateReportRequest(event_id=str(uuid.uuid4()), bucket_seconds=86401),
    pb.GateReportRequest(event_id=str(uuid.uuid4()), limit=501),
    pb.GateReportRequest(event_id=str(uuid.uuid4()), limit=-1),
    pb.GateReportRequest(event_id=str(uuid.uuid4()), offset=-1),
])
def test_malformed_gate_report_requests_are_invalid_argument(inventory, rpc_error, request_):
    rpc_error(inventory.GateReport, request_, INVALID, "INVALID_INPUT", 400)


def test_a_sales_report_for_a_malformed_event_id_is_invalid_argument(inventory, rpc_error):
    rpc_error(inventory.SalesReport, pb.SalesReportRequest(event_id="x"), INVALID, "INVALID_INPUT", 400)
