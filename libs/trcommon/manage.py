"""Management commands: `python -m trcommon.manage {migrate,seed,setup} [service ...]`.

migrate: create each service's database if missing and apply its Alembic migrations.
seed:    load the demo data of SPEC §9 (idempotent).
setup:   both, then apply rabbitmq/definitions.json to the broker.
In local mode one PostgreSQL server (POSTGRES_URL) holds the four databases; EVENTS_/USERS_/ORDERS_/
SEATS_DATABASE_URL override one of them.
"""
from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from .db import ensure_database, upgrade
from .services import DB_SERVICES
from .settings import PG_SERVER

ENV_PREFIX = {"event-service": "EVENTS", "user-service": "USERS", "order-service": "ORDERS",
              "inventory-service": "SEATS"}


def database_url(name: str) -> str:
    """A service's database in local mode: <PREFIX>_DATABASE_URL, else POSTGRES_URL + the service's database."""
    server = os.environ.get("POSTGRES_URL", PG_SERVER).rstrip("/")
    return os.environ.get(f"{ENV_PREFIX[name]}_DATABASE_URL") or f"{server}/{DB_SERVICES[name].database}"


def service_settings(name: str):
    return DB_SERVICES[name].settings(database_url=database_url(name))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _postgres_unreachable(where: str, exc: BaseException) -> str:
    return (f"PostgreSQL is unreachable at {where} ({_first_line(exc)}). Start it: "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or set POSTGRES_URL.")


def preflight() -> None:
    """Stop with one clear line (what, where, how to fix) if PostgreSQL or RabbitMQ cannot be reached."""
    import sqlalchemy as sa
    from .amqp import connect

    server = os.environ.get("POSTGRES_URL", PG_SERVER).rstrip("/")
    problems = []
    engine = sa.create_engine(make_url(server + "/postgres"), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - reported, whatever the driver raised
        problems.append(_postgres_unreachable(make_url(server).render_as_string(hide_password=True), exc))
    finally:
        engine.dispose()
    url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    try:
        connect(url, "preflight").close()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"RabbitMQ is unreachable at {url.split('@')[-1]} ({type(exc).__name__}). Start it: "
                        "`rabbitmq-server -detached`, or set AMQP_URL.")
    if problems:
        raise SystemExit("\n".join(f"error: {p}" for p in problems))


def migrate(names: list[str]) -> None:
    for name in names:
        settings = service_settings(name)
        try:
            created = ensure_database(settings.database_url)
        except OperationalError as exc:
            where = make_url(settings.database_url).render_as_string(hide_password=True)
            raise SystemExit(f"error: {_postgres_unreachable(where, exc)}") from None
        upgrade(DB_SERVICES[name].migrations, settings.database_url)
        print(f"{name}: database {'created and ' if created else ''}migrated")


def seed(names: list[str]) -> None:
    for name in names:
        DB_SERVICES[name].seed(service_settings(name))
        print(f"{name}: demo data loaded")


def setup_broker() -> None:
    from .amqp import apply_definitions

    url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    try:
        apply_definitions(url)
    except Exception as exc:  # noqa: BLE001 - one clear line for whatever the broker client raises
        raise SystemExit(f"error: RabbitMQ is unreachable at {url.split('@')[-1]} ({type(exc).__name__}). "
                         "Start it: `rabbitmq-server -detached`, or set AMQP_URL.") from None
    print("rabbitmq: definitions applied")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trcommon.manage")
    parser.add_argument("command", choices=["migrate", "seed", "setup", "broker"])
    parser.add_argument("services", nargs="*", default=list(DB_SERVICES))
    args = parser.parse_args(argv)
    if args.command in ("migrate", "setup"):
        migrate(args.services)
    if args.command in ("seed", "setup"):
        seed(args.services)
    if args.command in ("setup", "broker"):
        setup_broker()


if __name__ == "__main__":
    main(sys.argv[1:])
