"""Rate limits of the public API (Flask-Limiter), set up in one place for the process that is the edge.

Kong limits per client IP in the container deployment; locally the orchestrator is the edge, and behind Kong it
also enforces what Kong cannot (per account, counted on the outcome). The numbers are settings (README,
Settings) in the limits notation `N/minute`, `N/5 minutes`, several joined with `;`.

- every route: RATE_LIMIT_PER_IP per client IP;
- register and login together: RATE_LIMIT_AUTH_PER_IP per client IP;
- login failures: RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT, counted per account (the email) on each 401 only. Its
  windows escalate (`5/minute;20/hour`): a few wrong passwords cost a wait until the minute has passed, many more
  lock the account's logins for the rest of the hour. Someone else's success never resets a counter;
- holds (POST /reserve): RATE_LIMIT_HOLDS_PER_ACCOUNT per account and RATE_LIMIT_HOLDS_PER_IP per client IP,
  counted on each hold made (201), so a lost race for a seat costs nothing, while many accounts from one address
  share the address's budget.

The budgets counted on an outcome are charged before the request runs, like the others (an atomic take of one
unit in the storage), and the unit is given back when the answer is not the counted one. Requests sent at once
therefore never get past a budget: twenty concurrent holds from one address against 16 left make 16 holds, where
charging after the answer would let every request then in flight through. Windows are moving: the budget is what
was taken in the last window, never twice it at a window's edge.

A refused request is 429 in the error format with `Retry-After` (and `retry_after` in the body); every limited
answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until a unit frees up), as
Kong's rate-limiting plugin writes them. Counters live in this process (memory://) or, with
RATE_LIMIT_STORAGE_URL=redis://…, in Redis, shared by every replica. When that storage fails the request goes
through unlimited (logged), as Kong's `fault_tolerant` does: an outage of the counters is never a 500.
"""
from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, g, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import parse_many
from limits.storage import MemoryStorage, RedisStorage, Storage
from werkzeug.exceptions import HTTPException

from .errors import AppError, TooManyRequests
from .web import error_response, request_json

LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER = "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"


def valid_limits(value: str) -> str:
    """A settings validator: the limits notation (`600/minute`, `5/minute;20/hour`)."""
    try:
        parse_many(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a rate limit such as 600/minute or 5/minute;20/hour") from None
    return value


def trusted_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """RATE_LIMIT_TRUSTED_IPS: comma-separated addresses or networks (CIDR) exempt from every limit."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class RateLimitConfig:
    storage_url: str
    key_prefix: str
    trusted_ips: str
    per_ip: str
    auth_per_ip: str
    login_failures_per_account: str
    holds_per_account: str
    holds_per_ip: str


def client_ip() -> str:
    # With FORWARDED_PROXIES set, ProxyFix has already put the client's address (from X-Forwarded-For) here.
    return request.remote_addr or "unknown"


def _digest(text: str) -> str:
    # Counters are keyed by a digest: no email address in the storage, and a bounded key length.
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def login_account() -> str:
    """The account a login names (its email, case-folded), or "" when the body names none: that login is a 400,
    and no account's failures are counted."""
    if "login_account" not in g:
        try:
            body = request_json()
        except (AppError, HTTPException):     # not JSON, or over MAX_BODY_BYTES: the view answers 400 or 413
            body = None
        email = body.get("email") if isinstance(body, dict) else None
        g.login_account = _digest(email.strip().casefold()) if isinstance(email, str) and email.strip() else ""
    return g.login_account


# Scopes of the budgets counted on an outcome, and the status that is counted; any other answer gives the unit back.
COUNTED_ON = {"login-failures": 401, "holds-account": 201, "holds-ip": 201}


def give_back(storage: Storage, key: str) -> None:
    """Return one unit of a moving window taken by this request. The window is a list of the times units were
    taken, newest first (limits' memory and Redis storages); the newest one goes, which frees the same count."""
    if isinstance(storage, MemoryStorage):
        with storage.locks[key]:
            taken = storage.events.get(key)
            if taken:
                taken.pop(0)
    elif isinstance(storage, RedisStorage):
        storage.get_connection().lpop(storage.prefixed_key(key))
    else:
        raise TypeError(f"cannot give a unit back to {type(storage).__name__}")


def storage_supported(url: str) -> str:
    """A settings validator: the counters' storage, in this process or in Redis (the two give_back knows)."""
    if not (url == "memory://" or url.split(":", 1)[0].split("+", 1)[0] in ("redis", "rediss")):
        raise ValueError(f"{url!r}: the rate limit counters live in memory:// or redis://host:port/db")
    return url


class RateLimits:
    """The limiter of one Flask app and the decorators its routes use. Build it before the routes, install it
    after them:

        limits = RateLimits(config)
        @bp.post("/auth/login")
        @limits.auth
        @limits.login_failures
        def login(): ...
        limits.install(app)
    """

    def __init__(self, config: RateLimitConfig):
        self.config = config
        self._trusted = trusted_networks(config.trusted_ips)
        self.limiter = Limiter(
            client_ip,
            application_limits=[config.per_ip],
            strategy="moving-window",
            storage_uri=config.storage_url,
            key_prefix=config.key_prefix,
            # The headers are written below (Reset in seconds, as Kong and the RateLimit header draft do).
            headers_enabled=False,
            swallow_errors=True,
        )
        self.limiter.request_filter(self._trusted_client)
        self.auth = self.limiter.shared_limit(
            config.auth_per_ip, scope="auth", error_message="too many sign-ups and logins from this address")
        self.login_failures = self.limiter.limit(
            config.login_failures_per_account, key_func=login_account, scope="login-failures",
            exempt_when=lambda: not login_account(), error_message="too many failed logins for this account")

    def holds(self, account: Callable[[], str]) -> Callable:
        """The hold budgets of POST /reserve; `account` names the caller (the decorated view runs after the
        caller is authenticated)."""
        per_account = self.limiter.limit(self.config.holds_per_account, key_func=account, scope="holds-account",
                                         error_message="too many holds for this account")
        per_ip = self.limiter.limit(self.config.holds_per_ip, scope="holds-ip",
                                    error_message="too many holds from this address")
        return lambda view: per_ip(per_account(view))

    def exempt(self, blueprint):
        """No limit on these routes: health checks, whose 429 would make a load balancer drop this process."""
        return self.limiter.exempt(blueprint)

    def _trusted_client(self) -> bool:
        if not self._trusted:
            return False
        try:
            address = ipaddress.ip_address(client_ip())
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def install(self, app: Flask) -> None:
        app.after_request(self._settle)
        app.register_error_handler(RateLimitExceeded, self._refused)
        self.limiter.init_app(app)

    def _seconds_left(self) -> int | None:
        current = self.limiter.current_limit
        if current is None:
            return None
        return max(0, math.ceil(current.window[0] - time.time()))

    def _refused(self, exceeded: RateLimitExceeded):
        retry_after = max(1, self._seconds_left() or 1)
        return error_response(TooManyRequests(f"{exceeded.description}; retry in {retry_after} s",
                                              retry_after=retry_after))

    def _settle(self, response: Response) -> Response:
        """Give back the units of outcome-counted budgets this answer does not count, then write the headers."""
        if self.limiter.current_limit is None:
            return response
        try:
            for taken in self.limiter.current_limits:
                counted = COUNTED_ON.get(taken.request_args[-1].rsplit(":", 1)[-1])
                if counted is not None and not taken.breached and response.status_code != counted:
                    give_back(self.limiter.storage, taken.key)
            # The limit this client will meet first: the one refused, else the one with the least left.
            current = self.limiter.current_limit
            if not current.breached:
                current = min(self.limiter.current_limits, key=lambda limit: limit.remaining)
            reset = max(0, math.ceil(current.window[0] - time.time()))
            response.headers[LIMIT_HEADER] = str(current.limit.amount)
            response.headers[REMAINING_HEADER] = str(max(0, current.remaining))
            response.headers[RESET_HEADER] = str(reset)
        except Exception:       # the counters' storage is down: the answer goes out as it is
            self.limiter.logger.warning("rate limit counters unavailable", exc_info=True)
        return response
