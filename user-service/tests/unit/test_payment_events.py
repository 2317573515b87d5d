import pytest

from user_service.domain.errors import InvalidAmount
from user_service.domain.payments import RecordedIntent, StripeEvent, check_topup_amount, completed_payment, mismatch

USER = "6f1c2a7e-3b8d-4c55-9e0a-5d7b9c1e2f30"


def _intent(**overrides):
    obj = {"id": "pi_1", "object": "payment_intent", "amount": 500, "amount_received": 500, "currency": "sgd",
           "metadata": {"user_id": USER}}
    obj.update(overrides)
    return obj


def _session(**overrides):
    obj = {"id": "cs_1", "object": "checkout.session", "payment_intent": "pi_1", "payment_status": "paid",
           "amount_total": 500, "currency": "sgd", "metadata": {"user_id": USER}}
    obj.update(overrides)
    return obj


def test_a_succeeded_payment_intent_credits_the_amount_received_to_its_user():
    payment = completed_payment(StripeEvent("evt_1", "payment_intent.succeeded", _intent(amount_received=450)))
    assert (payment.payment_id, payment.user_id, payment.amount, payment.currency) == ("pi_1", USER, 450, "sgd")
    assert payment.reference == "stripe:pi_1"


def test_a_paid_checkout_session_shares_the_reference_of_its_payment_intent():
    payment = completed_payment(StripeEvent("evt_2", "checkout.session.completed", _session()))
    assert payment.reference == "stripe:pi_1" and payment.amount == 500


def test_an_async_payment_success_counts_as_paid():
    event = StripeEvent("evt_3", "checkout.session.async_payment_succeeded", _session(payment_status="paid"))
    assert completed_payment(event).amount == 500


@pytest.mark.parametrize("event", [
    StripeEvent("e", "checkout.session.completed", _session(payment_status="unpaid")),
    StripeEvent("e", "payment_intent.payment_failed", _intent(amount_received=0)),
    StripeEvent("e", "payment_intent.created", _intent()),
    StripeEvent("e", "charge.refunded", {"id": "ch_1", "amount": 500}),
    StripeEvent("e", "payment_intent.succeeded", _intent(amount_received=0)),
    StripeEvent("e", "payment_intent.succeeded", _intent(amount_received="500")),
    StripeEvent("e", "payment_intent.succeeded", _intent(id=None)),
])
def test_events_that_move_no_money_credit_nothing(event):
    assert completed_payment(event) is None


def test_a_payment_without_a_usable_user_id_has_no_user():
    assert completed_payment(StripeEvent("e", "payment_intent.succeeded", _intent(metadata={}))).user_id is None
    bad = _intent(metadata={"user_id": "not-a-uuid"})
    assert completed_payment(StripeEvent("e", "payment_intent.succeeded", bad)).user_id is None


def test_topup_amounts_must_be_within_the_configured_range():
    check_topup_amount(100, 100, 1000)
    check_topup_amount(1000, 100, 1000)
    for amount in (99, 1001):
        with pytest.raises(InvalidAmount):
            check_topup_amount(amount, 100, 1000)


def _recorded(**overrides):
    return RecordedIntent(**{"payment_intent_id": "pi_1", "user_id": USER, "amount": 500, "currency": "sgd",
                             "status": "requires_payment_method", **overrides})


def test_a_payment_as_it_was_ordered_matches_its_recorded_intent():
    payment = completed_payment(StripeEvent("e", "payment_intent.succeeded", _intent()))
    assert mismatch(payment, _recorded()) is None
    # The record names the user: an event without one in its metadata is still the ordered payment.
    anonymous = completed_payment(StripeEvent("e", "payment_intent.succeeded", _intent(metadata={})))
    assert mismatch(anonymous, _recorded()) is None


@pytest.mark.parametrize("intent, why", [
    (_intent(amount_received=5000), "amount 5000 is not the recorded 500"),
    (_intent(amount_received=499), "amount 499 is not the recorded 500"),
    (_intent(currency="usd"), "currency usd is not the recorded sgd"),
    (_intent(metadata={"user_id": "0b0e4c1e-6f2e-4d3a-9f41-1c2d3e4f5a6b"}), "another user"),
])
def test_a_payment_that_differs_from_its_recorded_intent_is_a_mismatch(intent, why):
    payment = completed_payment(StripeEvent("e", "payment_intent.succeeded", intent))
    assert why in mismatch(payment, _recorded())
