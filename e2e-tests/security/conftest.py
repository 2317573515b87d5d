"""Fixtures of the security tests: extra orchestrators (the public API) with their own settings, sharing every
service of the e2e stack, and a Redis for counters that replicas share."""
from __future__ import annotations

import socket
import uuid

import pytest

from e2e_support import Api

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def orchestrator(extra_process):
    """Start another orchestrator API with settings of its own (e.g. small rate limits), sharing the stack's
    services; returns its Api once it is healthy."""

    def start(**env: str) -> Api:
        s = extra_process("orchestrator-service", **env)
        s.wait_healthy(60)
        return Api(s.base_url)

    return start


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
