"""The rate limiter's own rules on a small app (the public API's limits are tested end to end in
e2e-tests/security/test_rate_limits.py): the 429 in the error format with Retry-After, the RateLimit-* headers,
budgets counted on the outcome, per-account keys, trusted addresses and a counter storage that is down."""
from __future__ import annotations

import time
import uuid

import pytest
from flask import jsonify, request

from trcommon.ratelimit import RateLimitConfig, RateLimits, valid_limits
from trcommon.settings import CommonSettings
from trcommon.web import create_flask_app, load_json_body


def config(**changes) -> RateLimitConfig:
    values = dict(storage_url="memory://", key_prefix=f"t{uuid.uuid4().hex[:8]}", trusted_ips="", per_ip="1000/minute", auth_per_ip="1000/minute",
                  login_failures_per_account="3/minute;5/hour", holds_per_account="2/minute",
                  holds_per_ip="3/minute")
    values.update(changes)
    return RateLimitConfig(**values)


def parse_body_as_dict():
    return load_json_body(request.get_data(cache=True))


def make_app(cfg: RateLimitConfig):
    app = create_flask_app("limited", CommonSettings())
    limits = RateLimits(cfg)

    @app.post("/auth/login")
    @limits.auth
    @limits.login_failures
    def login():
        body = parse_body_as_dict()
        if not isinstance(body, dict):
            return jsonify({"error": {"code": "INVALID_INPUT", "message": "no"}}), 400
        time.sleep(0.05)        # a password check takes a while: requests sent at once overlap
        if body.get("password") != "right":
            return jsonify({"error": {"code": "INVALID_CREDENTIALS", "message": "no"}}), 401
        return jsonify({"ok": True})

    @app.post("/reserve")
    @limits.holds(lambda: request.headers["X-Test-User"])
    def reserve():
        # A taken seat (409) costs nothing; a hold made (201) counts.
        time.sleep(0.05)
        return jsonify({}), 409 if request.args.get("taken") else 201

    @app.get("/open")
    def open_route():
        return jsonify({})

    limits.install(app)
    return app


def client_at(app, ip: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def test_the_per_ip_budget_refuses_the_excess_with_429_in_the_error_format_and_retry_after():
    app = make_app(config(per_ip="5/minute"))
    one, other = client_at(app, "10.0.0.1"), client_at(app, "10.0.0.2")
    replies = [one.get("/open") for _ in range(10)]
    assert [r.status_code for r in replies] == [200] * 5 + [429] * 5
    assert [r.headers["RateLimit-Remaining"] for r in replies[:5]] == ["4", "3", "2", "1", "0"]
    assert all(r.headers["RateLimit-Limit"] == "5" and 0 < int(r.headers["RateLimit-Reset"]) <= 60 for r in replies)
    refused = replies[-1]
    error = refused.get_json()["error"]
    assert error["code"] == "TOO_MANY_REQUESTS" and 55 <= error["retry_after"] <= 60
    assert refused.headers["Retry-After"] == str(error["retry_after"])
    assert other.get("/open").status_code == 200     # another address has its own budget


def test_login_failures_lock_one_account_only_and_a_success_is_not_counted():
    app = make_app(config())
    c = client_at(app, "10.0.0.3")

    def login(email, password):
        return c.post("/auth/login", json={"email": email, "password": password}).status_code

    assert [login("victim@example.com", "wrong") for _ in range(3)] == [401, 401, 401]
    assert login("Victim@Example.com ", "right") == 429        # locked, whatever the password and its spelling
    assert [login("other@example.com", "right") for _ in range(5)] == [200] * 5
    assert login("other@example.com", "wrong") == 401
    assert login("no-email-at-all", "right") == 200 and c.post("/auth/login", json=[]).status_code == 400
    too_long = c.post("/auth/login", data=b'{"email": "' + b"x" * 70000 + b'"}', content_type="application/json")
    assert too_long.status_code == 413 and too_long.get_json()["error"]["code"] == "REQUEST_ENTITY_TOO_LARGE"


def test_holds_count_per_account_and_per_ip_and_only_when_made():
    app = make_app(config())
    c = client_at(app, "10.0.0.4")

    def reserve(user, taken=False):
        return c.post("/reserve" + ("?taken=1" if taken else ""), headers={"X-Test-User": user}).status_code

    assert [reserve("a", taken=True) for _ in range(5)] == [409] * 5     # lost races cost nothing
    assert [reserve("a") for _ in range(3)] == [201, 201, 429]           # per account: 2
    assert [reserve("b") for _ in range(2)] == [201, 429]                # per IP: 3 in all
    assert client_at(app, "10.0.0.5").post("/reserve", headers={"X-Test-User": "c"}).status_code == 201


def test_requests_sent_at_once_never_get_past_an_outcome_counted_budget():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    app = make_app(config(holds_per_account="1000/minute", holds_per_ip="4/minute",
                          login_failures_per_account="3/minute"))
    barrier = threading.Barrier(12)

    def slow_reserve(i):
        client = client_at(app, "10.0.0.8")
        barrier.wait()
        return client.post("/reserve", headers={"X-Test-User": f"user{i}"}).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(slow_reserve, range(12)))
    assert sorted(statuses) == [201] * 4 + [429] * 8, statuses

    wrong = threading.Barrier(10)

    def guess(_):
        client = client_at(app, "10.0.0.9")
        wrong.wait()
        return client.post("/auth/login", json={"email": "target@example.com", "password": "guess"}).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(guess, range(10)))
    assert sorted(statuses) == [401] * 3 + [429] * 7, statuses


def test_trusted_addresses_are_never_limited():
    app = make_app(config(per_ip="2/minute", trusted_ips="127.0.0.0/8, ::1"))
    assert {client_at(app, "127.0.0.1").get("/open").status_code for _ in range(20)} == {200}
    assert [client_at(app, "10.0.0.6").get("/open").status_code for _ in range(3)] == [200, 200, 429]


def test_a_request_to_no_route_takes_no_budget_and_gets_no_headers():
    app = make_app(config(per_ip="2/minute"))
    c = client_at(app, "10.0.0.10")
    missing = [c.get("/nowhere") for _ in range(5)]
    assert {r.status_code for r in missing} == {404}
    assert not any("RateLimit-Limit" in r.headers for r in missing)
    assert [c.get("/open").status_code for _ in range(3)] == [200, 200, 429]


def test_counters_that_cannot_be_reached_let_requests_through_rather_than_fail_them():
    app = make_app(config(per_ip="1/minute", storage_url="redis://127.0.0.1:1/0"))
    replies = [client_at(app, "10.0.0.7").get("/open") for _ in range(3)]
    assert [r.status_code for r in replies] == [200] * 3


def test_limits_are_checked_when_settings_are_read():
    from orchestrator_service.settings import OrchestratorSettings

    assert valid_limits("5/minute;20/hour") and valid_limits("16/5 minutes")
    for wrong in ({"rate_limit_per_ip": "lots"}, {"rate_limit_trusted_ips": "127.0.0.1, not-an-address"},
                  {"rate_limit_storage_url": "memcached://127.0.0.1:11211"}):
        with pytest.raises(ValueError):
            OrchestratorSettings(**wrong)
    ok = OrchestratorSettings(rate_limit_storage_url="redis://127.0.0.1:6379/3", rate_limit_trusted_ips="10.0.0.0/8")
    assert ok.rate_limits.storage_url == "redis://127.0.0.1:6379/3" and ok.rate_limits.per_ip == "600/minute"
