"""The recovery worker's loop with real (unreachable) dependencies on loopback."""


def test_the_worker_keeps_passing_and_beating_while_its_dependencies_are_down(tmp_path):
    import threading

    from orchestrator_service.bootstrap import bootstrap
    from orchestrator_service.entrypoints.worker import run
    from orchestrator_service.settings import OrchestratorSettings

    beat = tmp_path / "beat"
    settings = OrchestratorSettings(worker_heartbeat_file=str(beat), recovery_interval_seconds=0.05,
                                    order_service_url="http://127.0.0.1:9", internal_timeout_seconds=0.2)
    c = bootstrap(settings)
    stop = threading.Event()
    t = threading.Thread(target=run, args=(c, stop), daemon=True)
    t.start()
    try:
        first = None
        for _ in range(100):
            if beat.exists():
                first = first or beat.stat().st_mtime_ns
                if beat.stat().st_mtime_ns > first:
                    break
            stop.wait(0.05)
        assert beat.exists() and beat.stat().st_mtime_ns > first      # it went on after a failed pass
    finally:
        stop.set()
        t.join(5)
        c.close()
