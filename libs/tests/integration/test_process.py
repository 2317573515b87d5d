"""trcommon.process: how every process starts (settings, logging, bounded dependency waits) and stops (signals
→ stop event → resources closed), with real processes, real signals and real (closed) ports."""
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

from trcommon.devstack import free_port
from trcommon.process import start
from trcommon.settings import CommonSettings
from trcommon.testing import ChildProcess

# A process built on the runner: its composition root says when it is closed, its loop waits for the stop event.
PROGRAM = textwrap.dedent("""
    import logging
    from trcommon.process import running
    from trcommon.settings import CommonSettings

    class Settings(CommonSettings):
        service_name: str = "runner-test"

    class Root:
        def __init__(self, settings):
            self.settings = settings
        def close(self):
            logging.getLogger("root").info("root closed")

    with running(Settings, Root) as p:
        logging.getLogger("loop").info("looping")
        while not p.stop.wait(0.05):
            pass
        logging.getLogger("loop").info("loop ended")
""")


class Settings(CommonSettings):
    service_name: str = "runner-test"
    amqp_url: str = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"      # nothing listens there


@pytest.fixture(autouse=True)
def _keep_test_logging():
    """start() configures the root logger as a service does; give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_sets_the_stop_event_and_the_process_closes_its_root_and_exits_0(tmp_path, sig):
    proc = ChildProcess(tmp_path / "out.log", {"LOG_LEVEL": "INFO"}, code=PROGRAM)
    proc.wait_for(lambda: '"looping"' in proc.log())
    assert proc.stop(sig) == 0
    lines = proc.json_lines()
    messages = [line["message"] for line in lines]
    assert messages[-4:] == ["stop requested", "loop ended", "root closed", "stopped"], messages
    assert lines[-4]["signal"] == sig.name
    assert {line["service"] for line in lines} == {"runner-test"}


def test_a_missing_database_ends_start_up_after_the_bounded_wait_and_closes_the_root():
    closed = []

    class Root:
        def __init__(self, settings):
            self.engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")

        def close(self):
            closed.append(True)

    started = time.monotonic()
    with pytest.raises(SystemExit) as exc:
        start(Settings, Root, settings=Settings(startup_wait_seconds=1), database=True)
    assert 1 <= time.monotonic() - started < 10
    assert "is unreachable" in str(exc.value) and closed == [True]


def test_a_missing_broker_ends_start_up_after_the_bounded_wait():
    with pytest.raises(SystemExit) as exc:
        start(Settings, lambda s: object(), settings=Settings(startup_wait_seconds=1), broker=True)
    assert "RabbitMQ at 127.0.0.1 is unreachable" in str(exc.value)


def test_a_given_root_is_used_as_is_without_waiting():
    root = object()
    started = time.monotonic()
    settings, container = start(Settings, lambda s: pytest.fail("must not build"), container=root,
                                database=True, broker=True)
    assert container is root and settings.service_name == "runner-test" and time.monotonic() - started < 1


@pytest.mark.parametrize("module", ["inventory_service.entrypoints.grpc_server",
                                    "inventory_service.entrypoints.release_consumer",
                                    "order_service.entrypoints.outbox_relay",
                                    "orchestrator_service.entrypoints.worker"])
def test_every_entry_point_stops_on_an_invalid_setting_with_one_clear_line(module):
    env = {**os.environ, "STARTUP_WAIT_SECONDS": "not-a-number"}
    done = subprocess.run([sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "configuration error: STARTUP_WAIT_SECONDS: Input should be a valid number, unable to parse string as a number"]
