from typing import Literal

from argon2.profiles import RFC_9106_LOW_MEMORY
from pydantic import Field, field_validator, model_validator

from trcommon.settings import DEV_AMQP_URL, DEV_STRIPE_WEBHOOK_SECRET, PG_SERVER, CommonSettings

DEV_OTP_HASH_SECRET = "dev-otp-hash-secret-change-me-0123456789abcdef"


class UserSettings(CommonSettings):
    service_name: str = "user-service"
    database_url: str = f"{PG_SERVER}/users_db"
    port: int = 8001

    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile). Tests lower them.
    argon2_time_cost: int = RFC_9106_LOW_MEMORY.time_cost
    argon2_memory_cost: int = RFC_9106_LOW_MEMORY.memory_cost
    argon2_parallelism: int = RFC_9106_LOW_MEMORY.parallelism

    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 5
    otp_sends_per_hour: int = 10
    otp_provider: Literal["local", "smu"] = "local"
    # Key of the HMAC under which OTP codes are stored; the plain code is never stored.
    otp_hash_secret: str = DEV_OTP_HASH_SECRET
    smu_otp_base_url: str | None = None
    smu_otp_api_key: str | None = None
    smu_otp_api_key_header: str = "X-API-Key"
    smu_otp_timeout_seconds: float = 5.0
    # Where SMS bodies go; "outbox" writes them to users_db.sms_outbox (the only backend so far).
    sms_provider: Literal["outbox"] = "outbox"

    stripe_secret_key: str | None = None
    # Verifies the `Stripe-Signature` of webhooks. The development value lets `make topup` sign a payment
    # locally; production refuses it; an empty value turns webhooks off (503 PAYMENTS_NOT_CONFIGURED).
    stripe_webhook_secret: str | None = DEV_STRIPE_WEBHOOK_SECRET
    # Only for a local stand-in of Stripe's API; unset means api.stripe.com.
    stripe_api_base: str | None = None
    stripe_timeout_seconds: float = 10.0
    # 1 credit = 1 minor unit of this currency.
    currency: str = "sgd"
    topup_min_amount: int = 100
    topup_max_amount: int = 1_000_000

    # The notification consumer (python -m user_service.entrypoints.notification_consumer): how many messages it
    # takes at once (and delivers in one transaction), how long it waits for more once one has arrived, and its
    # e-mail sender. Without SMTP_HOST e-mails stay in users_db.email_outbox as the record.
    amqp_url: str = DEV_AMQP_URL
    notification_prefetch: int = Field(50, ge=1, le=1000)
    notification_batch_window_seconds: float = Field(0.5, ge=0, le=5)
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "TicketRemaster <no-reply@ticketremaster.local>"
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = Field(10.0, gt=0)
    # How often the sender looks for unsent e-mails when nothing woke it, how many it sends per connection, and how
    # many refusals of one message by the server it takes before giving that message up.
    email_send_interval_seconds: float = Field(5.0, gt=0)
    email_batch_size: int = Field(50, ge=1, le=1000)
    email_max_attempts: int = Field(5, ge=1)

    @field_validator("smtp_host", "smtp_user", "smtp_password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        # docker-compose passes `${SMTP_HOST:-}` through as an empty string.
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent(self):
        if self.smtp_user and self.smtp_password is None:
            raise ValueError("SMTP_USER needs SMTP_PASSWORD")
        if self.otp_provider == "smu" and not (self.smu_otp_base_url and self.smu_otp_api_key):
            raise ValueError("OTP_PROVIDER=smu needs SMU_OTP_BASE_URL and SMU_OTP_API_KEY")
        if self.environment == "production" and self.otp_hash_secret == DEV_OTP_HASH_SECRET:
            raise ValueError("OTP_HASH_SECRET is the development default; set a real secret in production")
        if self.environment == "production" and self.stripe_webhook_secret == DEV_STRIPE_WEBHOOK_SECRET:
            raise ValueError("STRIPE_WEBHOOK_SECRET is the development default; set Stripe's signing secret in "
                             "production (or an empty value to turn webhooks off)")
        if len(self.otp_hash_secret) < 32:
            raise ValueError("OTP_HASH_SECRET must be at least 32 characters")
        if not 0 < self.topup_min_amount <= self.topup_max_amount:
            raise ValueError("TOPUP_MIN_AMOUNT must be positive and not above TOPUP_MAX_AMOUNT")
        if self.otp_ttl_seconds < 1 or self.otp_max_attempts < 1 or self.otp_sends_per_hour < 1:
            raise ValueError("OTP_TTL_SECONDS, OTP_MAX_ATTEMPTS and OTP_SENDS_PER_HOUR must be positive")
        return self
