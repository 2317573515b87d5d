"""Rate limits of the public API (../shared/RELIABILITY.md cases 21 and 23, and OTP sends of 22), through real
orchestrator processes with small limits beside the e2e stack. Each test prints its figure."""
from __future__ import annotations

import time

import sqlalchemy as sa

from e2e_support import ROOMY_RATE_LIMITS, from_address, is_rate_limited, register_and_login
from trcommon.testing import run_together

def test_one_client_sending_twice_the_per_minute_limit_gets_the_limit_and_429_with_retry_after(orchestrator):
    limit = 30
    api = orchestrator(**{**ROOMY_RATE_LIMITS, "RATE_LIMIT_PER_IP": f"{limit}/minute"})
    replies = [api.get("/events") for _ in range(2 * limit)]
    accepted = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if is_rate_limited(r)]
    print(f"\nper-IP limit {limit}/minute, {2 * limit} requests from one client: accepted {len(accepted)}, "
          f"429 {len(refused)}")
    assert len(accepted) == limit and len(refused) == limit, [r.status_code for r in replies]
    assert replies[:limit] == accepted          # the budget is spent first, then everything is refused
    for n, reply in enumerate(accepted):
        assert reply.headers["RateLimit-Limit"] == str(limit)
        assert reply.headers["RateLimit-Remaining"] == str(limit - 1 - n)
        assert 0 < int(reply.headers["RateLimit-Reset"]) <= 60
    assert 50 <= int(refused[-1].headers["Retry-After"]) <= 60
    # Another client address has its own budget, on every route.
    assert from_address(api, "127.0.0.2").get("/events").status_code == 200
    # Health checks are never limited (a 429 would make a load balancer drop the process).
    assert api.get("/health").status_code == 200


def test_register_and_login_share_a_tighter_budget_per_ip_than_the_rest(orchestrator):
    api = orchestrator(**{**ROOMY_RATE_LIMITS, "RATE_LIMIT_AUTH_PER_IP": "4/minute"})
    fans = [f"rl-{time.time_ns()}-{i}@example.com" for i in range(3)]
    statuses = [api.post("/auth/register", json={"email": e, "password": "correct-horse-battery",
                                                 "phone": "+6591234567"}).status_code for e in fans]
    statuses += [api.post("/auth/login", json={"email": e, "password": "correct-horse-battery"}).status_code
                 for e in fans]
    print(f"\nauth limit 4/minute per IP: register x3 then login x3 -> {statuses}")
    assert statuses == [201, 201, 201, 200, 429, 429]
    assert is_rate_limited(api.post("/auth/register", json={"email": "x@example.com", "password": "x" * 12}))
    assert api.get("/events").status_code == 200            # the overall budget is another one
    other = from_address(api, "127.0.0.2")
    assert other.post("/auth/login", json={"email": fans[2], "password": "correct-horse-battery"}).status_code == 200


def test_login_failures_delay_then_lock_one_account_while_another_still_logs_in(api, orchestrator):
    victim, bystander = register_and_login(api), register_and_login(api)
    limited = orchestrator(**{**ROOMY_RATE_LIMITS, "RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT": "3/4 seconds;5/minute"})

    def login(fan, password, client=limited):
        return client.post("/auth/login", json={"email": fan.email, "password": password})

    first = [login(victim, "wrong-password").status_code for _ in range(3)]
    assert first == [401, 401, 401]
    delayed = login(victim, victim.password)                    # even the right password waits now
    assert is_rate_limited(delayed) and int(delayed.headers["Retry-After"]) <= 4
    # Other accounts are not held up, and their successes reset nobody's counter.
    assert [login(bystander, bystander.password).status_code for _ in range(5)] == [200] * 5
    assert login(bystander, "wrong-password").status_code == 401
    assert is_rate_limited(login(victim, victim.password, from_address(limited, "127.0.0.2")))   # per account

    time.sleep(int(delayed.headers["Retry-After"]) + 0.2)      # the short window has passed: two more tries
    assert [login(victim, "wrong-password").status_code for _ in range(2)] == [401, 401]
    locked = login(victim, victim.password)                     # 5 in a minute: locked for the rest of it
    assert is_rate_limited(locked) and 50 <= int(locked.headers["Retry-After"]) <= 60
    print(f"\nlogin failures 3/4 s then 5/minute: 3 wrong -> 429 (Retry-After {delayed.headers['Retry-After']} s), "
          f"2 more after it -> locked (Retry-After {locked.headers['Retry-After']} s); another account: 5/5 logins")
    assert login(bystander, bystander.password).status_code == 200
    assert login(victim, victim.password, api).status_code == 200        # another deployment's counters


def test_holds_are_capped_per_account_and_per_ip_and_many_accounts_on_one_ip_share_its_budget(api, orchestrator,
                                                                                               fresh_event):
    per_account, per_ip = 3, 5
    limited = orchestrator(**{**ROOMY_RATE_LIMITS, "RATE_LIMIT_HOLDS_PER_ACCOUNT": f"{per_account}/minute",
                              "RATE_LIMIT_HOLDS_PER_IP": f"{per_ip}/minute"})
    ev = fresh_event(seats=30)
    seats = iter(ev.seat_ids)
    fans = [register_and_login(api) for _ in range(5)]

    def reserve(fan, seat=None, client=limited):
        return client.post("/reserve", fan.token, json={"seat_id": seat or next(seats)})

    one = [reserve(fans[0]) for _ in range(per_account + 1)]
    assert [r.status_code for r in one[:per_account]] == [201] * per_account and is_rate_limited(one[-1])
    # The account's budget follows it to another address; another account on this address has its own.
    assert is_rate_limited(reserve(fans[0], client=from_address(limited, "127.0.0.2")))
    taken = one[0].json()["seat_id"]
    assert reserve(fans[1], seat=taken).status_code == 409      # a lost race costs no hold budget
    made_by_others = [reserve(fan).status_code for fan in fans[1:] for _ in range(2)]
    from_this_ip = per_account + made_by_others.count(201)
    print(f"\nholds {per_account}/account, {per_ip}/IP: one account made {per_account}, "
          f"{len(fans)} accounts on one IP made {from_this_ip} in all; statuses of the others {made_by_others}")
    assert from_this_ip == per_ip and made_by_others.count(429) == len(made_by_others) - (per_ip - per_account)
    # Another address is not charged for this one's holds.
    assert reserve(fans[4], client=from_address(limited, "127.0.0.2")).status_code == 201

    # Sent at once from a third address, 10 holds by 5 accounts: the address's budget, not one more.
    third = from_address(limited, "127.0.0.3")
    burst = [(fan, next(seats)) for fan in fans for _ in range(2)]
    statuses = sorted(run_together([lambda f=f, seat=seat: reserve(f, seat, third).status_code
                                    for f, seat in burst]))
    print(f"10 holds sent at once by 5 accounts from one address: {statuses.count(201)} made (budget {per_ip})")
    assert statuses == [201] * per_ip + [429] * (len(burst) - per_ip), statuses


def test_a_redis_backed_limit_is_one_budget_for_two_orchestrators_where_in_process_counters_give_twice(
        api, orchestrator, redis_url, key_prefix, fresh_event):
    limit, holds = 20, 4
    shared = {**ROOMY_RATE_LIMITS, "RATE_LIMIT_PER_IP": f"{limit}/minute", "RATE_LIMIT_HOLDS_PER_IP": f"{holds}/minute",
              "RATE_LIMIT_STORAGE_URL": redis_url, "RATE_LIMIT_KEY_PREFIX": key_prefix}
    replicas = [orchestrator(**shared), orchestrator(**shared)]

    # Holds through both replicas at once (from another address, whose overall budget is its own): one budget of 4
    # in Redis, and lost races (409) give their unit back.
    elsewhere = [from_address(r, "127.0.0.4") for r in replicas]
    ev = fresh_event(seats=12)
    fans = [register_and_login(api) for _ in range(4)]
    held = api.post("/reserve", fans[0].token, json={"seat_id": ev.seat_ids[0]})
    assert held.status_code == 201
    lost = [elsewhere[i % 2].post("/reserve", fans[1].token, json={"seat_id": ev.seat_ids[0]}).status_code
            for i in range(2 * holds)]
    assert lost == [409] * (2 * holds)
    attempts = [(elsewhere[i % 2], fans[i % 4], seat) for i, seat in enumerate(ev.seat_ids[1:11])]
    made = sorted(run_together([lambda r=r, f=f, seat=seat: r.post("/reserve", f.token, json={"seat_id": seat})
                               .status_code for r, f, seat in attempts]))
    assert made == [201] * holds + [429] * (len(attempts) - holds), made
    print(f"\nholds {holds}/IP in Redis, {2 * holds} lost races then {len(attempts)} holds at once over 2 orchestrators:"
          f" {made.count(201)} made")

    accepted = sum(replicas[i % 2].get("/events").status_code == 200 for i in range(2 * limit))
    local = [orchestrator(**{**ROOMY_RATE_LIMITS, "RATE_LIMIT_PER_IP": f"{limit}/minute"}) for _ in range(2)]
    accepted_local = sum(local[i % 2].get("/events").status_code == 200 for i in range(2 * limit))
    print(f"\nper-IP limit {limit}/minute over 2 orchestrators, {2 * limit} requests alternating: Redis -> "
          f"{accepted} accepted; in-process counters -> {accepted_local}")
    assert accepted == limit
    assert accepted_local == 2 * limit
    assert is_rate_limited(replicas[0].get("/events")) and is_rate_limited(replicas[1].get("/events"))


def test_the_otp_send_cap_reaches_the_client_with_retry_after(api, fresh_event, engines):
    fan = register_and_login(api)
    with engines["user-service"].begin() as conn:
        conn.execute(sa.text("UPDATE users SET is_flagged = true WHERE user_id = :u"), {"u": fan.user_id})
    ev = fresh_event(seats=20)
    seats, order_id, statuses, reply = iter(ev.seat_ids), None, [], None
    for _ in range(40):     # each /pay without a code sends one; a hold lives 3 s here, so take another when it ends
        if order_id is None:
            order_id = api.post("/reserve", fan.token, json={"seat_id": next(seats)}).json()["order_id"]
        reply = api.post("/pay", fan.token, json={"order_id": order_id})
        statuses.append(reply.status_code)
        if reply.status_code == 410:
            order_id = None
        elif reply.status_code == 429:
            break
    print(f"\nOTP sends until the cap: {statuses.count(428)} codes sent, then {reply.status_code} "
          f"{reply.json()['error']['code']} Retry-After {reply.headers.get('Retry-After')}")
    assert reply.status_code == 429 and reply.json()["error"]["code"] == "OTP_SEND_LIMIT", statuses
    assert statuses.count(428) == 10                          # OTP_SENDS_PER_HOUR
    assert 3000 <= int(reply.headers["Retry-After"]) <= 3601 and reply.json()["error"]["retry_after"] > 0
