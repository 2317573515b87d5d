"""Typed settings read once from the environment, validated at start-up."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Literal, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-jwt-secret-change-me-0123456789abcdef"
DEV_INTERNAL_TOKEN = "dev-internal-token-change-me"
# The development QR signing key: an Ed25519 private key as base64 of its 32 raw bytes (docs: README, At the gate).
DEV_QR_SIGNING_KEY = "Y1rkMgxqWt6Mn67S7bLJ0K+W2ZbfzbIOFUr7QRWcVN4="
# Signs the development top-up (`make topup`) as Stripe would sign a real webhook; refused in production.
DEV_STRIPE_WEBHOOK_SECRET = "whsec_dev_ticketremaster_change_me"

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DEV_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


class CommonSettings(BaseSettings):
    """Settings every service reads. Service settings subclass this."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_issuer: str = "ticketremaster"
    # Token lifetimes: user-service issues with them, every verifier refuses a token whose exp - iat is longer.
    access_token_ttl_seconds: int = Field(900, ge=1)
    refresh_token_ttl_seconds: int = Field(1209600, ge=1)
    internal_service_token: str = DEV_INTERNAL_TOKEN
    # Deadline for every internal call (HTTP and gRPC), in seconds.
    internal_timeout_seconds: float = 5.0
    db_pool_size: int = 20
    db_max_overflow: int = 10
    startup_wait_seconds: float = 30.0
    # The largest request body read (413 beyond it): every body this system takes is a small JSON object or a
    # Stripe event.
    max_body_bytes: int = Field(64 * 1024, ge=1024)

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self):
        if self.environment == "production":
            for name, dev in (("jwt_secret", DEV_JWT_SECRET), ("internal_service_token", DEV_INTERNAL_TOKEN),
                              ("qr_signing_key", DEV_QR_SIGNING_KEY)):
                if getattr(self, name, None) == dev:
                    raise ValueError(f"{name.upper()} is the development default; set a real secret in production")
        if len(self.jwt_secret) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
        return self


class LocalSettings(BaseSettings):
    """Settings of the local-mode commands (`make run`, migrate, seed, audit, the development tools): where the
    one PostgreSQL server holding the four databases and the broker are, and how to reach the running system."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Literal["development", "test", "production"] = "development"
    postgres_url: str = PG_SERVER
    # Each overrides one database (otherwise <postgres_url>/<name>).
    events_database_url: str | None = None
    users_database_url: str | None = None
    orders_database_url: str | None = None
    seats_database_url: str | None = None
    amqp_url: str = DEV_AMQP_URL
    # The operators' window; `make run` enables the plugin when this does not answer and the broker is local.
    rabbitmq_management_url: str = "http://localhost:15672"
    # The public API's port in local mode.
    port: int = 8000
    user_service_url: str = "http://127.0.0.1:8001"
    internal_service_token: str = DEV_INTERNAL_TOKEN
    stripe_webhook_secret: str = DEV_STRIPE_WEBHOOK_SECRET

    def database_url(self, database: str) -> str:
        """The URL of one of the four databases, by name (`events_db`, `users_db`, `orders_db`, `seats_db`)."""
        override = {"events_db": self.events_database_url, "users_db": self.users_database_url,
                    "orders_db": self.orders_database_url, "seats_db": self.seats_database_url}[database]
        return override or f"{self.postgres_url.rstrip('/')}/{database}"

    @property
    def public_url(self) -> str:
        return f"http://localhost:{self.port}"


class TestServers(BaseSettings):
    """Where the test suites find PostgreSQL and RabbitMQ when not the local ones (docs: README, Tests)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    test_database_url: str | None = None
    test_amqp_url: str | None = None


def child_environment(values: dict[str, str], drop: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a child process of ours: this process's environment without the names in `drop`, with
    `values` set; the child's settings classes read it from there."""
    env = {name: value for name, value in os.environ.items() if name not in set(drop)}
    env.update(values)
    return env


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides) -> S:
    """Read settings from the environment; on an invalid or missing value stop with one clear line."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        print(f"configuration error: {problems}", file=sys.stderr)
        raise SystemExit(2) from None
