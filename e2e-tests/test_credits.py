"""Buying credits: Stripe top-ups and the signature-verified webhook, through the public API."""
import json
import time
import uuid

import stripe

from e2e_support import STRIPE_WEBHOOK_SECRET, balance, topup

from trcommon.devtools import development_payment


def _event(user_id, amount, event_type="payment_intent.succeeded", event_id=None):
    return json.dumps({"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "type": event_type,
                       "data": {"object": {"id": f"pi_{uuid.uuid4().hex}", "object": "payment_intent",
                                           "amount_received": amount, "currency": "sgd",
                                           "metadata": {"user_id": user_id}}}})


def _post(api, payload, header):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return api.post("/webhooks/stripe", data=payload, headers=headers)


def test_a_signed_payment_webhook_adds_the_credits_once_however_often_it_is_replayed(api, fan):
    payload, header = development_payment(api.users, fan.user_id, 700, STRIPE_WEBHOOK_SECRET)
    for _ in range(5):
        assert _post(api, payload, header).status_code == 200
    assert balance(api, fan.token) == 700


def test_forged_stale_and_unsigned_webhooks_are_400_and_add_nothing(api, fan):
    # A payment that was ordered (its intent recorded): only the signature stands between it and the credits.
    payload, _ = development_payment(api.users, fan.user_id, 500, STRIPE_WEBHOOK_SECRET)
    now = int(time.time())
    forged = stripe.WebhookSignature.generate_signature_header(payload, "whsec_someone_else", now)
    stale = stripe.WebhookSignature.generate_signature_header(payload, STRIPE_WEBHOOK_SECRET, now - 301)
    valid = stripe.WebhookSignature.generate_signature_header(payload, STRIPE_WEBHOOK_SECRET, now)
    tampered = payload.replace('"amount_received": 500', '"amount_received": 50000')
    assert tampered != payload
    for body, header in ((payload, None), (payload, forged), (payload, stale), (tampered, valid),
                         (payload, f"t={now},v0=abc")):
        r = _post(api, body, header)
        assert r.status_code == 400, (header, r.text)
    assert balance(api, fan.token) == 0


def test_a_failed_payment_event_adds_nothing(api, fan):
    payload = _event(fan.user_id, 500, "payment_intent.payment_failed")
    header = stripe.WebhookSignature.generate_signature_header(payload, STRIPE_WEBHOOK_SECRET, int(time.time()))
    assert _post(api, payload, header).status_code == 200
    assert balance(api, fan.token) == 0


def test_a_top_up_creates_a_stripe_payment_intent_whose_payment_adds_exactly_those_credits_once(api, fan, stripe_api):
    r = api.post("/credits/topup", fan.token, json={"amount": 1000})
    assert r.status_code == 201, r.text
    intent = r.json()
    assert intent["amount"] == 1000 and intent["client_secret"].startswith(intent["payment_intent_id"])
    sent = stripe_api.forms()[-1]                 # what reached Stripe's API
    assert sent["amount"] == "1000" and sent["metadata[user_id]"] == fan.user_id
    assert balance(api, fan.token) == 0          # nothing until Stripe says the payment succeeded
    event = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "payment_intent.succeeded",
                        "data": {"object": {"id": intent["payment_intent_id"], "object": "payment_intent",
                                            "amount": 1000, "amount_received": 1000, "currency": sent["currency"],
                                            "metadata": {"user_id": fan.user_id}}}})
    header = stripe.WebhookSignature.generate_signature_header(event, STRIPE_WEBHOOK_SECRET, int(time.time()))
    for _ in range(3):                            # Stripe resends until it is acknowledged
        assert _post(api, event, header).status_code == 200
    assert balance(api, fan.token) == 1000


def test_a_top_up_needs_a_fan_and_a_whole_positive_amount(api, fan):
    assert api.post("/credits/topup", json={"amount": 1000}).status_code == 401
    assert api.post("/credits/topup", fan.token, json={"amount": -5}).status_code == 400
    # Only a JSON integer is an amount: no coercion of a float, a string or a boolean into credits.
    for amount in (100.0, 1000.5, "1000", True):
        r = api.post("/credits/topup", fan.token, json={"amount": amount})
        assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "amount", amount


def test_topped_up_credits_pay_for_a_seat(api, fan, fresh_event):
    ev = fresh_event(seats=1, price=80)
    topup(api, fan.user_id, 100)
    order_id = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).json()["order_id"]
    assert api.post("/pay", fan.token, json={"order_id": order_id}).status_code == 200
    assert balance(api, fan.token) == 20
