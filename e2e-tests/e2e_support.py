"""Helpers of the end-to-end tests: a small public-API client and ways to read the databases' state."""
from __future__ import annotations

import dataclasses
import re
import uuid

import pytest
import requests
import sqlalchemy as sa
from requests.adapters import HTTPAdapter

from trcommon import demo
from trcommon.devtools import development_payment
from trcommon.http_client import ServiceClient
from trcommon.services import ROOT
from trcommon.testing import wait_until  # noqa: F401 - the e2e tests import it from here

LOG_DIR = ROOT / "build" / "e2e-logs"
STRIPE_WEBHOOK_SECRET = "whsec_e2e_test_secret"
# The suite's Stripe API is a stand-in on loopback (conftest `stripe_api`) that accepts this key.
STRIPE_SECRET_KEY = "sk_test_e2e_standin"

# The suite registers and logs in hundreds of fans and races for seats, all from 127.0.0.1: the rate limits stay on
# (every request goes through them) but are sized far above that. e2e-tests/security starts its own orchestrators
# with small limits.
E2E_RATE_LIMITS = {
    "RATE_LIMIT_PER_IP": "1000000/minute",
    "RATE_LIMIT_AUTH_PER_IP": "1000000/minute",
    "RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT": "1000000/minute",
    "RATE_LIMIT_HOLDS_PER_ACCOUNT": "1000000/minute",
    "RATE_LIMIT_HOLDS_PER_IP": "1000000/minute",
}

# Shortened timers and cheap password hashing keep the suite fast; the production defaults are in the README.
E2E_ENV = {
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "INFO",
    # Every hold in this suite lasts 3 s (a broker queue expires messages in order, so one TTL for all).
    "HOLD_TTL_SECONDS": "3",
    "OTP_TTL_SECONDS": "60",
    "QR_TTL_SECONDS": "30",
    # Transfers wait 8 s for their codes, and sellers' proceeds stay pending (disputable) for 6 s.
    "TRANSFER_TTL_SECONDS": "8",
    "TRANSFER_DISPUTE_WINDOW_SECONDS": "6",
    "ARGON2_TIME_COST": "1",
    "ARGON2_MEMORY_COST": "8192",
    "RECOVERY_INTERVAL_SECONDS": "0.5",
    "RECOVERY_GRACE_SECONDS": "1",
    "HOLD_SWEEP_INTERVAL_SECONDS": "0.5",
    # The sweeper (for lost timer messages) waits long here, so expiry tests prove the broker path.
    "HOLD_SWEEP_GRACE_SECONDS": "30",
    "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
    **E2E_RATE_LIMITS,
}


class Api:
    """A tiny client of the public API. `users` is user-service's internal API, only for what `make topup` does."""

    def __init__(self, base_url: str, users: ServiceClient | None = None):
        self.base = base_url
        self.http = requests.Session()
        self.users = users

    def call(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token, **kw)

    def post(self, path, token=None, **kw):
        return self.call("POST", path, token, **kw)


class _FromAddress(HTTPAdapter):
    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def from_address(api: Api, address: str) -> Api:
    """The same API called from another client address (any 127.x.y.z is this machine's loopback)."""
    other = Api(api.base)
    other.http = requests.Session()
    other.http.mount("http://", _FromAddress(address))
    return other


@dataclasses.dataclass
class Fan:
    user_id: str
    email: str
    password: str
    phone: str
    token: str
    refresh_token: str


def register_and_login(api: Api, password: str = "correct-horse-battery") -> Fan:
    email = f"fan-{uuid.uuid4().hex[:12]}@example.com"
    phone = f"+659{uuid.uuid4().int % 10**7:07d}"
    r = api.post("/auth/register", json={"email": email, "password": password, "phone": phone})
    assert r.status_code == 201, r.text
    user_id = r.json()["user_id"]
    r = api.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    return Fan(user_id, email, password, phone, body["access_token"], body["refresh_token"])


def login(api: Api, email: str, password: str = demo.PASSWORD) -> str:
    r = api.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@dataclasses.dataclass
class FreshEvent:
    event_id: str
    hall_id: str
    other_hall_id: str
    seat_ids: list[str]
    price: int


def seat_row(engines, seat_id: str) -> dict:
    with engines["inventory-service"].connect() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM seats WHERE seat_id = :s"), {"s": seat_id}).mappings().one())


# How an OTP message starts (user-service domain/otp.py); notifications start "TicketRemaster:".
OTP_SMS_LIKE = "TicketRemaster code %"


def latest_sms_code(engines, phone: str) -> str:
    with engines["user-service"].connect() as conn:
        # The latest code: the same phone also gets notifications ("TicketRemaster: ...") at any moment.
        body = conn.execute(sa.text("SELECT body FROM sms_outbox WHERE phone = :p AND body LIKE :otp "
                                    "ORDER BY id DESC LIMIT 1"), {"p": phone, "otp": OTP_SMS_LIKE}).scalar_one()
    return re.search(r"\b(\d{6})\b", body).group(1)




def topup(api: Api, user_id: str, credits: int) -> None:
    """Credit a fan the way `make topup` does: a payment intent recorded by user-service, then the Stripe
    `payment_intent.succeeded` webhook for it, signed offline, to the public API."""
    payload, header = development_payment(api.users, user_id, credits, STRIPE_WEBHOOK_SECRET)
    r = api.post("/webhooks/stripe", data=payload, headers={"Stripe-Signature": header,
                                                             "Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def balance(api: Api, token: str) -> int:
    return api.get("/me", token).json()["credit_balance"]


def order_row(engines, order_id: str) -> dict:
    with engines["order-service"].connect() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM orders WHERE order_id = :o"), {"o": order_id})
                    .mappings().one())


def ledger_refs(engines, prefix: str) -> list[str]:
    with engines["user-service"].connect() as conn:
        return list(conn.execute(sa.text("SELECT reference FROM credit_ledger WHERE reference LIKE :p"),
                                 {"p": prefix + "%"}).scalars())


def dies(call) -> None:
    """`call` is a request to a process that exits at a failpoint: its answer never comes."""
    with pytest.raises(requests.ConnectionError):
        call()


def log_entries(process: str) -> list[dict]:
    """The JSON log lines a process of the running system has written so far (other output is skipped)."""
    import json

    entries = []
    for line in (LOG_DIR / f"{process}.log").read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def released_by_timer(seat_ids: set[str]) -> set[str]:
    """The seats whose hold the release consumer ended because the hold's timer message came (its log)."""
    return {e["seat_id"] for e in log_entries("inventory-release-consumer")
            if e.get("message") == "hold released" and e.get("source") == "timer" and e["seat_id"] in seat_ids}


# --- security cases (e2e-tests/security, docs/security.md) ---------------------------------------------------

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
# What an orchestrator of the security tests leaves at the production defaults would not bite in a test, so each
# sets the limits it does not test high.
ROOMY_RATE_LIMITS = {"RATE_LIMIT_PER_IP": "10000/minute", "RATE_LIMIT_AUTH_PER_IP": "10000/minute",
                     "RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT": "10000/minute",
                     "RATE_LIMIT_HOLDS_PER_ACCOUNT": "10000/minute", "RATE_LIMIT_HOLDS_PER_IP": "10000/minute"}


def is_rate_limited(reply) -> bool:
    """A 429 of the rate limits: the error format with Retry-After (seconds, also in the body) and the RateLimit-*
    headers."""
    if reply.status_code != 429:
        return False
    error = reply.json()["error"]
    assert error["code"] == "TOO_MANY_REQUESTS" and error["message"], reply.text
    assert int(reply.headers["Retry-After"]) == error["retry_after"] >= 1, reply.headers
    assert reply.headers["RateLimit-Remaining"] == "0" and all(h in reply.headers for h in RATE_HEADERS)
    return True


def operations(api: Api) -> list[tuple[str, str, dict, dict | None]]:
    """Every operation of the public API as its OpenAPI document states it: (method, path, operation, the
    request body's schema or None), so a test that sweeps them covers a new route without being edited."""
    doc = api.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    found = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            found.append((method.upper(), path, op, schemas[ref["$ref"].rsplit("/", 1)[1]] if ref else None))
    return found


_LAPSED = {"orders": {"PENDING": "OPEN", "EXPIRED": "OPEN", "CANCELLED": "OPEN"},
           "seats": {"HELD": "UNSOLD", "AVAILABLE": "UNSOLD"},
           "transfers": {"PENDING_OTP": "OPEN", "EXPIRED": "OPEN"}}


def books(engines, user_ids, seat_ids=()) -> dict:
    """What a request may have changed for these users and seats, across the databases: accounts, ledger rows,
    orders, transfers, seats, codes and messages sent. A hold or an offer lapsing on its own (its TTL) is not a
    change, so a probe that took a few seconds compares equal."""
    users, seats = [str(u) for u in user_ids], [str(s) for s in seat_ids]

    def rows(engine, sql, **params):
        with engines[engine].connect() as conn:
            return sorted(tuple(str(v) for v in r) for r in conn.execute(sa.text(sql), params))

    def lapse(table, rs, col):
        return [r[:col] + (_LAPSED[table].get(r[col], r[col]),) + r[col + 1:] for r in rs]

    return {
        "users": rows("user-service", "SELECT user_id, email, phone, role, credit_balance, pending_credits, "
                      "is_flagged FROM users WHERE user_id = ANY(CAST(:u AS uuid[]))", u=users),
        "ledger": rows("user-service", "SELECT user_id, amount, account, reference FROM credit_ledger "
                       "WHERE user_id = ANY(CAST(:u AS uuid[]))", u=users),
        "otps": rows("user-service", "SELECT otp_id, purpose, attempts, used_at, superseded_at FROM otp_codes "
                     "WHERE user_id = ANY(CAST(:u AS uuid[]))", u=users),
        # Codes sent; notifications arrive on their own time (after the change that caused them) and are not counted.
        "sms": rows("user-service", "SELECT s.id FROM sms_outbox s JOIN users u ON u.phone = s.phone "
                    "WHERE u.user_id = ANY(CAST(:u AS uuid[])) AND s.body LIKE :otp", u=users, otp=OTP_SMS_LIKE),
        "orders": lapse("orders", rows("order-service", "SELECT order_id, user_id, seat_id, amount, status, "
                                       "payment_state FROM orders WHERE user_id = ANY(CAST(:u AS uuid[]))",
                                       u=users), 4),
        "transfers": lapse("transfers", rows(
            "order-service", "SELECT transfer_id, seat_id, seller_user_id, buyer_user_id, amount, status, "
            "dispute_reason, resolution FROM transfers WHERE seller_user_id = ANY(CAST(:u AS uuid[])) "
            "OR buyer_user_id = ANY(CAST(:u AS uuid[]))", u=users), 5),
        "seats": lapse("seats", rows("inventory-service", "SELECT seat_id, price, status, owner_user_id, "
                                     "ticket_version FROM seats WHERE seat_id = ANY(CAST(:s AS uuid[]))",
                                     s=seats), 2),
    }


def changes(before: dict, after: dict) -> dict:
    """The rows of `books` that differ: {table: (removed, added)}."""
    return {k: (sorted(set(before[k]) - set(after[k])), sorted(set(after[k]) - set(before[k])))
            for k in before if before[k] != after[k]}
