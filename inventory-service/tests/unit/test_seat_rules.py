from dataclasses import replace
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from inventory_service.domain.exceptions import (HoldExpired, NotOwner, SeatLocked, SeatNotFound,
                                                 SeatsNotInOneEvent, SeatUnavailable, TooManyHolds)
from inventory_service.domain.model import (HoldReleased, ScanResult, Seat, SeatStatus,
                                           hold_cap_reached, hold_seats, lock_order)

NOW = datetime(2030, 1, 1, 20, 0, tzinfo=timezone.utc)
USER, OTHER = "user-1", "user-2"


def _seat(**state) -> Seat:
    return Seat("s1", "e1", "A", "1", 1, 50, **state)


def _held(by=USER, hold="h1", until=NOW + timedelta(seconds=60)) -> Seat:
    return _seat(status=SeatStatus.HELD, held_by_user_id=by, hold_id=hold, held_until=until)


def _sold(owner=USER, hold="h1") -> Seat:
    return _seat(status=SeatStatus.SOLD, owner_user_id=owner, hold_id=hold)


def test_holding_an_available_seat_sets_the_hold_until_now_plus_its_seconds():
    seat = _seat().hold(USER, "h1", NOW, 300)
    assert seat.status is SeatStatus.HELD
    assert (seat.held_by_user_id, seat.hold_id, seat.held_until) == (USER, "h1", NOW + timedelta(seconds=300))


def test_a_seat_held_by_a_live_hold_cannot_be_held_again():
    with pytest.raises(SeatUnavailable):
        _held(by=OTHER, hold="h0").hold(USER, "h1", NOW, 300)


def test_a_lapsed_hold_counts_as_available_and_can_be_taken_over():
    lapsed = _held(by=OTHER, hold="h0", until=NOW)
    assert lapsed.is_free(NOW)
    seat = lapsed.hold(USER, "h1", NOW, 60)
    assert (seat.held_by_user_id, seat.hold_id) == (USER, "h1")


def test_a_held_seat_is_due_in_the_time_left_to_its_hold_and_0_once_lapsed_other_seats_are_not_held():
    assert _held(until=NOW + timedelta(seconds=1.5)).hold_due_in(NOW) == 1.5
    assert _held(until=NOW).hold_due_in(NOW) == 0.0
    assert _held(until=NOW - timedelta(seconds=3)).hold_due_in(NOW) == 0.0
    for seat in (_seat(), _sold()):
        assert seat.hold_due_in(NOW) is None


def test_sold_and_checked_in_seats_cannot_be_held():
    checked_in = replace(_sold(), status=SeatStatus.CHECKED_IN, checked_in_at=NOW, checked_in_hall_id="hall")
    for seat in (_sold(), checked_in):
        with pytest.raises(SeatUnavailable):
            seat.hold(USER, "h9", NOW, 60)


def test_a_lapsed_hold_is_shown_as_available_with_empty_hold_fields():
    seen = _held(until=NOW - timedelta(seconds=1)).as_seen_at(NOW)
    assert seen.status is SeatStatus.AVAILABLE
    assert (seen.held_by_user_id, seen.hold_id, seen.held_until) == (None, None, None)
    live = _held()
    assert live.as_seen_at(NOW) is live


def test_confirming_a_live_hold_sells_the_seat_to_its_holder_and_keeps_the_order_id():
    seat = _held().confirm(USER, "h1", NOW)
    assert seat.status is SeatStatus.SOLD
    assert (seat.owner_user_id, seat.hold_id, seat.held_until, seat.held_by_user_id) == (USER, "h1", None, None)


def test_confirming_again_returns_the_sold_seat_unchanged():
    sold = _sold()
    assert sold.confirm(USER, "h1", NOW) is sold


def test_confirming_a_lapsed_hold_is_hold_expired():
    with pytest.raises(HoldExpired) as caught:
        _held(until=NOW).confirm(USER, "h1", NOW)
    assert (caught.value.code, caught.value.status) == ("HOLD_EXPIRED", 410)


def test_confirming_with_another_hold_or_user_is_seat_unavailable():
    for seat, user, hold in ((_held(), USER, "h2"), (_held(), OTHER, "h1"), (_seat(), USER, "h1"),
                             (_sold(owner=OTHER, hold="h0"), USER, "h1")):
        with pytest.raises(SeatUnavailable):
            seat.confirm(user, hold, NOW)


def test_transfer_moves_ownership_and_bumps_the_ticket_version():
    seat = _sold().transfer(USER, OTHER)
    assert (seat.owner_user_id, seat.ticket_version, seat.status) == (OTHER, 2, SeatStatus.SOLD)


def test_transfer_from_someone_who_is_not_the_owner_is_not_owner():
    with pytest.raises(NotOwner) as caught:
        _sold(owner=OTHER).transfer(USER, "user-3")
    assert (caught.value.code, caught.value.status) == ("NOT_OWNER", 409)
    with pytest.raises(NotOwner):
        _held().transfer(USER, OTHER)


def test_a_losing_check_in_is_a_duplicate_only_when_the_seat_is_checked_in():
    checked_in = replace(_sold(), status=SeatStatus.CHECKED_IN, checked_in_at=NOW, checked_in_hall_id="hall")
    assert checked_in.refuse_check_in(USER, 1) is ScanResult.DUPLICATE
    for seat in (_seat(), _held()):
        with pytest.raises(SeatUnavailable):
            seat.refuse_check_in(USER, 1)


def test_a_code_of_another_holder_or_an_older_version_is_invalid_even_once_checked_in():
    moved = _sold().transfer(USER, OTHER)
    for seat in (moved, replace(moved, status=SeatStatus.CHECKED_IN, checked_in_at=NOW, checked_in_hall_id="h")):
        assert seat.refuse_check_in(USER, 1) is ScanResult.INVALID      # the seller's code from before
        assert seat.refuse_check_in(OTHER, 1) is ScanResult.INVALID     # the right holder, an older version
    in_now = replace(moved, status=SeatStatus.CHECKED_IN, checked_in_at=NOW, checked_in_hall_id="h")
    assert in_now.refuse_check_in(OTHER, 2) is ScanResult.DUPLICATE     # the buyer's own code, scanned again


def test_the_hold_cap_refusal_is_a_429_that_says_when_the_first_live_hold_ends():
    refusal = hold_cap_reached(8, timedelta(seconds=41.2))
    assert isinstance(refusal, TooManyHolds)
    assert (refusal.code, refusal.status, refusal.retry_after) == ("TOO_MANY_HOLDS", 429, 42)
    assert "8 seats" in refusal.message
    # no live hold left (they lapsed since the count): retry at once, never "in 0 seconds"
    assert hold_cap_reached(8, timedelta()).retry_after == 1


def _at(seat_id: str, event: str = "e1", **state) -> Seat:
    return Seat(seat_id, event, "A", "1", int(seat_id[1:]), 50, **state)


def test_the_lock_order_is_ascending_seat_id_whatever_order_the_seats_were_asked_in():
    assert lock_order(["s3", "s1", "s2"]) == lock_order(["s2", "s3", "s1"]) == ["s1", "s2", "s3"]


def test_a_party_hold_holds_every_seat_under_one_hold_id_and_one_deadline():
    held = hold_seats([_at("s1"), _at("s2"), _at("s3")], ["s1", "s2", "s3"], USER, "h1", NOW, 300)
    assert [s.seat_id for s in held] == ["s1", "s2", "s3"]
    assert {(s.status, s.held_by_user_id, s.hold_id, s.held_until) for s in held} == {
        (SeatStatus.HELD, USER, "h1", NOW + timedelta(seconds=300))}


def test_a_party_hold_with_one_seat_taken_fails_whole_and_names_the_taken_seats():
    taken = _at("s2", status=SeatStatus.SOLD, owner_user_id=OTHER, hold_id="h0")
    lapsed = _at("s3", status=SeatStatus.HELD, held_by_user_id=OTHER, hold_id="h9", held_until=NOW)
    with pytest.raises(SeatUnavailable) as caught:
        hold_seats([_at("s1"), taken, lapsed], ["s1", "s2", "s3"], USER, "h1", NOW, 300)
    assert caught.value.status == 409
    assert caught.value.details == {"seat_ids": ["s2"]}          # the lapsed hold's seat counts as available


def test_a_party_hold_with_a_missing_seat_fails_whole_and_names_it():
    with pytest.raises(SeatNotFound) as caught:
        hold_seats([_at("s1")], ["s1", "s7"], USER, "h1", NOW, 300)
    assert (caught.value.status, caught.value.details) == (404, {"seat_ids": ["s7"]})


def test_a_party_hold_across_two_events_is_refused():
    with pytest.raises(SeatsNotInOneEvent) as caught:
        hold_seats([_at("s1"), _at("s2", event="e2")], ["s1", "s2"], USER, "h1", NOW, 300)
    assert (caught.value.code, caught.value.status) == ("SEATS_NOT_IN_ONE_EVENT", 400)


def test_a_repeated_party_hold_by_the_same_hold_changes_nothing():
    mine = [_at(i, status=SeatStatus.HELD, held_by_user_id=USER, hold_id="h1", held_until=NOW + timedelta(seconds=9))
            for i in ("s1", "s2")]
    assert hold_seats(mine, ["s1", "s2"], USER, "h1", NOW, 300) is None
    with pytest.raises(SeatUnavailable):    # another hold id of the same fan is another hold
        hold_seats(mine, ["s1", "s2"], USER, "h2", NOW, 300)


def test_a_capped_hold_says_in_whole_seconds_when_the_first_live_hold_ends():
    assert hold_cap_reached(8, timedelta(seconds=2.1)).retry_after == 3
    assert hold_cap_reached(8, timedelta(milliseconds=10)).retry_after == 1
    assert hold_cap_reached(8).retry_after is None


def test_a_release_reports_how_late_it_was():
    released = HoldReleased(_seat(), "h1", NOW, NOW + timedelta(milliseconds=250))
    assert released.late_seconds == pytest.approx(0.25)


def test_seat_busy_is_seat_unavailable_and_travels_as_aborted_over_grpc():
    from trcommon.grpc_support import grpc_status_for

    err = SeatLocked()
    assert (err.code, err.status, err.message) == ("SEAT_UNAVAILABLE", 409, "seat busy")
    assert grpc_status_for(err) == grpc.StatusCode.ABORTED
    assert grpc_status_for(SeatUnavailable("sold")) == grpc.StatusCode.FAILED_PRECONDITION


def test_a_refund_takes_a_ticket_back_only_while_its_buyer_still_owns_it_unused():
    from inventory_service.domain.exceptions import SeatCheckedIn

    sold = Seat("s1", "e1", "A", "1", 1, 50, status=SeatStatus.SOLD, hold_id="o1", owner_user_id="u1",
                ticket_version=2)
    back = sold.take_back("u1", "o1")
    assert (back.status, back.owner_user_id, back.hold_id, back.ticket_version) == (SeatStatus.AVAILABLE, None,
                                                                                    None, 3)
    with pytest.raises(SeatCheckedIn):
        replace(sold, status=SeatStatus.CHECKED_IN).take_back("u1", "o1")
    with pytest.raises(NotOwner):
        replace(sold, owner_user_id="u2").take_back("u1", "o1")       # transferred away
    with pytest.raises(NotOwner):
        sold.take_back("u1", "o2")                                    # sold under another order
    with pytest.raises(NotOwner):
        back.take_back("u1", "o1")                                    # returned already


def test_a_grid_is_every_row_of_every_section_numbered_from_one_at_its_sections_price():
    from inventory_service.domain.model import GridSection, grid_positions

    positions = grid_positions([GridSection("A", 10, ("1", "2"), 2), GridSection("B", 20, ("X",), 3)])
    assert positions == [("A", "1", 1, 10), ("A", "1", 2, 10), ("A", "2", 1, 10), ("A", "2", 2, 10),
                         ("B", "X", 1, 20), ("B", "X", 2, 20), ("B", "X", 3, 20)]
