"""Money enters only as it was ordered: a signed Stripe event credits a payment only for a PaymentIntent this system
recorded when a top-up created it, to the recorded user, for the recorded amount and currency (issue: hardening)."""
import json
import time
import uuid

import requests
import stripe
from e2e_support import STRIPE_WEBHOOK_SECRET, balance, log_entries, register_and_login, wait_until

from trcommon.devtools import development_payment


def _succeeded(user_id: str, amount: int, pi: str | None = None, currency: str = "sgd") -> str:
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "payment_intent.succeeded",
                       "data": {"object": {"id": pi or f"pi_{uuid.uuid4().hex}", "object": "payment_intent",
                                           "amount": amount, "amount_received": amount, "currency": currency,
                                           "status": "succeeded", "metadata": {"user_id": user_id}}}})


def _deliver(api, payload: str) -> requests.Response:
    header = stripe.WebhookSignature.generate_signature_header(payload, STRIPE_WEBHOOK_SECRET, int(time.time()))
    return api.post("/webhooks/stripe", data=payload, headers={"Stripe-Signature": header,
                                                                "Content-Type": "application/json"})


def _logged(message: str, payment_id: str) -> bool:
    return any(e.get("message") == message and e.get("payment_id") == payment_id
               for e in log_entries("user-service"))


def test_a_correctly_signed_payment_nobody_ordered_is_acknowledged_and_credits_nothing(api, fan):
    pi = f"pi_{uuid.uuid4().hex}"
    r = _deliver(api, _succeeded(fan.user_id, 10**13, pi))
    assert r.status_code == 200, r.text             # acknowledged, so Stripe stops retrying
    assert balance(api, fan.token) == 0
    assert wait_until(lambda: _logged("payment for a payment intent this system did not create; not credited", pi),
                      timeout=5)


def test_a_payment_that_differs_from_its_order_credits_nothing_and_the_ordered_one_credits_once(api, fan):
    other = register_and_login(api)
    ordered, _ = development_payment(api.users, fan.user_id, 500, STRIPE_WEBHOOK_SECRET)
    pi = json.loads(ordered)["data"]["object"]["id"]
    for payload in (_succeeded(fan.user_id, 50_000, pi), _succeeded(fan.user_id, 499, pi),
                    _succeeded(fan.user_id, 500, pi, currency="usd"), _succeeded(other.user_id, 500, pi)):
        assert _deliver(api, payload).status_code == 200
    assert (balance(api, fan.token), balance(api, other.token)) == (0, 0)
    assert wait_until(lambda: _logged("payment differs from its recorded payment intent; not credited", pi),
                      timeout=5)
    for _ in range(3):
        assert _deliver(api, ordered).status_code == 200
    assert (balance(api, fan.token), balance(api, other.token)) == (500, 0)


def test_a_top_up_above_the_maximum_is_400_naming_the_amount(api, fan):
    for amount in (1_000_001, 10**13, 2**63 - 1):
        r = api.post("/credits/topup", fan.token, json={"amount": amount})
        assert r.status_code == 400, (amount, r.text)
        assert r.json()["error"]["details"][0]["field"] == "amount"


def test_development_intents_are_not_on_the_public_api_nor_open_without_the_internal_credential(stack, api, fan):
    body = {"user_id": fan.user_id, "amount": 1000}
    assert api.post("/internal/credits/dev-payment-intents", json=body).status_code == 404
    direct = requests.post(f"http://127.0.0.1:{stack.ports.user}/internal/credits/dev-payment-intents", json=body,
                           timeout=10)
    assert direct.status_code == 401
    assert balance(api, fan.token) == 0
