"""orchestrator-worker: the saga recovery pass, at start-up and then every RECOVERY_INTERVAL_SECONDS.

It finishes or compensates sagas of every kind (service_layer/sagas.py) interrupted by a crash of the orchestrator
or of any service, and ends those whose deadline has passed (an order whose hold lapsed unpaid). Run as
`python -m orchestrator_service.entrypoints.worker`.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from trcommon.logs import request_context
from trcommon.process import running
from trcommon.saga import recovery_pass

from ..bootstrap import Container, bootstrap
from ..settings import OrchestratorSettings

log = logging.getLogger("orchestrator.worker")


def run(c: Container, stop: threading.Event) -> None:
    """Pass after pass until `stop` is set; a pass that fails (a dependency down) is logged and retried."""
    settings = c.settings
    log.info("recovery worker started", extra={"interval_s": settings.recovery_interval_seconds})
    while not stop.is_set():
        more = False
        with request_context():
            try:
                done = recovery_pass(c.sagas, c)
                if done.examined:
                    log.info("recovery pass", extra={"examined": done.examined, "failed": done.failed})
                # A full batch, all of it driven on: more may be waiting (a burst of expiries), so no pause. A
                # pass with failures waits, so a participant that is down is not hammered.
                more = done.examined >= settings.recovery_batch and not done.failed
            except Exception as exc:  # noqa: BLE001 - a dependency being down must not kill the worker
                log.warning("recovery pass failed; retrying", extra={"error": repr(exc)})
        if settings.worker_heartbeat_file:
            Path(settings.worker_heartbeat_file).touch()
        if not more:
            stop.wait(settings.recovery_interval_seconds)


def main() -> None:
    with running(OrchestratorSettings, bootstrap, log_name="orchestrator-worker") as p:
        run(p.container, p.stop)


if __name__ == "__main__":
    main()
