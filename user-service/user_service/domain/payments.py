"""Credit top-ups paid through Stripe: which webhook events mean money arrived, and for which payment.

A payment is credited once, whatever events announce it: the ledger reference is derived from the
PaymentIntent, so `payment_intent.succeeded` and `checkout.session.completed` for one payment share it. And a
payment is credited only as it was ordered: for a PaymentIntent this system recorded when it was created, to the
user and for the amount and currency recorded then. A correctly signed event is no order: whoever holds the
webhook secret (or a misconfigured Stripe account) could otherwise mint credits for anyone.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from .errors import InvalidAmount

CHECKOUT_COMPLETED = "checkout.session.completed"
CHECKOUT_ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
TOPUP_REASON = "stripe top-up"
# Ids of the intents recorded for development payments (`make topup`, the tests, the bench), never Stripe's.
DEVELOPMENT_INTENT_PREFIX = "pi_dev_"


@dataclass(frozen=True)
class StripeEvent:
    event_id: str
    type: str
    object: dict


@dataclass(frozen=True)
class CompletedPayment:
    payment_id: str          # the PaymentIntent id (or the Checkout Session id when it has none)
    user_id: str | None      # from the payment's metadata, when present
    amount: int              # in the currency's minor unit: 1 credit each
    currency: str

    @property
    def reference(self) -> str:
        return payment_reference(self.payment_id)


@dataclass(frozen=True)
class RecordedIntent:
    """A PaymentIntent as this system recorded it when it was created (POST /credits/topup)."""

    payment_intent_id: str
    user_id: str
    amount: int
    currency: str
    status: str
    origin: str = "stripe"      # or "development": recorded without Stripe for a development payment


def payment_reference(payment_id: str) -> str:
    return f"stripe:{payment_id}"


def check_topup_amount(amount: int, minimum: int, maximum: int) -> None:
    if not minimum <= amount <= maximum:
        message = f"amount must be between {minimum} and {maximum} credits"
        raise InvalidAmount("request is invalid", details=[{"field": "amount", "message": message}])


def _metadata_user(obj: dict) -> str | None:
    metadata = obj.get("metadata") or {}
    candidate = metadata.get("user_id") if isinstance(metadata, dict) else None
    candidate = candidate or obj.get("client_reference_id")
    if not isinstance(candidate, str):
        return None
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        return None


def _positive_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def completed_payment(event: StripeEvent) -> CompletedPayment | None:
    """The payment an event reports as paid, or None when the event moves no money to us (failed or unpaid
    payments, and every other event type)."""
    obj = event.object
    if event.type == "payment_intent.succeeded":
        payment_id, amount = obj.get("id"), _positive_int(obj.get("amount_received"))
    elif event.type in (CHECKOUT_COMPLETED, CHECKOUT_ASYNC_SUCCEEDED):
        # A completed session may still be unpaid (delayed payment methods): money has moved only when it says
        # `paid`, or when the delayed payment later succeeds.
        if event.type == CHECKOUT_COMPLETED and obj.get("payment_status") != "paid":
            return None
        payment_id = obj.get("payment_intent") or obj.get("id")
        amount = _positive_int(obj.get("amount_total"))
    else:
        return None
    if not isinstance(payment_id, str) or not payment_id or amount is None:
        return None
    return CompletedPayment(payment_id=payment_id, user_id=_metadata_user(obj), amount=amount,
                            currency=str(obj.get("currency") or "").lower())


def mismatch(payment: CompletedPayment, intent: RecordedIntent) -> str | None:
    """Why a reported payment is not the one ordered with `intent`, or None when it is: Stripe's amount and
    currency must be the recorded ones, and a user the event names must be the recorded user."""
    if payment.amount != intent.amount:
        return f"amount {payment.amount} is not the recorded {intent.amount}"
    if payment.currency != intent.currency:
        return f"currency {payment.currency or '(none)'} is not the recorded {intent.currency}"
    if payment.user_id is not None and payment.user_id != intent.user_id:
        return "the event names another user than the recorded one"
    return None
