"""How every process of ours starts and stops, written once.

Start (`start`): settings read once from the environment (one clear line and exit 2 when a value is invalid),
JSON logging under the service's name, the composition root, and a bounded wait for what the process needs (its
database, the broker), so that a process started before its dependencies waits instead of failing its first
requests.

Stop: a process we run ourselves (`running`: the gRPC server, the release consumer, the recovery worker) turns
SIGTERM and SIGINT into a `threading.Event` its loop watches, and closes its composition root on the way out.
A Flask app (`start_app`) runs under granian, which owns the signals; its composition root is closed when the
worker process exits.

Units of work inside a process (a request, a call, a message, a pass of a loop) run under
`trcommon.logs.request_context`.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .logs import configure_logging
from .settings import CommonSettings, load_settings

log = logging.getLogger("trcommon.process")

S = TypeVar("S", bound=CommonSettings)
C = TypeVar("C")


def start(settings_class: type[S], bootstrap: Callable[[S], C], *, settings: S | None = None,
          container: C | None = None, log_name: str | None = None, database: bool = False,
          broker: bool = False) -> tuple[S, C]:
    """Settings (from the environment unless given), logging, the composition root (built unless given, e.g. by
    tests) and, for a root built here, a bounded wait (STARTUP_WAIT_SECONDS) for the database
    (`container.engine`) and the broker (`settings.amqp_url`) when asked for."""
    from .amqp import wait_for_broker
    from .db import wait_for_database

    settings = settings or load_settings(settings_class)
    configure_logging(log_name or settings.service_name, settings.log_level)
    if container is None:
        container = bootstrap(settings)
        try:
            if database:
                wait_for_database(container.engine, settings.startup_wait_seconds)
            if broker:
                wait_for_broker(settings.amqp_url, settings.startup_wait_seconds)
        except BaseException:
            close(container)
            raise
    return settings, container


def start_app(settings_class: type[S], bootstrap: Callable[[S], C], *, settings: S | None = None,
              container: C | None = None, **needs: bool) -> tuple[S, C]:
    """`start` for a WSGI app: the WSGI server owns the signals; a composition root built here is closed when the
    process exits (one given by a caller stays the caller's to close)."""
    own = container is None
    settings, container = start(settings_class, bootstrap, settings=settings, container=container, **needs)
    if own:
        atexit.register(close, container)
    return settings, container


def close(container: Any) -> None:
    """Release what a composition root holds: its own `close()` when it has one, else its database pool."""
    closer = getattr(container, "close", None)
    if callable(closer):
        closer()
        return
    engine = getattr(container, "engine", None)
    if engine is not None:
        engine.dispose()


def stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    """Set `stop` (a new event unless given) on SIGTERM or SIGINT; call from the main thread."""
    stop = stop if stop is not None else threading.Event()

    def _handler(signum, _frame):
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


@dataclass(frozen=True)
class Process(Generic[S, C]):
    settings: S
    container: C
    stop: threading.Event      # set by SIGTERM/SIGINT; the process's loop returns when it is set


# The niceness of work that may wait (delivering notifications): on a machine the sale saturates, the scheduler then
# gives the CPU to what a fan or a hold's timer waits for first, and the notifications follow seconds later.
BACKGROUND_NICENESS = 10


@contextmanager
def running(settings_class: type[S], bootstrap: Callable[[S], C], *, background: bool = False,
            **start_options) -> Iterator[Process[S, C]]:
    """A long-running process of ours, from start-up to graceful stop:

        with running(InventorySettings, bootstrap, database=True) as p:
            loop_until(p.stop)

    `start_options` are `start`'s. `background`: the process's work may wait (it runs at BACKGROUND_NICENESS).
    On leaving the block the composition root is closed."""
    if background:
        os.nice(BACKGROUND_NICENESS)
    settings, container = start(settings_class, bootstrap, **start_options)
    stop = stop_on_signals()
    try:
        yield Process(settings, container, stop)
    finally:
        close(container)
        log.info("stopped")
