from datetime import datetime, timedelta, timezone

from orchestrator_service.domain.purchase import Next, next_step, seat_lost
from trcommon.errors import AppError
from trcontracts.orders import Order

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def order(status="PENDING", payment_state="NONE", held_for=0.0) -> Order:
    return Order(order_id="o1", user_id="u1", seat_id="s1", event_id="e1", amount=50, status=status,
                 payment_state=payment_state, held_until=NOW + timedelta(seconds=held_for), failure_reason=None,
                 confirmed_at=None, created_at=NOW, updated_at=NOW)


def test_a_lapsed_unpaid_hold_expires():
    assert next_step(order(held_for=-1), debited=False, now=NOW, fence_seconds=2) is Next.EXPIRE


def test_a_live_unpaid_hold_is_left_alone():
    assert next_step(order(held_for=5), debited=False, now=NOW, fence_seconds=2) is Next.WAIT


def test_a_charged_order_is_confirmed_whatever_the_clock_says():
    for held_for in (-100, 0, 100):
        assert next_step(order("PENDING", "CHARGING", held_for), True, NOW, 2) is Next.CONFIRM


def test_a_charging_order_without_debit_waits_for_the_fence_before_expiring():
    assert next_step(order("PENDING", "CHARGING", -1), False, NOW, fence_seconds=2) is Next.WAIT
    assert next_step(order("PENDING", "CHARGING", -3), False, NOW, fence_seconds=2) is Next.EXPIRE


def test_terminal_orders_are_done():
    for status in ("CONFIRMED", "FAILED", "EXPIRED", "REFUNDED"):
        assert next_step(order(status, held_for=-100), True, NOW, 2) is Next.DONE


def test_only_seat_outcomes_count_as_a_lost_seat():
    assert seat_lost(AppError("x", code="HOLD_EXPIRED", status=410))
    assert seat_lost(AppError("x", code="SEAT_UNAVAILABLE", status=409))
    assert not seat_lost(AppError("x", code="SERVICE_UNAVAILABLE", status=503))


def test_failpoints_are_refused_in_production_and_must_be_known():
    import pytest

    from orchestrator_service.settings import OrchestratorSettings

    assert OrchestratorSettings(failpoints="pay:after_debit, reserve:after_hold").failpoint_set == {
        "pay:after_debit", "reserve:after_hold"}
    with pytest.raises(ValueError):
        OrchestratorSettings(failpoints="pay:after_lunch")
    with pytest.raises(ValueError):
        OrchestratorSettings(environment="production", jwt_secret="p" * 40, internal_service_token="q" * 40,
                             qr_secret="r" * 40, failpoints="pay:after_debit")
    assert OrchestratorSettings().failpoint_set == frozenset()
