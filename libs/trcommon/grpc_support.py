"""gRPC plumbing: a client channel that stamps every call with the internal credential, the request id and a
deadline; a server interceptor that checks the credential, restores the request id and applies the one error
map of the gRPC transport; and a server runner with the standard health service and graceful stop."""
from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from concurrent import futures
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .errors import AppError, DependencyUnavailable, error_from_body
from .logs import REQUEST_ID_METADATA, current_request_id, request_context

log = logging.getLogger("trcommon.grpc")
access_log = logging.getLogger("access")

INTERNAL_TOKEN_METADATA = "x-internal-token"
APP_STATUS_METADATA = "x-app-status"
# An error that ends by itself says when (AppError.retry_after, the HTTP services' `retry_after`).
APP_RETRY_AFTER_METADATA = "x-app-retry-after"
# Its details (AppError.details, e.g. the seats at fault), as JSON.
APP_DETAILS_METADATA = "x-app-details"


class _ClientMetadata(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, token: str, timeout: float):
        self._token = token
        self._timeout = timeout

    def intercept_unary_unary(self, continuation, details, request):
        metadata = list(details.metadata or [])
        metadata.append((INTERNAL_TOKEN_METADATA, self._token))
        metadata.append((REQUEST_ID_METADATA, current_request_id()))
        details = _CallDetails(details.method, details.timeout or self._timeout, metadata,
                               details.credentials, details.wait_for_ready, details.compression)
        return continuation(details, request)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def retry_service_config(service: str, methods: list[str]) -> str:
    """A gRPC service config retrying `methods` (which must be safe to repeat) when the server is UNAVAILABLE,
    e.g. while the channel reconnects after a server restart; each attempt stays within the call's deadline."""
    return json.dumps({"methodConfig": [{
        "name": [{"service": service, "method": m} for m in methods],
        "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "1s", "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"]}}]})


def client_channel(target: str, token: str, timeout: float, service_config: str | None = None) -> grpc.Channel:
    """One long-lived channel per target; every call carries a deadline of `timeout` seconds unless given."""
    # Reconnect quickly after a server restart (gRPC's default first backoff is 1 s, during which every call
    # fails at once).
    options = [("grpc.keepalive_time_ms", 30000), ("grpc.initial_reconnect_backoff_ms", 100),
               ("grpc.min_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 2000)]
    if service_config:
        options += [("grpc.service_config", service_config), ("grpc.enable_retries", 1)]
    channel = grpc.insecure_channel(target, options=options)
    return grpc.intercept_channel(channel, _ClientMetadata(token, timeout))


# Business errors crossing the gRPC boundary: the AppError code travels in the status details, its HTTP status
# (and its retry_after, if any) in trailing metadata, so "SEAT_UNAVAILABLE" (409) raised in inventory-service
# arrives unchanged in the orchestrator; the gRPC status code itself follows gRPC's conventions for other clients (grpcurl, probes).
_HTTP_TO_GRPC = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
                 403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
                 409: grpc.StatusCode.FAILED_PRECONDITION, 410: grpc.StatusCode.FAILED_PRECONDITION,
                 429: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE}
_GRPC_TO_HTTP = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
                 grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
                 grpc.StatusCode.FAILED_PRECONDITION: 409, grpc.StatusCode.ABORTED: 409,
                 grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.RESOURCE_EXHAUSTED: 429}


def grpc_status_for(err: AppError) -> grpc.StatusCode:
    """ABORTED is reserved for lock contention (`AppError.contention`), which gRPC clients may retry."""
    if err.contention:
        return grpc.StatusCode.ABORTED
    return _HTTP_TO_GRPC.get(err.status, grpc.StatusCode.INTERNAL)


def app_error_from_rpc(exc: grpc.RpcError, service: str = "inventory-service") -> AppError:
    """Turn a failed call into the AppError the server raised (business outcome) or a 503 (transport)."""
    code = exc.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return DependencyUnavailable(f"{service} is unavailable",
                                     code="DEPENDENCY_TIMEOUT" if code == grpc.StatusCode.DEADLINE_EXCEEDED
                                     else "SERVICE_UNAVAILABLE")
    app_code, _, message = (exc.details() or "").partition(": ")
    trailing = dict(exc.trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else {}
    status = int(trailing[APP_STATUS_METADATA]) if trailing.get(APP_STATUS_METADATA, "").isdigit() \
        else _GRPC_TO_HTTP.get(code)
    if status is None:
        return error_from_body(502, None)
    retry_after = trailing.get(APP_RETRY_AFTER_METADATA, "")
    try:
        details = json.loads(trailing[APP_DETAILS_METADATA]) if APP_DETAILS_METADATA in trailing else None
    except ValueError:
        details = None
    return AppError(message or app_code, code=app_code or code.name, status=status, details=details,
                    retry_after=int(retry_after) if retry_after.isdigit() else None)


class ServerInterceptor(grpc.ServerInterceptor):
    """Checks the internal credential, restores the caller's request id, and maps AppError to a status."""

    def __init__(self, token: str):
        self._token = token.encode()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        method = handler_call_details.method
        authorised = hmac.compare_digest(metadata.get(INTERNAL_TOKEN_METADATA, "").encode(), self._token)
        is_health = method.startswith("/grpc.health.v1.Health/")
        inner = handler.unary_unary

        def behaviour(request, context):
            with request_context(metadata.get(REQUEST_ID_METADATA)):
                started = time.perf_counter()
                outcome = "OK"
                try:
                    if not (authorised or is_health):
                        outcome = "UNAUTHENTICATED"
                        context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                      "INTERNAL_CREDENTIAL_REQUIRED: internal service credential required")
                    try:
                        return inner(request, context)
                    except AppError as err:
                        outcome = err.code
                        trailing = [(APP_STATUS_METADATA, str(err.status))]
                        if err.retry_after is not None:
                            trailing.append((APP_RETRY_AFTER_METADATA, str(err.retry_after)))
                        if err.details is not None:
                            trailing.append((APP_DETAILS_METADATA, json.dumps(err.details)))
                        context.set_trailing_metadata(tuple(trailing))
                        context.abort(grpc_status_for(err), f"{err.code}: {err.message}")
                    except Exception:
                        outcome = "INTERNAL"
                        log.exception("unhandled error", extra={"method": method})
                        raise
                finally:
                    if not is_health and access_log.isEnabledFor(logging.INFO):
                        access_log.info("call", extra={
                            "method": method, "outcome": outcome,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2)})

        return grpc.unary_unary_rpc_method_handler(behaviour, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


def serve(register: Callable[[grpc.Server], None], bind: str, token: str, max_workers: int,
          service_names: list[str], stop: threading.Event) -> None:
    """Run a gRPC server until `stop` is set (trcommon.process sets it on SIGTERM/SIGINT); then stop gracefully:
    health checks answer NOT_SERVING and in-flight calls get a grace period."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                         interceptors=[ServerInterceptor(token)])
    register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if server.add_insecure_port(bind) == 0:
        raise SystemExit(f"cannot bind gRPC server to {bind}")
    server.start()
    for name in ["", *service_names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC server started", extra={"bind": bind})
    stop.wait()
    log.info("stopping gRPC server")
    health_servicer.enter_graceful_shutdown()
    server.stop(grace=5).wait()
