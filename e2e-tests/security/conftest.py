"""Fixtures of the security tests: extra orchestrators (the public API) with their own settings, sharing every
service of the e2e stack, and clients that come from another loopback address."""
from __future__ import annotations

import dataclasses
import socket
import uuid

import pytest

from trcommon.devstack import Stack, free_port
from e2e_support import E2E_ENV, Api

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def orchestrator(stack, databases, amqp_url):
    """Start another orchestrator API on a free port with settings of its own (e.g. small rate limits); it shares
    the stack's services, databases and broker. Returns its Api."""
    started = []

    def start(**env: str) -> Api:
        ports = dataclasses.replace(stack.ports, orchestrator=free_port())
        s = Stack(db_urls=databases, amqp_url=amqp_url, ports=ports, log_dir=stack.log_dir, env={**E2E_ENV, **env})
        s.start(["orchestrator-service"])
        started.append(s)
        s.wait_healthy(60)
        return Api(s.base_url)

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def redis_url() -> str:
    host, port = "127.0.0.1", 6379
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        pytest.fail(f"Redis is not reachable on {host}:{port}: start it (redis-server --daemonize yes)")
    return REDIS_URL


@pytest.fixture
def key_prefix() -> str:
    """A counter namespace of this test alone, so runs sharing one Redis never count each other's requests."""
    return f"test-{uuid.uuid4().hex[:12]}"
