"""Stripe top-ups and webhooks. Webhooks are signed offline with stripe-python's own helper;
the PaymentIntent call goes to a local stand-in of Stripe's API."""
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from trcommon.testing import StripeApi

WEBHOOK, TOPUP = "/internal/webhooks/stripe", "/internal/credits/topup"
DEV_INTENT = "/internal/credits/dev-payment-intents"
WHSEC = "whsec_test"
SECRET_KEY = "sk_test_standin"


@pytest.fixture
def stripe_client(make_client):
    return make_client(stripe_webhook_secret=WHSEC)


def _event(event_type, obj, event_id=None):
    return json.dumps({"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "type": event_type,
                       "api_version": "2025-01-01", "created": int(time.time()), "livemode": False,
                       "data": {"object": obj}})


def _recorded(client, user, amount=500) -> str:
    """A PaymentIntent recorded for `user` and `amount` (as a top-up records one), its id."""
    resp = client.post(DEV_INTENT, json={"user_id": user["user_id"], "amount": amount})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["payment_intent_id"]


def _intent(user, amount=500, pi=None, **overrides):
    """Stripe's PaymentIntent object as a webhook reports it; `pi` should name a recorded intent."""
    return {"id": pi or f"pi_{uuid.uuid4().hex}", "object": "payment_intent", "amount": amount,
            "amount_received": amount, "currency": "sgd", "status": "succeeded",
            "metadata": {"user_id": user["user_id"]}, **overrides}


def _session(user, pi, amount=500, **overrides):
    return {"id": f"cs_{uuid.uuid4().hex}", "object": "checkout.session", "payment_intent": pi,
            "amount_total": amount, "currency": "sgd", "payment_status": "paid", "status": "complete",
            "metadata": {"user_id": user["user_id"]}, **overrides}


def _sign(payload, secret=WHSEC, timestamp=None):
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)


def _post(client, payload, signature):
    headers = {"Stripe-Signature": signature} if signature is not None else {}
    return client.post(WEBHOOK, data=payload, headers=headers, content_type="application/json")


def _deliver(client, payload, **sign):
    return _post(client, payload, _sign(payload, **sign))


def test_a_succeeded_payment_intent_credits_its_amount_through_the_ledger(stripe_client, users):
    user = users.new()
    intent = _intent(user, amount=750, pi=_recorded(stripe_client, user, 750))
    resp = _deliver(stripe_client, _event("payment_intent.succeeded", intent))
    assert resp.status_code == 200 and resp.get_json() == {"received": True}
    assert users.balance(user["user_id"]) == 750
    entries = stripe_client.get("/internal/credits/ledger", query_string={"reference": f"stripe:{intent['id']}"})
    assert [(e["amount"], e["reason"]) for e in entries.get_json()["entries"]] == [(750, "stripe top-up")]


def test_forged_webhooks_are_400_and_credit_nothing(stripe_client, users):
    user = users.new()
    payload = _event("payment_intent.succeeded", _intent(user, pi=_recorded(stripe_client, user)))
    t = int(time.time())
    good = _sign(payload)
    v1 = good.split("v1=")[1]
    tampered = payload.replace('"amount_received": 500', '"amount_received": 50000')
    cases = {
        "missing header": (payload, None),
        "empty header": (payload, ""),
        "wrong secret": (payload, _sign(payload, secret="whsec_wrong")),
        "tampered body": (tampered, good),
        "v0 scheme only": (payload, f"t={t},v0={v1}"),
        "no timestamp": (payload, f"v1={v1}"),
        "garbage": (payload, "not a signature"),
        "truncated mac": (payload, f"t={t},v1={v1[:-2]}"),
    }
    for name, (body, signature) in cases.items():
        resp = _post(stripe_client, body, signature)
        assert resp.status_code == 400, name
        assert resp.get_json()["error"]["code"] == "INVALID_SIGNATURE", name
    assert users.balance(user["user_id"]) == 0
    assert users.sql("SELECT count(*) FROM stripe_events WHERE event_id = :e",
                     {"e": json.loads(payload)["id"]})[0][0] == 0


def test_stale_and_future_signatures_are_400_and_recent_ones_are_accepted(stripe_client, users):
    user = users.new()
    # Margins of 30 s either side of the 300 s tolerance: `now` is truncated and a loaded machine may take
    # seconds between here and the server's own clock reading.
    now = int(time.time())
    for t in (now - 330, now + 330, now + 3600):
        resp = _deliver(stripe_client, _event("payment_intent.succeeded",
                                              _intent(user, pi=_recorded(stripe_client, user))), timestamp=t)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_SIGNATURE", t
    assert users.balance(user["user_id"]) == 0
    for t in (now - 240, now + 60):
        intent = _intent(user, amount=100, pi=_recorded(stripe_client, user, 100))
        assert _deliver(stripe_client, _event("payment_intent.succeeded", intent), timestamp=t).status_code == 200
    assert users.balance(user["user_id"]) == 200


def test_one_event_replayed_ten_times_serially_credits_once(stripe_client, users):
    user = users.new()
    payload = _event("payment_intent.succeeded", _intent(user, pi=_recorded(stripe_client, user)))
    statuses = [_deliver(stripe_client, payload).status_code for _ in range(10)]
    assert statuses == [200] * 10
    assert users.balance(user["user_id"]) == 500
    assert users.ledger_sum(user["user_id"]) == 500


def test_one_event_replayed_ten_times_in_parallel_credits_once(stripe_client, users):
    user = users.new()
    payload = _event("payment_intent.succeeded", _intent(user, pi=_recorded(stripe_client, user)))
    signature = _sign(payload)
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda _: _post(users.clone(stripe_client), payload, signature).status_code,
                                 range(10)))
    assert statuses == [200] * 10
    assert users.balance(user["user_id"]) == 500
    assert users.sql("SELECT outcome, count(*) FROM stripe_events WHERE event_id = :e GROUP BY outcome",
                     {"e": json.loads(payload)["id"]}) == [("credited", 1)]


def test_two_event_types_for_one_payment_credit_it_once(stripe_client, users):
    user = users.new()
    intent = _intent(user, amount=400, pi=_recorded(stripe_client, user, 400))
    events = [_event("checkout.session.completed", _session(user, intent["id"], amount=400)),
              _event("payment_intent.succeeded", intent)]
    for payload in events:
        assert _deliver(stripe_client, payload).status_code == 200
    assert users.balance(user["user_id"]) == 400


def test_two_event_types_for_one_payment_arriving_together_credit_it_once(stripe_client, users):
    user = users.new()
    intent = _intent(user, amount=300, pi=_recorded(stripe_client, user, 300))
    payloads = [_event("payment_intent.succeeded", intent),
                _event("checkout.session.completed", _session(user, intent["id"], amount=300))] * 5
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda p: _deliver(users.clone(stripe_client), p).status_code, payloads))
    assert statuses == [200] * 10
    assert users.balance(user["user_id"]) == 300


def test_unpaid_and_failed_payments_credit_nothing_until_the_payment_succeeds(stripe_client, users):
    user = users.new()
    pi = _recorded(stripe_client, user, 500)
    not_yet = [
        _event("checkout.session.completed", _session(user, pi, payment_status="unpaid")),
        _event("payment_intent.payment_failed", _intent(user, pi=pi, status="requires_payment_method",
                                                        amount_received=0)),
        _event("payment_intent.processing", _intent(user, pi=pi, status="processing", amount_received=0)),
    ]
    for payload in not_yet:
        assert _deliver(stripe_client, payload).status_code == 200
    assert users.balance(user["user_id"]) == 0
    # The delayed payment succeeds, then a late duplicate of the success arrives out of order.
    assert _deliver(stripe_client, _event("checkout.session.async_payment_succeeded",
                                          _session(user, pi, amount=500))).status_code == 200
    assert _deliver(stripe_client, _event("payment_intent.succeeded", _intent(user, pi=pi))).status_code == 200
    assert users.balance(user["user_id"]) == 500


def test_other_event_types_are_acknowledged_and_ignored(stripe_client, users):
    user = users.new()
    payload = _event("customer.created", {"id": "cus_1", "object": "customer",
                                          "metadata": {"user_id": user["user_id"]}})
    assert _deliver(stripe_client, payload).status_code == 200
    assert users.balance(user["user_id"]) == 0
    assert users.sql("SELECT outcome FROM stripe_events WHERE event_id = :e",
                     {"e": json.loads(payload)["id"]}) == [("ignored",)]


def _outcome(users, payload):
    return users.sql("SELECT outcome FROM stripe_events WHERE event_id = :e", {"e": json.loads(payload)["id"]})[0][0]


def test_a_signed_payment_for_an_intent_this_system_never_recorded_is_acknowledged_and_credits_nothing(
        stripe_client, users):
    user = users.new()
    # Correctly signed, naming a real user, for any amount: no top-up ordered it.
    for amount in (500, 10**13, 10**30):      # 10**30: beyond the database's bigint, still a clean 200
        payload = _event("payment_intent.succeeded", _intent(user, amount=amount))
        assert _deliver(stripe_client, payload).status_code == 200       # Stripe stops retrying
        assert _outcome(users, payload) == "unknown_intent"
    session = _event("checkout.session.completed", _session(user, f"pi_{uuid.uuid4().hex}"))
    assert _deliver(stripe_client, session).status_code == 200 and _outcome(users, session) == "unknown_intent"
    assert users.balance(user["user_id"]) == 0 and users.ledger_sum(user["user_id"]) == 0


def test_a_payment_that_differs_from_its_recorded_intent_credits_nothing_and_the_true_one_credits_once(
        stripe_client, users):
    user, other = users.new(), users.new()
    pi = _recorded(stripe_client, user, 500)
    differing = [_intent(user, pi=pi, amount=5000), _intent(user, pi=pi, amount=499),
                 _intent(user, pi=pi, amount=10**30), _intent(user, pi=pi, currency="usd"), _intent(other, pi=pi)]
    for intent in differing:
        payload = _event("payment_intent.succeeded", intent)
        assert _deliver(stripe_client, payload).status_code == 200
        assert _outcome(users, payload) == "mismatch", intent
    assert users.balance(user["user_id"]) == 0 and users.balance(other["user_id"]) == 0
    # The payment as it was ordered is still credited, once, to the recorded user.
    for _ in range(2):
        assert _deliver(stripe_client, _event("payment_intent.succeeded", _intent(user, pi=pi))).status_code == 200
    assert users.balance(user["user_id"]) == 500 and users.balance(other["user_id"]) == 0
    assert users.sql("SELECT count(*) FROM credit_ledger WHERE reference = :r", {"r": f"stripe:{pi}"}) == [(1,)]


def test_a_development_intent_is_recorded_within_the_top_up_maximum_for_an_existing_user(stripe_client, users,
                                                                                        settings):
    user = users.new()
    resp = stripe_client.post(DEV_INTENT, json={"user_id": user["user_id"], "amount": 40})
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["payment_intent_id"].startswith("pi_dev_")
    assert (body["user_id"], body["amount"], body["currency"]) == (user["user_id"], 40, settings.currency)
    assert users.sql("SELECT user_id::text, amount, currency, origin FROM stripe_payment_intents "
                     "WHERE payment_intent_id = :p", {"p": body["payment_intent_id"]}) == \
        [(user["user_id"], 40, settings.currency, "development")]
    for amount in (0, settings.topup_max_amount + 1, 10**13, "100", 100.0):
        resp = stripe_client.post(DEV_INTENT, json={"user_id": user["user_id"], "amount": amount})
        assert resp.status_code == 400 and resp.get_json()["error"]["details"][0]["field"] == "amount", amount
    assert stripe_client.post(DEV_INTENT, json={"user_id": str(uuid.uuid4()), "amount": 100}).status_code == 404
    assert users.balance(user["user_id"]) == 0


def test_development_intents_are_refused_in_production(make_client, users):
    production = make_client(environment="production", jwt_secret="p" * 40, internal_service_token="i" * 40,
                             otp_hash_secret="o" * 40, stripe_webhook_secret=WHSEC)
    resp = production.post(DEV_INTENT, json={"user_id": users.new()["user_id"], "amount": 100})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "DEVELOPMENT_ONLY"


def test_a_signed_body_that_is_not_a_stripe_event_is_400_invalid_payload(stripe_client):
    for payload in ("not json", "[1, 2]", json.dumps({"id": "evt_x", "type": "payment_intent.succeeded"})):
        resp = _deliver(stripe_client, payload)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_PAYLOAD", payload


def test_webhooks_are_503_when_the_webhook_secret_is_set_empty(make_client, stripe_client, users):
    user = users.new()
    resp = _deliver(make_client(stripe_webhook_secret=""),
                    _event("payment_intent.succeeded", _intent(user, pi=_recorded(stripe_client, user))))
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "PAYMENTS_NOT_CONFIGURED"
    assert users.balance(user["user_id"]) == 0


def test_webhooks_need_the_internal_credential_like_every_internal_route(stripe_client, users):
    payload = _event("payment_intent.succeeded", _intent(users.new()))
    resp = stripe_client.post(WEBHOOK, data=payload, headers={"Stripe-Signature": _sign(payload),
                                                              "X-Internal-Token": "wrong"})
    assert resp.status_code == 401


def test_a_top_up_is_503_payments_not_configured_without_a_stripe_key(client, users, settings):
    resp = client.post(TOPUP, json={"user_id": users.new()["user_id"], "amount": 1000})
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "PAYMENTS_NOT_CONFIGURED"
    # An amount beyond the maximum is the caller's mistake whatever the configuration.
    resp = client.post(TOPUP, json={"user_id": users.new()["user_id"], "amount": settings.topup_max_amount + 1})
    assert resp.status_code == 400 and resp.get_json()["error"]["details"][0]["field"] == "amount"



def test_a_top_up_creates_a_payment_intent_whose_success_credits_the_user_once(make_client, stand_in, users):
    stripe_api = StripeApi(SECRET_KEY, stand_in)
    client = make_client(stripe_secret_key=SECRET_KEY, stripe_api_base=stripe_api.url,
                         stripe_webhook_secret=WHSEC)
    user = users.new()
    resp = client.post(TOPUP, json={"user_id": user["user_id"], "amount": 2500})
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["amount"] == 2500 and body["client_secret"].startswith(body["payment_intent_id"] + "_secret_")
    [form] = stripe_api.forms()
    assert (form["amount"], form["currency"], form["metadata[user_id]"]) == ("2500", "sgd", user["user_id"])
    assert "Idempotency-Key" in stripe_api.server.requests[0]["headers"]
    assert users.balance(user["user_id"]) == 0

    # Stripe reports the payment; our record of the intent names the user even without metadata.
    succeeded = _intent({"user_id": None}, amount=2500, pi=body["payment_intent_id"], metadata={})
    for _ in range(2):
        assert _deliver(client, _event("payment_intent.succeeded", succeeded)).status_code == 200
    assert users.balance(user["user_id"]) == 2500
    assert users.sql("SELECT status FROM stripe_payment_intents WHERE payment_intent_id = :p",
                     {"p": body["payment_intent_id"]}) == [("succeeded",)]


def test_a_top_up_outside_the_allowed_range_or_for_an_unknown_user_is_refused(make_client, stand_in, users,
                                                                              settings):
    stripe_api = StripeApi(SECRET_KEY, stand_in)
    client = make_client(stripe_secret_key=SECRET_KEY, stripe_api_base=stripe_api.url)
    user = users.new()
    for amount in (settings.topup_min_amount - 1, settings.topup_max_amount + 1):
        resp = client.post(TOPUP, json={"user_id": user["user_id"], "amount": amount})
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_INPUT"
    resp = client.post(TOPUP, json={"user_id": str(uuid.uuid4()), "amount": 1000})
    assert resp.status_code == 404
    assert stripe_api.server.requests == []


def test_a_top_up_is_503_when_stripe_refuses_or_cannot_be_reached(make_client, stand_in, closed_port_url, users):
    stripe_api = StripeApi(SECRET_KEY, stand_in)
    user = users.new()
    for client in (make_client(stripe_secret_key="sk_test_wrong", stripe_api_base=stripe_api.url),
                   make_client(stripe_secret_key=SECRET_KEY, stripe_api_base=closed_port_url,
                               stripe_timeout_seconds=1)):
        resp = client.post(TOPUP, json={"user_id": user["user_id"], "amount": 1000})
        assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "PAYMENTS_UNAVAILABLE"
    assert users.sql("SELECT count(*) FROM stripe_payment_intents WHERE user_id = :u", {"u": user["user_id"]}) == \
        [(0,)]
