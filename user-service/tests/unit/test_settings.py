import pytest
from pydantic import ValidationError

from trcommon.settings import DEV_STRIPE_WEBHOOK_SECRET
from user_service.settings import DEV_OTP_HASH_SECRET, UserSettings


def test_defaults_match_the_spec(monkeypatch):
    monkeypatch.delenv("OTP_TTL_SECONDS", raising=False)
    s = UserSettings()
    assert (s.port, s.otp_ttl_seconds, s.otp_max_attempts, s.otp_sends_per_hour) == (8001, 300, 5, 10)
    assert s.database_url.endswith("/users_db") and s.otp_provider == "local" and s.currency == "sgd"
    assert s.stripe_secret_key is None and s.stripe_webhook_secret == DEV_STRIPE_WEBHOOK_SECRET


def test_otp_ttl_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("OTP_TTL_SECONDS", "7")
    assert UserSettings().otp_ttl_seconds == 7


def test_the_smu_provider_needs_a_url_and_a_key():
    with pytest.raises(ValidationError):
        UserSettings(otp_provider="smu")
    assert UserSettings(otp_provider="smu", smu_otp_base_url="http://x", smu_otp_api_key="k").otp_provider == "smu"


def test_production_refuses_the_development_otp_secret():
    with pytest.raises(ValidationError):
        UserSettings(environment="production", jwt_secret="j" * 40, internal_service_token="i" * 40,
                     otp_hash_secret=DEV_OTP_HASH_SECRET)


def test_production_refuses_the_development_webhook_secret_and_takes_a_real_or_empty_one():
    real = {"environment": "production", "jwt_secret": "j" * 40, "internal_service_token": "i" * 40,
            "otp_hash_secret": "o" * 40}
    with pytest.raises(ValidationError, match="STRIPE_WEBHOOK_SECRET is the development default"):
        UserSettings(**real)
    assert UserSettings(**real, stripe_webhook_secret="whsec_live_from_the_dashboard").stripe_webhook_secret
    assert UserSettings(**real, stripe_webhook_secret="").stripe_webhook_secret == ""


def test_an_empty_smtp_host_means_no_smtp(monkeypatch):
    monkeypatch.setenv("SMTP_HOST", "")
    monkeypatch.setenv("SMTP_USER", "")
    s = UserSettings()
    assert (s.smtp_host, s.smtp_user, s.smtp_port, s.smtp_starttls) == (None, None, 587, True)


def test_an_smtp_user_needs_a_password():
    with pytest.raises(ValidationError):
        UserSettings(smtp_host="mail.example.com", smtp_user="tickets")
    assert UserSettings(smtp_host="mail.example.com", smtp_user="tickets", smtp_password="p").smtp_user == "tickets"
