"""Stripe through the official library: PaymentIntents for top-ups and signature-checked webhook events."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import stripe

from ..domain.errors import InvalidPayload, InvalidSignature, PaymentsNotConfigured, PaymentsUnavailable
from ..domain.payments import StripeEvent

log = logging.getLogger("user_service.stripe")

SIGNATURE_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class PaymentIntent:
    payment_intent_id: str
    client_secret: str
    amount: int
    currency: str
    status: str


def _signature_timestamp(header: str) -> int | None:
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class StripeGateway:
    def __init__(self, secret_key: str | None, webhook_secret: str | None, api_base: str | None = None,
                 timeout: float = 10.0):
        self._webhook_secret = webhook_secret or None
        self._client = None
        if secret_key:
            self._client = stripe.StripeClient(
                secret_key,
                base_addresses={"api": api_base} if api_base else None,
                http_client=stripe.RequestsClient(timeout=timeout),
                # Retried POSTs carry the same Idempotency-Key (the library adds one), so a retry never makes a
                # second PaymentIntent.
                max_network_retries=2,
            )

    @property
    def payments_enabled(self) -> bool:
        return self._client is not None

    def create_payment_intent(self, user_id: str, amount: int, currency: str) -> PaymentIntent:
        if self._client is None:
            raise PaymentsNotConfigured()
        try:
            intent = self._client.v1.payment_intents.create(params={
                "amount": amount,
                "currency": currency,
                "metadata": {"user_id": user_id},
                "automatic_payment_methods": {"enabled": True},
            })
        except stripe.APIConnectionError as exc:
            log.warning("Stripe unreachable", extra={"error": str(exc)[:200]})
            raise PaymentsUnavailable() from exc
        except stripe.StripeError as exc:
            log.warning("Stripe refused the PaymentIntent",
                        extra={"http_status": exc.http_status, "stripe_code": exc.code})
            raise PaymentsUnavailable("the payment provider refused the request") from exc
        return PaymentIntent(payment_intent_id=intent.id, client_secret=intent.client_secret,
                             amount=intent.amount, currency=intent.currency, status=intent.status)

    def parse_event(self, payload: bytes, signature_header: str | None) -> StripeEvent:
        """Verify the `Stripe-Signature` header (HMAC-SHA256 over `t.payload`, scheme v1 only, at most
        SIGNATURE_TOLERANCE_SECONDS old) and return the event; anything else is INVALID_SIGNATURE."""
        if self._webhook_secret is None:
            raise PaymentsNotConfigured("Stripe webhooks are not configured on this server")
        try:
            stripe.Webhook.construct_event(payload, signature_header, self._webhook_secret,
                                           tolerance=SIGNATURE_TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError:
            raise InvalidSignature() from None
        except (ValueError, TypeError, AttributeError, KeyError):
            # Signed, but not a JSON Stripe event (ValueError covers undecodable bytes and bad JSON).
            raise InvalidPayload() from None
        # stripe-python accepts timestamps from the future; a signature dated ahead is as suspect as a stale one.
        timestamp = _signature_timestamp(signature_header or "")
        if timestamp is None or timestamp > time.time() + SIGNATURE_TOLERANCE_SECONDS:
            raise InvalidSignature()
        try:
            body = json.loads(payload)
            event = StripeEvent(event_id=body["id"], type=body["type"], object=body["data"]["object"])
        except (ValueError, KeyError, TypeError):
            raise InvalidPayload() from None
        if not (isinstance(event.event_id, str) and isinstance(event.type, str) and isinstance(event.object, dict)):
            raise InvalidPayload()
        return event
