"""The recovery worker as the deployment runs it: its own process, stopped by SIGTERM."""
from trcommon.devstack import free_port
from trcommon.testing import ChildProcess


def test_the_worker_process_stops_cleanly_on_sigterm(tmp_path):
    beat = tmp_path / "beat"
    worker = ChildProcess(tmp_path / "worker.log", {
        "ENVIRONMENT": "test", "LOG_LEVEL": "INFO", "RECOVERY_INTERVAL_SECONDS": "0.1",
        "ORDER_SERVICE_URL": f"http://127.0.0.1:{free_port()}", "INTERNAL_TIMEOUT_SECONDS": "0.2",
        "WORKER_HEARTBEAT_FILE": str(beat)}, module="orchestrator_service.entrypoints.worker")
    worker.wait_for(beat.exists)
    assert worker.stop() == 0
    lines = worker.json_lines()
    messages = [line["message"] for line in lines]
    assert "recovery worker started" in messages
    # A pass under way when the signal came may still log its failure before the loop returns.
    assert messages[-1] == "stopped" and "stop requested" in messages, messages
    assert {line["service"] for line in lines} == {"orchestrator-worker"}
