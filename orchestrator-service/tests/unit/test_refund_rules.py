"""The refund saga's decisions from every order state, through the shared decision function with the real steps."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator_service.domain.refund import (STEPS, OrderNotRefundable, RefundCutoffPassed, check_refundable,
                                                final_status, refund_state, seat_kept)
from orchestrator_service.service_layer.refunds import REFUND
from orchestrator_service.service_layer.sagas import SAGAS
from trcommon.errors import AppError
from trcommon.saga import DONE, WAIT, Begin, Fail, Finish, Outcome, Run, advance, next_action
from trcontracts.orders import Order

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
DAY = 24 * 3600


def order(status="CONFIRMED") -> Order:
    return Order(order_id="o1", user_id="u1", seat_id="s1", seat_ids=["s1", "s2"], event_id="e1", amount=90,
                 status=status, payment_state="CHARGING", held_until=NOW, failure_reason=None, confirmed_at=NOW,
                 created_at=NOW, updated_at=NOW)


def test_the_step_list_takes_the_seats_back_before_the_credits_under_the_order_keys():
    assert tuple(s.name for s in REFUND.steps) == STEPS == ("take-back", "refund")
    assert REFUND.key("o1", "refund") == "order:o1:refund"     # the purchase saga's compensation uses the same
    assert REFUND.failpoints() == ("refund:take-back:begun", "refund:take-back", "refund:refund")
    assert REFUND in SAGAS


def test_a_request_begins_then_runs_both_steps_and_finishes_refunded():
    state = replace(refund_state(order()), resuming="take-back")
    assert next_action(REFUND, state) == Begin(0)
    state = replace(refund_state(order("REFUNDING")), resuming="take-back")
    seen = []
    while not isinstance(action := next_action(REFUND, state), Finish):
        seen.append(action)
        state = advance(state, action)
    assert seen == [Run(0), Run(1)] and action == Finish(Outcome.COMPLETED)
    assert final_status(advance(state, action)) == "REFUNDED"


def test_recovery_runs_a_begun_refund_again_and_leaves_confirmed_and_refunded_orders_alone():
    assert next_action(REFUND, refund_state(order("REFUNDING"))) == Run(0)
    assert next_action(REFUND, refund_state(order("CONFIRMED"))) is WAIT
    assert next_action(REFUND, refund_state(order("REFUNDED"))) is DONE


def test_a_seat_that_cannot_be_taken_back_ends_the_order_confirmed_with_nothing_to_undo():
    state = advance(refund_state(order("REFUNDING")), Fail(by_deadline=False))
    assert next_action(REFUND, state) == Finish(Outcome.COMPENSATED)
    assert final_status(advance(state, Finish(Outcome.COMPENSATED))) == "CONFIRMED"
    assert seat_kept(AppError("x", code="SEAT_CHECKED_IN", status=409))
    assert seat_kept(AppError("x", code="NOT_OWNER", status=409))
    assert not seat_kept(AppError("x", code="SERVICE_UNAVAILABLE", status=503))


def test_a_fan_may_refund_until_the_cutoff_an_admin_any_time_and_only_confirmed_orders():
    starts = NOW + timedelta(seconds=DAY + 1)
    check_refundable(order(), "fan", starts, NOW, DAY)
    with pytest.raises(RefundCutoffPassed):
        check_refundable(order(), "fan", NOW + timedelta(seconds=DAY), NOW, DAY)
    check_refundable(order(), "admin", NOW - timedelta(days=1), NOW, DAY)
    check_refundable(order("REFUNDED"), "fan", NOW, NOW, DAY)      # answered as it is
    for status in ("PENDING", "FAILED", "EXPIRED", "CANCELLED"):
        with pytest.raises(OrderNotRefundable):
            check_refundable(order(status), "admin", starts, NOW, DAY)
