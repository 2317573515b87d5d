"""Composition root: builds the engine, unit-of-work factory and adapters from settings."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy.engine import Engine

from trcommon.auth import TokenService
from trcommon.db import make_engine

from .adapters.email import Mailer
from .adapters.otp_providers import LocalOtpProvider, SmuOtpProvider, otp_provider
from .adapters.passwords import Passwords
from .adapters.sms import OutboxSms, sms_backend
from .adapters.stripe_gateway import StripeGateway
from .service_layer.unit_of_work import UserUnitOfWork
from .settings import UserSettings


@dataclass
class Container:
    settings: UserSettings
    engine: Engine
    uow: partial
    passwords: Passwords
    tokens: TokenService
    otp_provider: LocalOtpProvider | SmuOtpProvider
    sms: OutboxSms
    stripe: StripeGateway
    mailer: Mailer | None       # None without SMTP_HOST: e-mails stay in email_outbox


def bootstrap(settings: UserSettings, engine: Engine | None = None) -> Container:
    """`engine` lets a second container (other settings, same database) share a pool."""
    engine = engine or make_engine(settings.database_url, settings.db_pool_size, settings.db_max_overflow)
    return Container(
        settings=settings,
        engine=engine,
        uow=partial(UserUnitOfWork, engine),
        passwords=Passwords(settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism),
        tokens=TokenService(settings.jwt_secret, settings.jwt_issuer, settings.access_token_ttl_seconds,
                            settings.refresh_token_ttl_seconds),
        otp_provider=otp_provider(settings),
        sms=sms_backend(settings.sms_provider),
        stripe=StripeGateway(settings.stripe_secret_key, settings.stripe_webhook_secret, settings.stripe_api_base,
                             settings.stripe_timeout_seconds),
        mailer=_mailer(settings),
    )


def _mailer(settings: UserSettings) -> Mailer | None:
    if not settings.smtp_host:
        return None
    return Mailer(settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_user,
                  settings.smtp_password, settings.smtp_starttls, settings.smtp_timeout_seconds)
