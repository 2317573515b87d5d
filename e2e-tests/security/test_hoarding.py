"""Hold hoarding (../shared/RELIABILITY.md case 23) beyond what test_rate_limits.py covers: one account trying to
hold 500 seats, many accounts on one address trying the same at the production budgets, and one account looping
hold → expire. Holds live 3 s in this suite (HOLD_TTL_SECONDS), so the loops run in seconds. Each test prints its
figure: the most live holds an actor had at once, sampled from the seats while the test runs."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from e2e_support import E2E_ENV, ROOMY_RATE_LIMITS, is_rate_limited, register_and_login

MAX_HOLDS = 8                                   # MAX_HOLDS_PER_USER
HOLD_TTL = float(E2E_ENV["HOLD_TTL_SECONDS"])
PRODUCTION_HOLD_BUDGETS = {"RATE_LIMIT_HOLDS_PER_ACCOUNT": "30/hour", "RATE_LIMIT_HOLDS_PER_IP": "16/5 minutes"}


class LiveHolds:
    """While a test runs, samples every few milliseconds how many live holds the given fans have (inventory's own
    count for MAX_HOLDS_PER_USER: HELD and held_until still ahead), the most per fan and in all."""

    def __init__(self, engines, fans):
        self._engine, self._users = engines["inventory-service"], [f.user_id for f in fans]
        self.per_fan = self.in_all = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _sample(self):
        query = sa.text("SELECT count(*) FROM seats WHERE held_by_user_id = ANY(CAST(:u AS uuid[])) "
                        "AND status = 'HELD' AND held_until > statement_timestamp() GROUP BY held_by_user_id")
        with self._engine.connect() as conn:
            while not self._stop.is_set():
                counts = list(conn.execute(query, {"u": self._users}).scalars())
                conn.commit()
                self.per_fan, self.in_all = max(self.per_fan, *counts, 0), max(self.in_all, sum(counts))
                self.samples += 1
                time.sleep(0.005)


def error_code(reply) -> str | None:
    return reply.json()["error"]["code"] if reply.status_code >= 400 else None


def test_one_account_trying_to_hold_500_seats_never_has_more_than_8_at_once(api, fresh_event, engines):
    ev = fresh_event(seats=500)
    fan = register_and_login(api)
    started = time.monotonic()
    with LiveHolds(engines, [fan]) as live, ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda seat: api.post("/reserve", fan.token, json={"seat_id": seat}), ev.seat_ids))
    took = time.monotonic() - started
    made = [r for r in replies if r.status_code == 201]
    capped = [r for r in replies if (r.status_code, error_code(r)) == (429, "TOO_MANY_HOLDS")]
    waits = sorted({r.headers.get("Retry-After") for r in capped}, key=str)
    print(f"\none account, 500 holds sent 10 at a time ({took:.1f} s): {len(made)} made as earlier ones lapsed, "
          f"{len(capped)} refused 429 TOO_MANY_HOLDS (Retry-After {waits}); most live at once {live.per_fan} "
          f"(MAX_HOLDS_PER_USER {MAX_HOLDS}; {live.samples} samples)")
    assert len(made) + len(capped) == len(replies), sorted({(r.status_code, error_code(r)) for r in replies})
    assert live.per_fan == MAX_HOLDS, live.per_fan
    # The cap ends by itself when a hold lapses: the refusal says when, as every such error does.
    for r in capped:
        assert "Retry-After" in r.headers, r.headers
        assert 1 <= int(r.headers["Retry-After"]) == r.json()["error"]["retry_after"] <= HOLD_TTL + 1, r.headers


def test_many_accounts_on_one_address_trying_to_hold_500_seats_get_the_addresss_budget(api, orchestrator,
                                                                                        fresh_event, engines):
    limited = orchestrator(**{**ROOMY_RATE_LIMITS, **PRODUCTION_HOLD_BUDGETS})
    ev = fresh_event(seats=500)
    fans = [register_and_login(api) for _ in range(10)]
    with LiveHolds(engines, fans) as live, ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda i: limited.post("/reserve", fans[i % 10].token,
                                                       json={"seat_id": ev.seat_ids[i]}), range(500)))
    made = [r for r in replies if r.status_code == 201]
    refused = [r for r in replies if is_rate_limited(r)]
    print(f"\n10 accounts on one address, 500 holds sent 10 at a time at the production budgets (16/5 minutes per "
          f"address, 30/hour per account): {len(made)} made, {len(refused)} refused 429 TOO_MANY_REQUESTS; most live "
          f"at once {live.in_all} in all, {live.per_fan} for one account")
    assert len(made) == 16 and len(refused) == 500 - 16, sorted({r.status_code for r in replies})
    assert live.in_all <= 16 and live.per_fan <= MAX_HOLDS


def test_one_account_looping_hold_then_expire_is_stopped_by_its_hold_budget(orchestrator, api, fresh_event, engines):
    """The cooldown after repeated expiries is the account's hold budget (RATE_LIMIT_HOLDS_PER_ACCOUNT): it counts
    every hold made, and a hold that lapses gives nothing back, so a fan who keeps letting holds lapse is stopped
    after the budget's holds (30 an hour by default: under four rounds of 8), while refusals at the cap cost
    nothing."""
    budget = PRODUCTION_HOLD_BUDGETS["RATE_LIMIT_HOLDS_PER_ACCOUNT"]        # 30/hour, the default
    limited = orchestrator(**{**ROOMY_RATE_LIMITS, "RATE_LIMIT_HOLDS_PER_ACCOUNT": budget})
    ev = fresh_event(seats=40)
    fan = register_and_login(api)
    seats, made, capped, stop = iter(ev.seat_ids), 0, 0, None
    seat, started = next(seats), time.monotonic()
    with LiveHolds(engines, [fan]) as live:
        while time.monotonic() - started < 30:
            r = limited.post("/reserve", fan.token, json={"seat_id": seat})
            if r.status_code == 201:
                made += 1
                seat = next(seats)
            elif (r.status_code, error_code(r)) == (429, "TOO_MANY_HOLDS"):
                capped += 1             # at the cap: wait as told for the holds to lapse, then take more
                time.sleep(int(r.headers["Retry-After"]))
            else:
                stop = r
                break
    took = time.monotonic() - started
    print(f"\nholds made by one account in a hold -> expire loop in {took:.1f} s: {made} (budget {budget}; "
          f"most live at once {live.per_fan}), {capped} refusals at the cap cost nothing; then "
          f"{stop.status_code if stop is not None else None} {error_code(stop) if stop is not None else ''} "
          f"Retry-After {stop.headers.get('Retry-After') if stop is not None else None} s")
    assert stop is not None and is_rate_limited(stop), "the loop was never stopped"
    assert made == int(budget.split("/")[0]) and live.per_fan <= MAX_HOLDS
    assert 3500 <= int(stop.headers["Retry-After"]) <= 3600
