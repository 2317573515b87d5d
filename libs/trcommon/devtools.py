"""Development tools for a running local system (`make run`).

topup: credit a registered user the way production does, without a Stripe account. user-service credits only payment
intents it recorded when a top-up created them, so the tool first records one for the user and amount through
user-service's internal API (a development intent: what `POST /credits/topup` records, without calling Stripe;
refused in production), then delivers the `payment_intent.succeeded` event Stripe would send for it, signed with
the webhook secret (the equivalent of `stripe trigger`), to the public webhook `POST /webhooks/stripe`. The user
is found by email through the same internal API.

    python -m trcommon.devtools topup --email newfan@example.com --amount 1000      (make topup EMAIL=… AMOUNT=…)

Every default comes from LocalSettings (PORT, USER_SERVICE_URL, INTERNAL_SERVICE_TOKEN, STRIPE_WEBHOOK_SECRET),
i.e. the development values `make run` uses; options point it at another system (the e2e tests).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

import requests
import stripe
from trcontracts.users import DEV_PAYMENT_INTENT, USER_BY_EMAIL, PaymentIntentRecord

from .errors import AppError
from .http_client import ServiceClient
from .settings import LocalSettings, load_settings


def signed_payment_webhook(intent: PaymentIntentRecord, secret: str) -> tuple[str, str]:
    """The `payment_intent.succeeded` event Stripe sends when `intent` is paid, and its `Stripe-Signature` header,
    signed as Stripe signs webhooks (stripe-python's own helper)."""
    now = int(time.time())
    event = {"id": f"evt_dev_{uuid.uuid4().hex}", "object": "event", "type": "payment_intent.succeeded",
             "created": now, "livemode": False,
             "data": {"object": {"id": intent.payment_intent_id, "object": "payment_intent", "amount": intent.amount,
                                 "amount_received": intent.amount, "currency": intent.currency,
                                 "status": "succeeded", "metadata": {"user_id": intent.user_id}}}}
    payload = json.dumps(event)
    return payload, stripe.WebhookSignature.generate_signature_header(payload, secret, now)


def development_payment(users: ServiceClient, user_id: str, amount: int, secret: str) -> tuple[str, str]:
    """A payment of `amount` credits by `user_id`, ordered as a top-up orders one: the PaymentIntent is recorded by
    user-service (a development intent), and the signed webhook that reports it paid is returned (payload,
    `Stripe-Signature`), for the caller to deliver to `POST /webhooks/stripe`."""
    intent = users.call(DEV_PAYMENT_INTENT, {"user_id": user_id, "amount": amount})
    return signed_payment_webhook(intent, secret)


def topup(email: str, amount: int, api_url: str, users: ServiceClient, secret: str) -> str:
    """Record a payment for `email` and deliver its signed webhook to the public API; returns the line to print.
    Raises AppError (unknown email, an amount user-service refuses, a refused webhook, a payment that credited
    nothing)."""
    user = users.call(USER_BY_EMAIL, query={"email": email})
    payload, signature = development_payment(users, user.user_id, amount, secret)
    try:
        resp = requests.post(f"{api_url.rstrip('/')}/webhooks/stripe", data=payload, timeout=10,
                             headers={"Content-Type": "application/json", "Stripe-Signature": signature})
    except requests.RequestException as exc:
        raise AppError(f"the public API at {api_url} is unreachable ({type(exc).__name__}); is `make run` up?",
                       code="API_UNREACHABLE", status=503) from None
    if resp.status_code != 200:
        raise AppError(f"POST /webhooks/stripe answered {resp.status_code}: {resp.text.strip()}",
                       code="WEBHOOK_REFUSED", status=resp.status_code)
    balance = users.call(USER_BY_EMAIL, query={"email": email}).credit_balance
    if balance < user.credit_balance + amount:
        raise AppError(f"the webhook was accepted but credited nothing (balance {balance}); see user-service's log",
                       code="NOT_CREDITED", status=409)
    return f"topped up {user.email} (user {user.user_id}): +{amount} credits, balance {balance}"


def main(argv: list[str] | None = None) -> int:
    local = load_settings(LocalSettings)
    parser = argparse.ArgumentParser(prog="python -m trcommon.devtools",
                                     description="Development tools for a running local system.")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("topup", help="credit a user: record a payment intent, then deliver its signed "
                                            "payment_intent.succeeded webhook")
    cmd.add_argument("--email", required=True)
    cmd.add_argument("--amount", required=True, type=int, help="credits (minor units of user-service's CURRENCY), 1 up to "
                     "its TOPUP_MAX_AMOUNT")
    cmd.add_argument("--api-url", default=local.public_url, help="the public API (default %(default)s)")
    cmd.add_argument("--user-service-url", default=local.user_service_url,
                     help="user-service's internal API, to find the user and record the payment intent "
                          "(default %(default)s)")
    cmd.add_argument("--internal-token", default=local.internal_service_token,
                     help="the internal service credential (default: INTERNAL_SERVICE_TOKEN or its development value)")
    cmd.add_argument("--webhook-secret", default=local.stripe_webhook_secret,
                     help="the secret user-service verifies webhooks with (default: STRIPE_WEBHOOK_SECRET or its "
                          "development value)")
    args = parser.parse_args(argv)
    if local.environment == "production":
        parser.error("the development tools do not run with ENVIRONMENT=production")
    if args.amount < 1:
        parser.error("--amount must be at least 1")
    users = ServiceClient("user-service", args.user_service_url, args.internal_token, timeout=10)
    try:
        print(topup(args.email, args.amount, args.api_url, users, args.webhook_secret))
    except AppError as err:
        print(f"error: {err.code}: {err.message}", file=sys.stderr)
        return 1
    finally:
        users.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
