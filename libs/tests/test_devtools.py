"""The development top-up's rules that need no running system (the e2e test runs it against one)."""
from pathlib import Path

import pytest
import stripe
import yaml

from trcommon import devtools
from trcommon.settings import DEV_STRIPE_WEBHOOK_SECRET
from trcontracts.users import PaymentIntentRecord


def test_the_signed_event_verifies_with_stripes_own_check_and_reports_the_recorded_intent_paid():
    recorded = PaymentIntentRecord(payment_intent_id="pi_dev_1", user_id="9a88645d-0000-4000-8000-000000000001",
                                   amount=1000, currency="sgd")
    payload, header = devtools.signed_payment_webhook(recorded, "whsec_x")
    event = stripe.Webhook.construct_event(payload, header, "whsec_x", tolerance=300)
    assert event["type"] == "payment_intent.succeeded"
    intent = event["data"]["object"]
    assert (intent["id"], intent["amount_received"], intent["currency"], intent["metadata"]["user_id"]) == (
        "pi_dev_1", 1000, "sgd", "9a88645d-0000-4000-8000-000000000001")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other", tolerance=300)


def test_it_refuses_to_run_in_production(monkeypatch, capsys):
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(SystemExit) as exc:
        devtools.main(["topup", "--email", "a@example.com", "--amount", "100"])
    assert exc.value.code == 2 and "ENVIRONMENT=production" in capsys.readouterr().err


def test_it_refuses_an_amount_below_one(capsys):
    with pytest.raises(SystemExit) as exc:
        devtools.main(["topup", "--email", "a@example.com", "--amount", "0"])
    assert exc.value.code == 2 and "--amount must be at least 1" in capsys.readouterr().err


def test_docker_compose_gives_user_service_the_same_development_webhook_secret():
    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    value = compose["services"]["user-service"]["environment"]["STRIPE_WEBHOOK_SECRET"]
    assert value == "${STRIPE_WEBHOOK_SECRET:-%s}" % DEV_STRIPE_WEBHOOK_SECRET
