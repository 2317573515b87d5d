"""Calls safe to repeat survive a server that is just coming back (real gRPC server on loopback)."""
import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from trcommon.devstack import free_port
from trcommon.grpc_support import client_channel, retry_service_config


def _start_server_later(port: int, delay: float) -> list:
    holder = []

    def start():
        time.sleep(delay)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        holder.append(server)

    threading.Thread(target=start, daemon=True).start()
    return holder


def test_a_retried_call_reaches_a_server_that_comes_up_a_moment_later():
    port = free_port()
    started = _start_server_later(port, 0.15)
    channel = client_channel(f"127.0.0.1:{port}", "t", 5, retry_service_config("grpc.health.v1.Health", ["Check"]))
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        channel.close()
        for s in started:
            s.stop(0)


def test_without_a_retry_policy_the_same_call_fails_fast_as_unavailable():
    port = free_port()
    started = _start_server_later(port, 0.15)
    channel = client_channel(f"127.0.0.1:{port}", "t", 5)
    try:
        with pytest.raises(grpc.RpcError) as exc:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        channel.close()
        time.sleep(0.2)
        for s in started:
            s.stop(0)
