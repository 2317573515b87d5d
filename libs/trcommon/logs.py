"""Structured logging: one JSON object per line, carrying the request id of the work in progress.

The request id travels in the `X-Request-ID` HTTP header, the `x-request-id` gRPC metadata key and the
`x-request-id` AMQP message header; `request_id_var` holds it for the current thread or task.
"""
from __future__ import annotations

import contextvars
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pythonjsonlogger.orjson import OrjsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_METADATA = "x-request-id"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return request_id_var.get()


def safe_request_id(value: str | None) -> str:
    """Accept a caller's request id only if it is short and printable; otherwise make a new one."""
    if value and len(value) <= 128 and value.isascii() and value.isprintable():
        return value
    return new_request_id()


@contextmanager
def request_context(rid: str | None = None) -> Iterator[str]:
    """The one way to run a unit of work (a request, a call, a message, a pass of a loop) under a request id.

    `rid` is the caller's id (an HTTP header, gRPC metadata, an AMQP header), checked with safe_request_id;
    None or an unusable value starts a new one. The previous id is restored on exit, even on an exception.
    """
    rid = safe_request_id(rid)
    token = request_id_var.set(rid)
    try:
        yield rid
    finally:
        request_id_var.reset(token)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = request_id_var.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    # A line carries neither thread, process nor source line: the logging module is told not to look them up for
    # every record (the logging HOWTO's "Optimization"), and lines are written by orjson.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Nor to walk the stack for the caller's file and line on every record (no line prints them); an exception's
    # traceback is still written in full.
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        OrjsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(request_id)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("pika", "urllib3", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
