from datetime import datetime, timedelta, timezone

import pytest

from order_service.domain.model import (ORDER_TRANSITIONS, CreateOrder, HoldExpired, InvalidTransition, Order,
                                        OrderStatus, PaymentState)
from order_service.service_layer import services
from trcommon.errors import NotFound
from trcontracts import orders

NOW = datetime(2030, 1, 2, 20, 0, tzinfo=timezone.utc)
LIVE = NOW + timedelta(minutes=5)
LAPSED = NOW - timedelta(seconds=1)


def order(status=OrderStatus.PENDING, payment_state=PaymentState.NONE, held_until=LIVE, **kw) -> Order:
    fields = dict(order_id="o1", user_id="u1", seat_id="s1", seat_ids=("s1",), event_id="e1", amount=50, status=status,
                  payment_state=payment_state, held_until=held_until, failure_reason=None, confirmed_at=None,
                  created_at=NOW - timedelta(minutes=1), updated_at=NOW - timedelta(minutes=1))
    fields.update(kw)
    return Order(**fields)


@pytest.mark.parametrize("current,to", [
    (OrderStatus.PENDING, OrderStatus.CONFIRMED),
    (OrderStatus.PENDING, OrderStatus.FAILED),
    (OrderStatus.CONFIRMED, OrderStatus.REFUNDED),
])
def test_allowed_order_transitions_change_the_status(current, to):
    assert order(current).transition(to, NOW).status == to


def test_pending_order_expires_only_when_its_hold_has_passed_and_no_charge_started():
    expired = order(held_until=LAPSED).transition(OrderStatus.EXPIRED, NOW)
    assert expired.status == OrderStatus.EXPIRED and expired.failure_reason == "hold expired"
    with pytest.raises(InvalidTransition, match="PENDING"):
        order(held_until=LIVE).transition(OrderStatus.EXPIRED, NOW)
    with pytest.raises(InvalidTransition, match="payment in progress"):
        order(held_until=LAPSED, payment_state=PaymentState.CHARGING).transition(OrderStatus.EXPIRED, NOW)


def test_a_pending_order_is_cancelled_only_while_no_charge_has_begun_and_then_cannot_be_paid():
    cancelled = order().transition(OrderStatus.CANCELLED, NOW, "cancelled by the fan")
    assert (cancelled.status, cancelled.failure_reason) == (OrderStatus.CANCELLED, "cancelled by the fan")
    with pytest.raises(InvalidTransition, match="payment in progress"):
        order(payment_state=PaymentState.CHARGING).transition(OrderStatus.CANCELLED, NOW)
    with pytest.raises(HoldExpired, match="CANCELLED"):
        cancelled.begin_payment(NOW)


def test_a_refund_begins_only_on_a_confirmed_order_and_ends_refunded_or_confirmed_again():
    refunding = order(OrderStatus.CONFIRMED, confirmed_at=LAPSED).begin_refund()
    assert refunding.status == OrderStatus.REFUNDING
    assert refunding.begin_refund() is refunding
    assert refunding.transition(OrderStatus.REFUNDED, NOW).status == OrderStatus.REFUNDED
    kept = refunding.transition(OrderStatus.CONFIRMED, NOW)
    assert (kept.status, kept.confirmed_at) == (OrderStatus.CONFIRMED, LAPSED)     # when it was bought, still
    for status in (OrderStatus.PENDING, OrderStatus.FAILED, OrderStatus.EXPIRED, OrderStatus.CANCELLED):
        with pytest.raises(InvalidTransition):
            order(status).begin_refund()


def test_a_hold_ending_exactly_now_has_passed():
    assert order(held_until=NOW).transition(OrderStatus.EXPIRED, NOW).status == OrderStatus.EXPIRED


@pytest.mark.parametrize("status", list(OrderStatus))
def test_moving_an_order_to_its_own_status_changes_nothing(status):
    o = order(status)
    assert o.transition(status, NOW) is o


def test_every_move_outside_the_table_is_refused_naming_the_current_status():
    for current in OrderStatus:
        for to in OrderStatus:
            if to == current or to in ORDER_TRANSITIONS.get(current, ()):
                continue
            with pytest.raises(InvalidTransition, match=current.value) as err:
                order(current, held_until=LAPSED).transition(to, NOW)
            assert err.value.status == 409 and err.value.code == "INVALID_TRANSITION"


def test_confirming_records_the_time_and_failing_records_the_reason():
    assert order().transition(OrderStatus.CONFIRMED, NOW).confirmed_at == NOW
    assert order().transition(OrderStatus.FAILED, NOW, "card declined").failure_reason == "card declined"


def test_begin_payment_marks_a_live_pending_order_charging():
    assert order().begin_payment(NOW).payment_state == PaymentState.CHARGING


def test_begin_payment_again_or_on_a_confirmed_order_changes_nothing():
    for o in (order(payment_state=PaymentState.CHARGING), order(OrderStatus.CONFIRMED, held_until=LAPSED)):
        assert o.begin_payment(NOW) is o


@pytest.mark.parametrize("o", [
    order(held_until=LAPSED),
    order(held_until=NOW),
    order(held_until=LAPSED, payment_state=PaymentState.CHARGING),
    order(OrderStatus.EXPIRED, held_until=LAPSED),
    order(OrderStatus.FAILED),
])
def test_begin_payment_on_a_lapsed_expired_or_failed_order_is_hold_expired(o):
    with pytest.raises(HoldExpired) as err:
        o.begin_payment(NOW)
    assert err.value.status == 410 and err.value.code == "HOLD_EXPIRED"


def test_begin_payment_on_a_refunded_order_is_refused():
    with pytest.raises(InvalidTransition, match="REFUNDED"):
        order(OrderStatus.REFUNDED).begin_payment(NOW)


def test_only_a_lapsed_pending_order_without_a_charge_counts_as_lapsed_unpaid():
    assert order(held_until=LAPSED).lapsed_unpaid(NOW)
    assert not order(held_until=LIVE).lapsed_unpaid(NOW)
    assert not order(held_until=LAPSED, payment_state=PaymentState.CHARGING).lapsed_unpaid(NOW)
    assert not order(OrderStatus.CONFIRMED, held_until=LAPSED).lapsed_unpaid(NOW)


def test_a_repeated_create_matches_only_with_identical_details():
    o = order()
    same = CreateOrder("o1", "u1", ("s1",), "e1", 50, LIVE.astimezone(timezone(timedelta(hours=8))))
    assert o.matches(same)
    assert not o.matches(CreateOrder("o1", "u2", ("s1",), "e1", 50, LIVE))
    assert not o.matches(CreateOrder("o1", "u1", ("s1",), "e1", 51, LIVE))
    assert not o.matches(CreateOrder("o1", "u1", ("s1",), "e1", 50, LIVE + timedelta(microseconds=1)))
    assert not o.matches(CreateOrder("o1", "u1", ("s1", "s2"), "e1", 50, LIVE))


def test_the_order_reply_writes_times_as_utc_rfc3339():
    o = order(held_until=LIVE.astimezone(timezone(timedelta(hours=8))))
    d = orders.Order.model_validate(o, from_attributes=True).model_dump(mode="json")
    assert d["held_until"] == "2030-01-02T20:05:00+00:00"
    assert d["status"] == "PENDING" and d["payment_state"] == "NONE" and d["confirmed_at"] is None


def test_malformed_order_id_is_not_found_without_touching_the_database():
    def no_db():
        raise AssertionError("the database must not be queried for a malformed id")

    for call in (lambda: services.get_order(no_db, "../etc/passwd"),
                 lambda: services.begin_payment(no_db, "nope", "u1"),
                 lambda: services.transition_order(no_db, "nope", OrderStatus.FAILED, None)):
        with pytest.raises(NotFound) as err:
            call()
        assert err.value.code == "ORDER_NOT_FOUND"
