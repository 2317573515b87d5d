"""The backstop of the hold timer: a thread of the release-consumer process that, every
hold_sweep_interval_seconds, releases HELD seats whose held_until passed more than hold_sweep_grace_seconds ago.

A hold normally ends through its timer message; this ends it anyway when that message was lost, refused or
parked, so every hold ends (docs/design.md, invariant 4).
"""
from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import DBAPIError

from trcommon.errors import DependencyUnavailable
from trcommon.logs import request_context

from ..bootstrap import Container
from ..domain.model import HoldReleased
from ..service_layer import services

log = logging.getLogger("inventory.holds")


def log_release(released: HoldReleased, source: str, **extra) -> None:
    """One JSON line per ended hold, with how late it ended relative to held_until."""
    log.info("hold released", extra={
        "seat_id": released.seat.seat_id, "hold_id": released.hold_id,
        "held_until": released.held_until.isoformat(), "released_at": released.released_at.isoformat(),
        "late_ms": round(released.late_seconds * 1000, 1), "source": source, **extra})


class HoldSweeper:
    def __init__(self, container: Container):
        self._uow = container.uow
        self._interval = container.settings.hold_sweep_interval_seconds
        self._grace = container.settings.hold_sweep_grace_seconds
        self._batch = container.settings.hold_sweep_batch
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.released = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hold-sweeper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        log.info("hold sweeper started", extra={"interval_seconds": self._interval, "grace_seconds": self._grace})
        while not self._stopping.wait(self._interval):
            self.sweep()

    def sweep(self) -> int:
        """Release every hold lapsed for longer than the grace period; returns how many were released."""
        total = 0
        with request_context():
            try:
                while not self._stopping.is_set():
                    batch = services.release_lapsed_holds(self._uow, self._grace, self._batch)
                    for released in batch:
                        log_release(released, "sweeper")
                    total += len(batch)
                    if len(batch) < self._batch:
                        break
            except (DependencyUnavailable, DBAPIError) as exc:
                log.warning("hold sweep failed; will retry", extra={"error": repr(exc)})
            except Exception:  # noqa: BLE001 - the sweeper must outlive any single failure
                log.exception("hold sweep failed; will retry")
        self.released += total
        return total
