"""The purchase saga's decisions: every state an order can record, read through the shared decision function
with the real step list."""
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator_service.domain.purchase import CONFIRM_SEAT, DEBIT, STEPS, final_status, purchase_state, seat_lost
from orchestrator_service.service_layer.purchase import PURCHASE
from trcommon.errors import AppError
from trcontracts.orders import Order, OrderStatus
from trcommon.saga import (DONE, WAIT, Begin, Compensate, Fail, Finish, Outcome, Probe, SagaRunner, SagaState,
                           advance, next_action)

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
FENCE = 2.0


def order(status="PENDING", payment_state="NONE", held_for=0.0) -> Order:
    return Order(order_id="o1", user_id="u1", seat_id="s1", event_id="e1", amount=50, status=status,
                 payment_state=payment_state, held_until=NOW + timedelta(seconds=held_for), failure_reason=None,
                 confirmed_at=None, created_at=NOW, updated_at=NOW)


def decide(o, resuming=None, happened=None):
    """The actions the saga takes from an order's recorded state until it waits or needs a record write."""
    from dataclasses import replace

    state = replace(purchase_state(o, NOW, FENCE), resuming=resuming)
    actions = []
    while (action := next_action(PURCHASE, state)) not in (WAIT, DONE):
        actions.append(action)
        if isinstance(action, (Begin, Finish)):
            break
        state = advance(state, action, happened)
    return actions, state


def names(actions):
    out = []
    for a in actions:
        step = getattr(a, "step", None)
        out.append(f"{type(a).__name__}({PURCHASE.steps[step].name})" if step is not None
                   else f"{type(a).__name__}({getattr(a, 'outcome', getattr(a, 'by_deadline', ''))})")
    return out


def test_the_step_list_is_the_purchase():
    assert tuple(s.name for s in PURCHASE.steps) == STEPS == ("hold", "order", "timer", "debit", "confirm-seat")
    assert PURCHASE.key("o1", "debit") == "order:o1:debit"
    assert PURCHASE.key("o1", PURCHASE.steps[STEPS.index(DEBIT)].compensation_name) == "order:o1:refund"


def test_a_new_purchase_holds_records_and_times_then_waits_for_the_fan():
    state, seen = SagaState(), []
    while (action := next_action(PURCHASE, state)) is not WAIT:
        seen.append(action)
        state = advance(state, action)
    assert names(seen) == ["Run(hold)", "Run(order)", "Run(timer)"]


def test_a_live_unpaid_hold_waits():
    actions, state = decide(order(held_for=5))
    assert actions == [] and next_action(PURCHASE, state) is WAIT and not state.deadline_passed


def test_a_lapsed_unpaid_hold_expires_without_releasing_the_seat_itself():
    actions, state = decide(order(held_for=-1))
    assert names(actions) == ["Fail(True)", "Finish(Outcome.COMPENSATED)"]   # its timer releases the seat
    assert final_status(order(held_for=-1), advance(state, actions[-1])) == OrderStatus.EXPIRED


def test_the_fans_pay_begins_the_debit_then_confirms_the_seat():
    assert names(decide(order(held_for=5), resuming=DEBIT)[0]) == ["Begin(debit)"]
    actions, _ = decide(order("PENDING", "CHARGING", 5), resuming=DEBIT)
    assert names(actions) == ["Run(debit)", "Run(confirm-seat)", "Finish(Outcome.COMPLETED)"]


def test_recovery_asks_the_ledger_about_a_charging_order_whatever_the_clock_says():
    for held_for in (-100, 0, 100):
        assert decide(order("PENDING", "CHARGING", held_for))[0][0] == Probe(STEPS.index(DEBIT))


def test_a_charged_order_is_confirmed_by_recovery():
    actions, _ = decide(order("PENDING", "CHARGING", -100), happened=True)
    assert names(actions) == ["Probe(debit)", "Run(confirm-seat)", "Finish(Outcome.COMPLETED)"]


def test_a_charging_order_without_debit_waits_for_the_fence_then_fails_without_a_refund():
    assert names(decide(order("PENDING", "CHARGING", -1), happened=False)[0]) == ["Probe(debit)"]
    actions, state = decide(order("PENDING", "CHARGING", -3), happened=False)
    assert names(actions) == ["Probe(debit)", "Fail(True)", "Finish(Outcome.COMPENSATED)"]
    assert final_status(order("PENDING", "CHARGING", -3), advance(state, actions[-1])) == OrderStatus.FAILED


def test_a_lost_seat_after_the_debit_refunds_then_releases_then_fails_the_order():
    state = advance(advance(purchase_state(order("PENDING", "CHARGING", 5), NOW, FENCE), Probe(3), True),
                    Fail(by_deadline=False))
    seen = []
    while not isinstance(action := next_action(PURCHASE, state), Finish):
        seen.append(action)
        state = advance(state, action)
    assert seen == [Compensate(STEPS.index(DEBIT)), Compensate(STEPS.index("hold"))]
    assert final_status(order("PENDING", "CHARGING", 5), advance(state, action)) == OrderStatus.FAILED


def test_terminal_orders_are_done():
    for status in ("CONFIRMED", "FAILED", "EXPIRED", "REFUNDED"):
        assert decide(order(status, held_for=-100))[0] == []
        assert decide(order(status, "CHARGING", held_for=-100), resuming=DEBIT)[0] == []


def test_a_cancelled_order_releases_its_hold_and_ends_cancelled_however_often_it_is_driven():
    actions, state = decide(order("CANCELLED"))
    assert names(actions) == ["Compensate(hold)", "Finish(Outcome.COMPENSATED)"]
    assert final_status(order("CANCELLED"), advance(state, actions[-1])) == OrderStatus.CANCELLED
    # Past its hold's end too: it was cancelled, not expired, and the release is still run (keyed, harmless).
    assert names(decide(order("CANCELLED", held_for=-100))[0]) == names(actions)


def test_only_seat_outcomes_count_as_a_lost_seat():
    assert seat_lost(AppError("x", code="HOLD_EXPIRED", status=410))
    assert seat_lost(AppError("x", code="SEAT_UNAVAILABLE", status=409))
    assert not seat_lost(AppError("x", code="SERVICE_UNAVAILABLE", status=503))
    confirm = PURCHASE.steps[STEPS.index(CONFIRM_SEAT)]
    assert confirm.fatal(AppError("x", code="HOLD_EXPIRED", status=410))
    assert not confirm.fatal(AppError("x", code="SERVICE_UNAVAILABLE", status=503))


def test_failpoints_are_the_step_boundaries_refused_in_production_and_must_be_known():
    from orchestrator_service.settings import OrchestratorSettings

    assert PURCHASE.failpoints() == ("purchase:hold", "purchase:order", "purchase:timer", "purchase:debit:begun",
                                     "purchase:debit", "purchase:confirm-seat")
    SagaRunner([PURCHASE], OrchestratorSettings(failpoints="purchase:debit, purchase:hold").failpoint_set)
    with pytest.raises(ValueError):
        SagaRunner([PURCHASE], frozenset({"purchase:lunch"}))
    with pytest.raises(ValueError):
        OrchestratorSettings(environment="production", jwt_secret="p" * 40, internal_service_token="q" * 40,
                             qr_signing_key="cg==" * 11, failpoints="purchase:debit")
    assert OrchestratorSettings().failpoint_set == frozenset()
    assert Outcome.COMPLETED.value == "COMPLETED"
