"""End-to-end fixtures: the whole system started as local processes on free ports, with fresh databases and a
fresh RabbitMQ vhost, called only through the public API (plus direct database reads to check invariants and
to create fresh events and seats, which the public API has no route for)."""
from __future__ import annotations

import dataclasses
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from trcommon.devstack import Ports, Stack, free_port
from trcommon.http_client import ServiceClient
from trcommon.services import DB_SERVICES
from trcommon.settings import LocalSettings, load_settings
from trcommon.testing import StripeApi, all_migrated_databases, throwaway_amqp

sys.path.insert(0, str(Path(__file__).parent))
from e2e_support import (E2E_ENV, LOG_DIR, STRIPE_SECRET_KEY, Api, Fan, FreshEvent,  # noqa: E402
                         register_and_login)




@pytest.fixture(scope="session")
def databases(pg_server_url):
    for urls in all_migrated_databases(pg_server_url, "_e2e"):
        for name, url in urls.items():
            DB_SERVICES[name].seed(DB_SERVICES[name].settings(database_url=url, environment="test"))
        yield urls


@pytest.fixture(scope="session")
def engines(databases):
    engines = {name: sa.create_engine(url, pool_size=2) for name, url in databases.items()}
    yield engines
    for e in engines.values():
        e.dispose()


@pytest.fixture(scope="session")
def amqp_url():
    """The running system's own vhost: no other suite's consumer may compete for its queues."""
    yield from throwaway_amqp("_e2e")


@pytest.fixture(scope="session")
def stripe_api():
    """Stripe's API, the one third party of a top-up, stood in for on loopback at its HTTP boundary."""
    api = StripeApi(STRIPE_SECRET_KEY)
    yield api
    api.close()


@pytest.fixture(scope="session")
def stack(databases, amqp_url, stripe_api):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for old in LOG_DIR.glob("*.log"):
        old.unlink()
    env = {**E2E_ENV, "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY, "STRIPE_API_BASE": stripe_api.url}
    s = Stack(db_urls=databases, amqp_url=amqp_url, ports=Ports.free(), env=env, log_dir=LOG_DIR)
    s.start()
    try:
        s.wait_healthy(90)
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def api(stack):
    users = ServiceClient("user-service", f"http://127.0.0.1:{stack.ports.user}",
                          load_settings(LocalSettings).internal_service_token, timeout=30)
    yield Api(stack.base_url, users)
    users.close()


@pytest.fixture
def extra_process(stack, databases, amqp_url):
    """An extra process of the orchestrator (its API on a free port, or its recovery worker) with settings of its
    own on top of the suite's, sharing every service, database and the broker. Returns its Stack: the API's
    base_url, or the worker's process."""
    started = []

    def start(process: str = "orchestrator-service", **env: str) -> Stack:
        ports = dataclasses.replace(stack.ports, orchestrator=free_port())
        s = Stack(db_urls=databases, amqp_url=amqp_url, ports=ports, log_dir=stack.log_dir, env={**E2E_ENV, **env})
        s.start([process])
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def crashing_process(extra_process):
    """An extra process of the orchestrator (its API or its recovery worker) that dies at the given failpoint
    (docs/sagas.md)."""

    def start(failpoint: str, process: str = "orchestrator-service") -> Stack:
        return extra_process(process, FAILPOINTS=failpoint)

    return start


@pytest.fixture
def crashing_api(crashing_process, api):
    """An extra orchestrator API that dies at the given failpoint."""

    def start(failpoint: str) -> Api:
        s = crashing_process(failpoint)
        s.wait_healthy(30)
        return Api(s.base_url, api.users)

    return start


@pytest.fixture
def fan(api) -> Fan:
    return register_and_login(api)


@pytest.fixture
def fresh_event(engines):
    """A new event in a new venue with its own seats (the public API has no route to create events)."""

    def make(seats: int = 10, price: int = 50) -> FreshEvent:
        venue, hall, other_hall, event = (str(uuid.uuid4()) for _ in range(4))
        with engines["event-service"].begin() as conn:
            conn.execute(sa.text("INSERT INTO venues (venue_id, name) VALUES (:v, :n)"),
                         {"v": venue, "n": f"Venue {venue[:8]}"})
            for h, n in ((hall, "Hall 1"), (other_hall, "Hall 2")):
                conn.execute(sa.text("INSERT INTO halls (hall_id, venue_id, name) VALUES (:h, :v, :n)"),
                             {"h": h, "v": venue, "n": n})
            conn.execute(sa.text("INSERT INTO events (event_id, name, venue_id, hall_id, starts_at, status) "
                                 "VALUES (:e, :n, :v, :h, :s, 'ON_SALE')"),
                         {"e": event, "n": f"Gig {event[:8]}", "v": venue, "h": hall,
                          "s": datetime.now(timezone.utc) + timedelta(days=7)})
        seat_ids = [str(uuid.uuid4()) for _ in range(seats)]
        with engines["inventory-service"].begin() as conn:
            conn.execute(sa.text("INSERT INTO seats (seat_id, event_id, section, row, number, price, status) "
                                 "VALUES (:s, :e, 'A', '1', :n, :p, 'AVAILABLE')"),
                         [{"s": s, "e": event, "n": i + 1, "p": price} for i, s in enumerate(seat_ids)])
        return FreshEvent(event, hall, other_hall, seat_ids, price)

    return make


@pytest.fixture(scope="session", autouse=True)
def audit_at_end(databases):
    """After the whole e2e suite, the invariants of docs/design.md must hold across the four databases."""
    yield
    from trcommon.audit import audit

    # A hold whose timer was never published (a crash test) is ended by the sweeper, which waits
    # HOLD_SWEEP_GRACE_SECONDS in this suite: the audit allows that long plus a margin.
    violations, _stats = audit(databases, tolerance_seconds=float(E2E_ENV["HOLD_SWEEP_GRACE_SECONDS"]) + 10)
    assert not violations, "\n".join(map(str, violations))
