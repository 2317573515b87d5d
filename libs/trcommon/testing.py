"""Pytest plugin shared by every test suite: real PostgreSQL and RabbitMQ, fresh per test run.

PostgreSQL: TEST_DATABASE_URL (a server URL; databases are created on it), else the local server at
127.0.0.1:5432 when reachable, else a testcontainers PostgreSQL when Docker is available.
RabbitMQ: TEST_AMQP_URL (used as given), else a fresh vhost on the local broker (created through the
management API or rabbitmqctl and deleted afterwards), else a testcontainers RabbitMQ.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pika
import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .db import drop_database, ensure_database, upgrade
from .devstack import free_port
from .services import DB_SERVICES
from .settings import TestServers, child_environment

RUN_ID = uuid.uuid4().hex[:8]
LOCAL_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/"
MGMT = "http://127.0.0.1:15672/api"


def _pg_reachable(url: str) -> bool:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_server_url():
    """A PostgreSQL server URL (pointing at its `postgres` database) on which tests create databases."""
    given = TestServers().test_database_url
    if given:
        url = make_url(given)
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        yield url.set(database="postgres").render_as_string(hide_password=False)
        return
    if _pg_reachable(LOCAL_PG):
        yield LOCAL_PG
        return
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver="psycopg") as pg:
        yield make_url(pg.get_connection_url()).set(database="postgres").render_as_string(hide_password=False)


def test_database_url(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=f"tr_test_{RUN_ID}_{name}").render_as_string(hide_password=False)


def migrated_database(server_url: str, service: str, suffix: str = ""):
    """Generator for a fixture: a fresh database for `service`, migrated to head, dropped afterwards."""
    info = DB_SERVICES[service]
    url = test_database_url(server_url, info.database + suffix)
    ensure_database(url)
    try:
        upgrade(info.migrations, url)
        yield url
    finally:
        drop_database(url)


def all_migrated_databases(server_url: str, suffix: str):
    """Generator for a fixture: a fresh migrated database for each of the four services, as
    {service name: url}, all dropped afterwards."""
    gens = {name: migrated_database(server_url, name, suffix) for name in DB_SERVICES}
    try:
        yield {name: next(gen) for name, gen in gens.items()}
    finally:
        for gen in gens.values():
            next(gen, None)


def management_vhost(amqp_url: str) -> str:
    """The vhost of an AMQP URL as the management API wants it in a path (`/` is `%2F`)."""
    vhost = urllib.parse.unquote(urllib.parse.urlparse(amqp_url).path.lstrip("/")) or "/"
    return urllib.parse.quote(vhost, safe="")


def _create_vhost(name: str) -> None:
    try:
        auth = ("guest", "guest")
        requests.put(f"{MGMT}/vhosts/{name}", auth=auth, timeout=5).raise_for_status()
        requests.put(f"{MGMT}/permissions/{name}/guest", auth=auth, timeout=5,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        return
    except requests.RequestException:
        if not shutil.which("rabbitmqctl"):
            raise
    subprocess.run(["rabbitmqctl", "add_vhost", name], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True)


def _delete_vhost(name: str) -> None:
    try:
        requests.delete(f"{MGMT}/vhosts/{name}", auth=("guest", "guest"), timeout=10)
    except requests.RequestException:
        if shutil.which("rabbitmqctl"):
            subprocess.run(["rabbitmqctl", "delete_vhost", name], capture_output=True)


def _amqp_reachable(url: str) -> bool:
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(url + "?socket_timeout=2&connection_attempts=1")).close()
        return True
    except Exception:  # noqa: BLE001
        return False


def throwaway_amqp(name: str = ""):
    """Generator for a fixture: an AMQP URL whose vhost holds the topology of rabbitmq/definitions.json and
    nothing else of ours (a fresh vhost per test run and name, deleted afterwards)."""
    from .amqp import apply_definitions

    given = TestServers().test_amqp_url
    if given:
        apply_definitions(given)
        yield given
        return
    if _amqp_reachable(LOCAL_AMQP + "%2F"):
        vhost = f"tr_test_{RUN_ID}{name}"
        _create_vhost(vhost)
        url = LOCAL_AMQP + urllib.parse.quote(vhost, safe="")
        try:
            apply_definitions(url)
            yield url
        finally:
            _delete_vhost(vhost)
        return
    from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3.13-management") as rmq:
        url = f"amqp://guest:guest@{rmq.get_container_host_ip()}:{rmq.get_exposed_port(5672)}/%2F"
        apply_definitions(url)
        yield url


@pytest.fixture(scope="session")
def amqp_url():
    yield from throwaway_amqp()


def schema_differences(url: str, metadata: sa.MetaData) -> list:
    """What differs between a migrated database and the tables the code declares (empty when they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            diffs = compare_metadata(ctx, metadata)
    finally:
        engine.dispose()
    # alembic_version is Alembic's own table, not part of the declared schema.
    return [d for d in diffs if not (d[0] == "remove_table" and d[1].name == "alembic_version")]


def pytest_collection_modifyitems(config, items):
    """Tests under an `integration` folder are integration tests; tests under e2e-tests are e2e tests. Tests marked
    `runs_late` move to just before the first e2e test (or to the end): what they wait for was started by a fixture
    at the beginning of their folder and runs meanwhile, beside the other tests."""
    for item in items:
        parts = item.path.parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "e2e-tests" in parts:
            item.add_marker(pytest.mark.e2e)
    late = [item for item in items if item.get_closest_marker("runs_late")]
    if late:
        rest = [item for item in items if not item.get_closest_marker("runs_late")]
        at = next((i for i, item in enumerate(rest) if item.get_closest_marker("e2e")), len(rest))
        items[:] = rest[:at] + late + rest[at:]


# Few idle connections (the suites of all services share one server), bursts allowed for race tests.
_TEST_SETTINGS = {"environment": "test", "db_pool_size": 2, "db_max_overflow": 60}


def service_fixtures(service: str, prefix: str = "", **settings_overrides):
    """The standard fixtures of one service's integration tests, for its conftest:

        database_url, settings, container = service_fixtures("event-service")

    database_url: a fresh migrated database for the run; settings: the service's settings pointing at it;
    container: the service's composition root (its engine disposed at the end).
    A caller's tests that run the service for real name them with a `prefix` (`inventory_database_url`, …), which
    also gives them a database of their own, apart from the service's own suite in the same run.
    """
    import importlib

    info = DB_SERVICES[service]

    @pytest.fixture(scope="session", name=f"{prefix}database_url")
    def database_url(pg_server_url):
        yield from migrated_database(pg_server_url, service, f"_{prefix.rstrip('_')}" if prefix else "")

    @pytest.fixture(scope="session", name=f"{prefix}settings")
    def settings(request):
        return info.settings(database_url=request.getfixturevalue(f"{prefix}database_url"), **_TEST_SETTINGS,
                             **settings_overrides)

    @pytest.fixture(scope="session", name=f"{prefix}container")
    def container(request):
        bootstrap = importlib.import_module(f"{info.package}.bootstrap").bootstrap
        c = bootstrap(request.getfixturevalue(f"{prefix}settings"))
        yield c
        c.engine.dispose()

    return database_url, settings, container


def grpc_server_fixtures(service: str, prefix: str = ""):
    """The fixtures of a service's gRPC server (`<package>.entrypoints.grpc_server`) on the database of
    service_fixtures with the same `prefix`, for a conftest:

        start_server, grpc_server = grpc_server_fixtures("inventory-service")

    start_server(): one more server process, returned once it reports SERVING; grpc_server: the session's one.
    Every server started is stopped at the end of the session.
    """
    import importlib

    module = f"{DB_SERVICES[service].package}.entrypoints.grpc_server"

    @pytest.fixture(scope="session", name=f"{prefix}start_server")
    def start_server(request, tmp_path_factory):
        database_url = request.getfixturevalue(f"{prefix}database_url")
        health_service = importlib.import_module(module).SERVICE_NAME
        servers: list[GrpcServerProcess] = []

        def start() -> GrpcServerProcess:
            server = GrpcServerProcess(module, health_service, database_url,
                                       tmp_path_factory.mktemp("grpc-server") / "server.log")
            servers.append(server)
            server.wait_serving()
            return server

        yield start
        for server in servers:
            server.stop()

    @pytest.fixture(scope="session", name=f"{prefix}grpc_server")
    def grpc_server(request):
        return request.getfixturevalue(f"{prefix}start_server")()

    return start_server, grpc_server


def internal_client(app, settings):
    """A Flask test client that presents the internal service credential on every request."""
    client = app.test_client()
    client.environ_base["HTTP_X_INTERNAL_TOKEN"] = settings.internal_service_token
    return client


def run_together(calls, timeout: float = 30) -> list:
    """Run each of `calls` (no arguments) in its own thread, all released at once by a barrier, so they really
    overlap; returns their results in order, or the exception a call raised in its place (for the test's
    assertions to show)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def one(i, call):
        try:
            barrier.wait(timeout)
            results[i] = call()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something true (returned) or `timeout` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ChildProcess:
    """A process of ours started the way the deployment starts it (its own interpreter, settings from the
    environment), its output kept in a log file: `python -m <module>`, or `python -c <code>`."""

    def __init__(self, log_path: Path, env: dict[str, str], module: str | None = None, code: str | None = None):
        self.log_path = log_path
        argv = [sys.executable, "-m", module] if module else [sys.executable, "-c", code]
        with open(log_path, "wb") as out:
            self.proc = subprocess.Popen(argv, env=child_environment(env), stdout=out, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def wait_for(self, predicate, seconds: float = 15.0) -> None:
        """Wait until `predicate()` holds; fail with the log if the process ends or time runs out first."""
        try:
            wait_until(lambda: predicate() or self.proc.poll() is not None, seconds, interval=0.05)
        except AssertionError:
            pass
        if not predicate():
            self.stop(signal.SIGKILL)
            raise AssertionError(f"gave up waiting (exit code {self.proc.returncode}):\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, seconds: float = 15.0) -> int:
        """Send `sig` and return the exit code (a process that does not end in time is killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(seconds)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class GrpcServerProcess(ChildProcess):
    """A gRPC server of ours as the deployment runs it: `python -m <module>` in its own process on a free
    127.0.0.1 port, configured through the environment."""

    def __init__(self, module: str, health_service: str, database_url: str, log_path: Path):
        self.target = f"127.0.0.1:{free_port()}"
        self.health_service = health_service
        super().__init__(log_path, {
            "DATABASE_URL": database_url, "GRPC_BIND": self.target, "STARTUP_WAIT_SECONDS": "10",
            **{name.upper(): str(value) for name, value in _TEST_SETTINGS.items()}}, module=module)

    def health(self, timeout: float = 1.0) -> int:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(self.target) as channel:
            return health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=self.health_service), timeout=timeout).status

    def serving(self) -> bool:
        import grpc
        from grpc_health.v1 import health_pb2

        try:
            return self.health() == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False

    def wait_serving(self, seconds: float = 20.0) -> None:
        self.wait_for(self.serving, seconds)


def served_routes(app) -> set[tuple[str, str]]:
    """(method, rule) of every route an app serves, for comparing with a contract's route table."""
    return {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


@contextlib.contextmanager
def served_over_http(app):
    """The app on a real local HTTP server in a thread, for clients that must go over the wire; yields its URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


class StandIn:
    """A small HTTP server on 127.0.0.1 in a thread, standing in for a third-party API (Stripe, SMU) or recording
    what a client puts on the wire.
    `handle(method, path, headers, body) -> (status, dict)` answers each request; every request is recorded."""

    def __init__(self, handle):
        self.requests = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stand_in.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers), "body": body})
                status, answer = handle(self.command, self.path, self.headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()


class StripeApi:
    """Stripe's API for the one call user-service makes (POST /v1/payment_intents), answered as Stripe answers it,
    on a StandIn: point user-service at it with STRIPE_API_BASE and STRIPE_SECRET_KEY = `secret_key`. Every
    request is recorded (`forms()`: the form bodies sent)."""

    def __init__(self, secret_key: str, stand_in=None):
        self.secret_key = secret_key
        self.server = (stand_in or StandIn)(self.handle)
        self.url = self.server.url

    def handle(self, method, path, headers, body):
        if headers.get("Authorization") != f"Bearer {self.secret_key}":
            return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
        if (method, path) != ("POST", "/v1/payment_intents"):
            return 404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        pi = f"pi_{uuid.uuid4().hex[:24]}"
        return 200, {"id": pi, "object": "payment_intent", "amount": int(form["amount"]),
                     "currency": form["currency"], "client_secret": f"{pi}_secret_{uuid.uuid4().hex[:12]}",
                     "status": "requires_payment_method",
                     "metadata": {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")},
                     "livemode": False}

    def forms(self) -> list[dict]:
        return [{k: v[0] for k, v in urllib.parse.parse_qs(r["body"].decode()).items()} for r in self.server.requests]

    def close(self) -> None:
        self.server.close()


# --- broker and network stand-ins for fault tests ----------------------------------------------------------------

class Broker:
    """A test's hand on a RabbitMQ vhost: publish with confirms, count a queue's messages and consumers, take one
    message out."""

    def __init__(self, url: str):
        self.url = url

    def publish(self, exchange: str, routing_key: str, body: bytes, *, expiration_ms: int | None = None,
                headers: dict | None = None) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            ch = conn.channel()
            ch.confirm_delivery()
            ch.basic_publish(exchange, routing_key, body, pika.BasicProperties(
                content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent, headers=headers,
                expiration=str(expiration_ms) if expiration_ms is not None else None), mandatory=True)
        finally:
            conn.close()

    def _declared(self, queue: str):
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            return conn.channel().queue_declare(queue, passive=True).method
        finally:
            conn.close()

    def ready_messages(self, queue: str) -> int:
        return self._declared(queue).message_count

    def consumers(self, queue: str) -> int:
        return self._declared(queue).consumer_count

    def take_from(self, queue: str, wanted: bytes, seconds: float) -> bool:
        """Wait for a message with this body in `queue` and remove it; others are put back."""
        deadline = time.monotonic() + seconds
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            ch = conn.channel()
            while time.monotonic() < deadline:
                seen = []
                while True:
                    method, _props, body = ch.basic_get(queue)
                    if method is None:
                        break
                    if body == wanted:
                        ch.basic_ack(method.delivery_tag)
                        for tag in seen:
                            ch.basic_nack(tag, requeue=True)
                        return True
                    seen.append(method.delivery_tag)
                for tag in seen:
                    ch.basic_nack(tag, requeue=True)
                time.sleep(0.1)
            return False
        finally:
            conn.close()


class TcpProxy:
    """A TCP forwarder that can be started late: a database that is down, then comes back."""

    def __init__(self, port: int, upstream: tuple[str, int]):
        self.port, self.upstream = port, upstream
        self._server = None

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
