"""Run the whole system as local processes: `python -m trcommon.devstack run` (what `make run` calls).

Without Docker, the five services (plus inventory's release consumer and the orchestrator's recovery worker)
run as child processes against a local PostgreSQL and RabbitMQ; the orchestrator listens on :8000 and enforces
the JWT rules Kong enforces in the containerised deployment. The e2e tests start the same Stack on other ports
and databases.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .process import stop_on_signals
from .services import ROOT
from .settings import child_environment


@dataclass
class Ports:
    orchestrator: int = 8000
    user: int = 8001
    order: int = 8002
    event: int = 8003
    inventory: int = 50051

    @classmethod
    def free(cls) -> "Ports":
        return cls(*(free_port() for _ in range(5)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# Locally the four databases share one PostgreSQL server (max_connections is 100 by default), so each process
# keeps a pool no larger than its own concurrency: 8 threads per internal HTTP service, 32 for the orchestrator,
# 10 gRPC workers, and a few connections for the release consumer and its sweeper. On two cores fewer threads
# measured better than more (make bench, 16/32/20 -> 8/16/10: purchases 96.7 -> 105.9/s, services CPU 14.5 ->
# 13.0 ms each; 4/8/6 gave no more), and 8*3 + 10 + 4 = 38 connections leave room for tools and tests. The
# orchestrator (no database pool) has a thread per concurrent fan of the bench: each of its threads waits on
# three services per request, and 16 left holds short of CPU (holds 310.6 -> 331.9/s with 32, purchases equal).
HTTP_THREADS = 8
GRPC_WORKERS = 10
ORCHESTRATOR_THREADS = 32


def _pool(size: int) -> dict[str, str]:
    return {"DB_POOL_SIZE": str(size), "DB_MAX_OVERFLOW": "0"}


# One WSGI server for every HTTP service: granian (HTTP parsed in Rust, a pool of blocking threads for the app).
# make bench measured 20% less CPU per call than gunicorn's threaded worker on the internal services (order-service
# 4.25 -> 3.4 ms per purchase, user-service 1.65 -> 1.35 ms) and 15-20% less orchestrator CPU at the public edge
# (README, Performance). A request head (request line and headers) is at most HTTP1_BUFFER_BYTES: a longer one gets
# granian's own 431, before any app code runs, with no body (e2e-tests/test_server_errors.py).
HTTP1_BUFFER_BYTES = 16384

# granian's own messages as JSON lines, like every other log line (the path is relative to the repository root,
# the working directory of every process here and /app in the images).
GRANIAN_LOGGING = "libs/trcommon/granian_logging.json"


def _granian(factory: str, port: int, threads: int = HTTP_THREADS) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", factory,
            "--blocking-threads", str(threads), "--host", "127.0.0.1", "--port", str(port), "--http", "1",
            "--no-ws", "--http1-buffer-size", str(HTTP1_BUFFER_BYTES), "--log-level", "warning",
            "--log-config", GRANIAN_LOGGING, "--workers-kill-timeout", "5"]


@dataclass
class Stack:
    """The processes of the system. `db_urls` maps service folder name → database URL."""

    db_urls: dict[str, str]
    amqp_url: str
    ports: Ports = field(default_factory=Ports)
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None          # None: stream prefixed output to this terminal
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def commands(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        p = self.ports
        py = sys.executable
        return {
            "event-service": (_granian("event_service.entrypoints.app:create_app", p.event),
                              {"PORT": str(p.event), "DATABASE_URL": self.db_urls["event-service"], **_pool(HTTP_THREADS)}),
            "user-service": (_granian("user_service.entrypoints.app:create_app", p.user),
                             {"PORT": str(p.user), "DATABASE_URL": self.db_urls["user-service"], **_pool(HTTP_THREADS)}),
            "order-service": (_granian("order_service.entrypoints.app:create_app", p.order),
                              {"PORT": str(p.order), "DATABASE_URL": self.db_urls["order-service"], **_pool(HTTP_THREADS)}),
            "inventory-service": ([py, "-m", "inventory_service.entrypoints.grpc_server"],
                                  {"GRPC_BIND": f"127.0.0.1:{p.inventory}", "GRPC_MAX_WORKERS": str(GRPC_WORKERS),
                                   "DATABASE_URL": self.db_urls["inventory-service"], **_pool(GRPC_WORKERS)}),
            "inventory-release-consumer": ([py, "-m", "inventory_service.entrypoints.release_consumer"],
                                           {"DATABASE_URL": self.db_urls["inventory-service"], **_pool(4)}),
            "user-notification-consumer": ([py, "-m", "user_service.entrypoints.notification_consumer"],
                                           {"DATABASE_URL": self.db_urls["user-service"], **_pool(4)}),
            "order-outbox-relay": ([py, "-m", "order_service.entrypoints.outbox_relay"],
                                   {"DATABASE_URL": self.db_urls["order-service"], **_pool(2)}),
            "orchestrator-service": (_granian("orchestrator_service.entrypoints.app:create_app",
                                              p.orchestrator, threads=ORCHESTRATOR_THREADS),
                                     {"PORT": str(p.orchestrator)}),
            "orchestrator-worker": ([py, "-m", "orchestrator_service.entrypoints.worker"], {}),
        }

    def common_env(self) -> dict[str, str]:
        p = self.ports
        return child_environment({
            "AMQP_URL": self.amqp_url,
            "USER_SERVICE_URL": f"http://127.0.0.1:{p.user}",
            "ORDER_SERVICE_URL": f"http://127.0.0.1:{p.order}",
            "EVENT_SERVICE_URL": f"http://127.0.0.1:{p.event}",
            "INVENTORY_GRPC_TARGET": f"127.0.0.1:{p.inventory}",
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }, drop=["DATABASE_URL"])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.orchestrator}"

    def start(self, names: list[str] | None = None) -> None:
        base = self.common_env()
        for name, (argv, extra) in self.commands().items():
            if names is not None and name not in names:
                continue
            env = {**base, **extra}
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f"{name}.log", "ab")
                proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                out.close()
            else:
                proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                threading.Thread(target=_pump, args=(name, proc), daemon=True).start()
            self.procs[name] = proc

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode} during start-up"
                                       + (f" (see {self.log_dir / (name + '.log')})" if self.log_dir else ""))
            try:
                resp = requests.get(self.base_url + "/health", timeout=3)
                if resp.status_code == 200:
                    return
                last = resp.text
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.3)
        raise RuntimeError(f"the system did not become healthy within {timeout:.0f} s: {last}")

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL a process (fault tests)."""
        self.signal(name, signal.SIGKILL)
        self.procs[name].wait(10)

    def restart(self, name: str) -> None:
        if self.procs[name].poll() is None:
            self.kill(name)
        self.start([name])

    def stop(self) -> None:
        for name in self.procs:
            try:
                self.signal(name, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.signal(name, signal.SIGKILL)
                proc.wait(5)


def _pump(name: str, proc: subprocess.Popen) -> None:
    width = len("inventory-release-consumer")
    for line in iter(proc.stdout.readline, b""):
        sys.stdout.write(f"{name:<{width}} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def run() -> int:
    """`make run`: check the infrastructure, prepare databases and broker, start everything, wait for Ctrl-C."""
    from . import manage
    from .services import DB_SERVICES

    local = manage.local_settings()
    ports = Ports(orchestrator=local.port)
    busy = [p for p in (ports.orchestrator, ports.user, ports.order, ports.event, ports.inventory) if port_in_use(p)]
    if busy:
        print(f"error: port(s) {', '.join(map(str, busy))} already in use — is TicketRemaster already running? "
              "Stop it (Ctrl-C in its terminal) or free the port(s).", file=sys.stderr)
        return 1
    manage.preflight(local)
    manage.migrate(list(DB_SERVICES), local)
    manage.seed(list(DB_SERVICES), local)
    manage.setup_broker(local)
    management_ui = manage.enable_management_ui(local)
    stack = Stack(db_urls={name: manage.database_url(name, local) for name in DB_SERVICES},
                  amqp_url=local.amqp_url, ports=ports)
    stop = stop_on_signals()
    stack.start()
    try:
        stack.wait_healthy(90)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        stack.stop()
        return 1
    ui = f", RabbitMQ UI: {management_ui}" if management_ui else ""
    print(f"\nTicketRemaster is up: public API {local.public_url}  (docs: {local.public_url}/docs{ui}). "
          "Ctrl-C stops everything.\n", flush=True)
    while not stop.wait(0.5):
        dead = [n for n, p in stack.procs.items() if p.poll() is not None]
        if dead:
            print(f"error: {', '.join(dead)} stopped unexpectedly; stopping everything", file=sys.stderr)
            break
    stack.stop()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["run"]:
        raise SystemExit("usage: python -m trcommon.devstack run")
    raise SystemExit(run())
