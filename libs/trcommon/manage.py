"""Management commands: `python -m trcommon.manage {migrate,seed,setup} [service ...]`.

migrate: create each service's database if missing and apply its Alembic migrations.
seed:    load the demo data (README: demo accounts; idempotent).
setup:   both, then apply rabbitmq/definitions.json to the broker.
In local mode one PostgreSQL server (POSTGRES_URL) holds the four databases; EVENTS_/USERS_/ORDERS_/
SEATS_DATABASE_URL override one of them (trcommon.settings.LocalSettings).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import urllib.parse

import requests

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from .db import ensure_database, upgrade
from .services import DB_SERVICES
from .settings import LocalSettings, load_settings


def local_settings() -> LocalSettings:
    return load_settings(LocalSettings)


def database_url(name: str, local: LocalSettings | None = None) -> str:
    """A service's database in local mode (LocalSettings: its own override, else on POSTGRES_URL)."""
    return (local or local_settings()).database_url(DB_SERVICES[name].database)


def service_settings(name: str, local: LocalSettings | None = None):
    return DB_SERVICES[name].settings(database_url=database_url(name, local))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _postgres_unreachable(where: str, exc: BaseException) -> str:
    return (f"PostgreSQL is unreachable at {where} ({_first_line(exc)}). Start it: "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or set POSTGRES_URL.")


def preflight(local: LocalSettings | None = None) -> None:
    """Stop with one clear line (what, where, how to fix) if PostgreSQL or RabbitMQ cannot be reached."""
    import sqlalchemy as sa
    from .amqp import connect

    local = local or local_settings()
    server = local.postgres_url.rstrip("/")
    problems = []
    engine = sa.create_engine(make_url(server + "/postgres"), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - reported, whatever the driver raised
        problems.append(_postgres_unreachable(make_url(server).render_as_string(hide_password=True), exc))
    finally:
        engine.dispose()
    try:
        connect(local.amqp_url, "preflight").close()
    except Exception as exc:  # noqa: BLE001
        problems.append(_rabbitmq_unreachable(local.amqp_url, exc))
    if problems:
        raise SystemExit("\n".join(f"error: {p}" for p in problems))


def _rabbitmq_unreachable(url: str, exc: BaseException) -> str:
    return (f"RabbitMQ is unreachable at {url.split('@')[-1]} ({type(exc).__name__}). Start it: "
            "`rabbitmq-server -detached`, or set AMQP_URL.")


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ENABLE_MANAGEMENT = ["rabbitmq-plugins", "enable", "rabbitmq_management"]


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


def enable_management_ui(local: LocalSettings | None = None, wait_seconds: float = 30.0) -> str | None:
    """Make sure the RabbitMQ management UI answers: when it does not and the broker runs on this machine,
    enable its plugin with `rabbitmq-plugins` and wait for it. Returns the UI's URL, or None after printing
    one line on how to enable it."""
    url = (local or local_settings()).rabbitmq_management_url
    if _answers(url):
        return url
    how = f"`{' '.join(ENABLE_MANAGEMENT)}` on the broker's machine"
    tool = shutil.which(ENABLE_MANAGEMENT[0])
    if tool is None or urllib.parse.urlparse(url).hostname not in LOOPBACK_HOSTS:
        print(f"rabbitmq: the management UI ({url}) does not answer; enable it with {how}")
        return None
    print(f"rabbitmq: the management UI ({url}) does not answer; enabling it ({' '.join(ENABLE_MANAGEMENT)})")
    problem = _run_quietly([tool, *ENABLE_MANAGEMENT[1:]])
    if problem is None:
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if _answers(url):
                print(f"rabbitmq: management UI enabled ({url})")
                return url
            time.sleep(0.5)
        problem = f"still no answer after {wait_seconds:.0f} s"
    print(f"rabbitmq: the management UI ({url}) is not up ({problem}); enable it with {how}")
    return None


def _run_quietly(argv: list[str]) -> str | None:
    """Run a command; None when it succeeds, else its last line of output as the reason."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return repr(exc)
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return f"{argv[0]} exited with {done.returncode}" + (f": {lines[-1]}" if lines else "")


def migrate(names: list[str], local: LocalSettings | None = None) -> None:
    for name in names:
        settings = service_settings(name, local)
        try:
            created = ensure_database(settings.database_url)
        except OperationalError as exc:
            where = make_url(settings.database_url).render_as_string(hide_password=True)
            raise SystemExit(f"error: {_postgres_unreachable(where, exc)}") from None
        upgrade(DB_SERVICES[name].migrations, settings.database_url)
        print(f"{name}: database {'created and ' if created else ''}migrated")


def seed(names: list[str], local: LocalSettings | None = None) -> None:
    for name in names:
        DB_SERVICES[name].seed(service_settings(name, local))
        print(f"{name}: demo data loaded")


def setup_broker(local: LocalSettings | None = None) -> None:
    from .amqp import apply_definitions

    url = (local or local_settings()).amqp_url
    try:
        apply_definitions(url)
    except Exception as exc:  # noqa: BLE001 - one clear line for whatever the broker client raises
        raise SystemExit(f"error: {_rabbitmq_unreachable(url, exc)}") from None
    print("rabbitmq: definitions applied")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trcommon.manage")
    parser.add_argument("command", choices=["migrate", "seed", "setup", "broker"])
    parser.add_argument("services", nargs="*", default=list(DB_SERVICES))
    args = parser.parse_args(argv)
    local = local_settings()
    if args.command in ("migrate", "setup"):
        migrate(args.services, local)
    if args.command in ("seed", "setup"):
        seed(args.services, local)
    if args.command in ("setup", "broker"):
        setup_broker(local)


if __name__ == "__main__":
    main(sys.argv[1:])
