"""Typed settings read once from the environment, validated at start-up."""
from __future__ import annotations

import sys
from typing import Literal, TypeVar

from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-jwt-secret-change-me-0123456789abcdef"
DEV_INTERNAL_TOKEN = "dev-internal-token-change-me"
DEV_QR_SECRET = "dev-qr-secret-change-me-0123456789abcdef"

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


class CommonSettings(BaseSettings):
    """Settings every service reads. Service settings subclass this."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_issuer: str = "ticketremaster"
    internal_service_token: str = DEV_INTERNAL_TOKEN
    # Deadline for every internal call (HTTP and gRPC), in seconds.
    internal_timeout_seconds: float = 5.0
    db_pool_size: int = 20
    db_max_overflow: int = 10
    startup_wait_seconds: float = 30.0

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self):
        if self.environment == "production":
            for name, dev in (("jwt_secret", DEV_JWT_SECRET), ("internal_service_token", DEV_INTERNAL_TOKEN),
                              ("qr_secret", DEV_QR_SECRET)):
                if getattr(self, name, None) == dev:
                    raise ValueError(f"{name.upper()} is the development default; set a real secret in production")
        if len(self.jwt_secret) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
        return self


S = TypeVar("S", bound=CommonSettings)


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
