"""The recovery worker's pacing: a burst of stale sagas is worked off pass after pass without the pause, and a
pass that failed waits the interval (a participant that is down is not hammered)."""
import threading
import time
from types import SimpleNamespace

from trcommon.saga import RecoveryPass

from orchestrator_service.entrypoints import worker
from orchestrator_service.settings import OrchestratorSettings


def _run(monkeypatch, passes: list[RecoveryPass], interval: float) -> list[float]:
    settings = OrchestratorSettings(recovery_interval_seconds=interval, recovery_batch=100)
    stop = threading.Event()
    times: list[float] = []

    def fake_pass(_sagas, _c):
        times.append(time.monotonic())
        if len(times) >= len(passes):
            stop.set()
        return passes[len(times) - 1]

    monkeypatch.setattr(worker, "recovery_pass", fake_pass)
    t = threading.Thread(target=worker.run, args=(SimpleNamespace(settings=settings, sagas=None), stop))
    t.start()
    t.join(10)
    assert not t.is_alive()
    return times


def test_full_batches_follow_each_other_without_the_pause(monkeypatch):
    times = _run(monkeypatch, [RecoveryPass(100, 0)] * 5 + [RecoveryPass(3, 0), RecoveryPass(0, 0)], interval=0.5)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g < 0.2 for g in gaps[:5]), gaps           # five full batches: no pause between them
    assert gaps[5] >= 0.45, gaps                           # a partial batch: the interval


def test_a_full_batch_with_failures_waits_the_interval(monkeypatch):
    times = _run(monkeypatch, [RecoveryPass(100, 1), RecoveryPass(100, 0)], interval=0.3)
    assert times[1] - times[0] >= 0.28
