"""The load of `make bench`, one phase per locust run (bench/__main__.py starts it with BENCH_PHASE, BENCH_DATA and
BENCH_OUT set). Every simulated fan or scanner keeps its own keep-alive connection (FastHttpUser).

Each flow's latency is recorded exactly (not bucketed) and written to BENCH_OUT as JSON when the run stops:
{"flows": {name: [milliseconds, ...]}, "outcomes": {name: {status: count}}, "marks": {...}}.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import resource
import time
from collections import Counter, defaultdict

import gevent
from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser

PHASE = os.environ.get("BENCH_PHASE", "")
DATA = json.loads(open(os.environ["BENCH_DATA"]).read()) if os.environ.get("BENCH_DATA") else {}
OUT = os.environ.get("BENCH_OUT", "")

flows: dict[str, list[float]] = defaultdict(list)
outcomes: dict[str, Counter] = defaultdict(Counter)
marks: dict[str, float] = {}
_slots = itertools.count()
_active = {"users": 0}


def _quit(environment) -> None:
    """End the run now. From its own greenlet: a user calling quit() directly would be stopped by it midway."""
    if environment.runner is not None:
        gevent.spawn(environment.runner.quit)


def _user_done(environment) -> None:
    """A user ran out of work: when the last one does, the run ends (no idle wait for --run-time)."""
    _active["users"] -= 1
    if _active["users"] <= 0:
        _quit(environment)


def _record(name: str, started: float, status: int | str) -> None:
    flows[name].append((time.perf_counter() - started) * 1000)
    outcomes[name][str(status)] += 1


@events.test_start.add_listener
def _started(environment, **_):
    marks["started"] = time.time()


@events.quitting.add_listener
def _write(environment, **_):
    marks["stopped"] = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    marks["own_cpu_seconds"] = usage.ru_utime + usage.ru_stime
    if OUT:
        with open(OUT, "w") as f:
            json.dump({"flows": flows, "outcomes": {k: dict(v) for k, v in outcomes.items()}, "marks": marks}, f)


class Fan(FastHttpUser):
    """One simulated client; what it does is the phase's."""

    wait_time = constant(0)
    # Requests this phase expects to be refused (a lost race) are outcomes, not errors.
    connection_timeout = 30.0
    network_timeout = 30.0

    def on_start(self):
        _active["users"] += 1
        self.slot = next(_slots)
        self.plan = DATA["plans"][self.slot % len(DATA["plans"])] if DATA.get("plans") else {}
        self.queue = list(self.plan.get("seats", []))
        self.accounts = itertools.cycle(self.plan.get("tokens", [])) if self.plan.get("tokens") else None
        self.token = self.plan.get("token") or DATA.get("token")
        self.uses = 0
        self.codes = itertools.cycle(self.plan.get("codes", [])) if self.plan.get("codes") else None

    def _post(self, path: str, body: dict, token: str, name: str):
        with self.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"}, name=name,
                              catch_response=True) as r:
            r.success()     # judged by the flow below, by status
            return r

    def _body(self, r) -> dict:
        try:
            return r.json()
        except ValueError:
            return {}

    @task
    def act(self):
        getattr(self, f"_{PHASE}")()

    # 1. purchases: reserve + pay of the fan's own next seat
    def _purchase(self):
        if not self.queue:
            _user_done(self.environment)
            raise StopUser()
        seat_id = self.queue.pop()
        started = time.perf_counter()
        r = self._post("/reserve", {"seat_id": seat_id}, self.token, "/reserve")
        if r.status_code != 201:
            _record("purchase", started, f"reserve {r.status_code}")
            return
        r = self._post("/pay", {"order_id": self._body(r).get("order_id")}, self.token, "/pay")
        _record("purchase", started, r.status_code)

    # 2. holds: reserve only, each account at most its hold cap of live holds
    def _hold(self):
        if not self.queue:
            _user_done(self.environment)
            raise StopUser()
        if self.uses % DATA["holds_per_account"] == 0:
            self.token = next(self.accounts)
        self.uses += 1
        started = time.perf_counter()
        r = self._post("/reserve", {"seat_id": self.queue.pop()}, self.token, "/reserve")
        _record("hold", started, r.status_code)

    # 3. gate scans: each scanner goes round its share of the codes (first a check-in, then duplicates)
    def _scan(self):
        started = time.perf_counter()
        r = self._post("/verify", {"qr": next(self.codes), "hall_id": DATA["hall_id"]}, self.token, "/verify")
        _record("scan", started, self._body(r).get("result", r.status_code))

    # 4. flash sale: read the seat map, try a free seat, pay it; again after a lost race, until sold out
    def _flash(self):
        started = time.perf_counter()
        for _ in range(50):
            r = self.client.get(f"/events/{DATA['event_id']}/seats", name="/events/{id}/seats")
            seats = self._body(r).get("seats", []) if r.status_code == 200 else []
            free = [s["seat_id"] for s in seats if s["status"] == "AVAILABLE"]
            if r.status_code == 200 and not free:
                _record("flash", started, "sold out")
                break
            if not free:
                continue
            r = self._post("/reserve", {"seat_id": random.choice(free)}, self.token, "/reserve")
            if r.status_code == 201:
                r = self._post("/pay", {"order_id": self._body(r).get("order_id")}, self.token, "/pay")
                _record("flash", started, f"bought {r.status_code}")
                if r.status_code == 200:
                    marks["last_paid"] = time.time()
                    marks["paid"] = marks.get("paid", 0) + 1
                    if marks["paid"] >= DATA["seats"]:
                        marks["sold_out_paid"] = time.time()
                        _quit(self.environment)     # sold out and paid: the fans still waiting go home
                break
            outcomes["flash reserve"][str(r.status_code)] += 1
        else:
            _record("flash", started, "gave up")
        _user_done(self.environment)
        raise StopUser()

    # 5. a burst of holds that will all expire about together
    def _burst(self):
        self._hold()
