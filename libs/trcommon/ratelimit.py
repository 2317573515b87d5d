"""Rate limits of the public API, set up in one place for the process that is the edge. The windows and their
counters are the `limits` library's (moving windows, in memory or in Redis); this module decides which budgets a
request takes and writes the answers.

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

A request from a trusted address (RATE_LIMIT_TRUSTED_IPS), to a route without limits (health checks) or to no route
at all (404) takes no budget, gets no RateLimit-* headers and costs one look-up.
"""
from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, g, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import HTTPException

from .errors import AppError, TooManyRequests
from .web import request_json

log = logging.getLogger("trcommon.ratelimit")

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


@dataclass(frozen=True)
class Budget:
    """One budget: its windows (`5/minute;20/hour`: each must have room), whose it is (`key`: the client's address,
    an account), the status it counts when it counts only one outcome (any other answer gives the unit back), and
    when a request takes none of it (`exempt_when`)."""

    scope: str
    windows: tuple[RateLimitItem, ...]
    message: str
    key: Callable[[], str] = client_ip
    counted_on: int | None = None
    exempt_when: Callable[[], bool] | None = None

    @classmethod
    def of(cls, limits: str, scope: str, message: str, **kw) -> "Budget":
        # The shortest window first: the one a client meets first is the one it is told about.
        windows = tuple(sorted(parse_many(limits), key=lambda w: w.GRANULARITY.seconds * w.multiples))
        return cls(scope, windows, message, **kw)


@dataclass
class _Taken:
    """A window of a budget this request asked for a unit of, and what the window said."""

    budget: Budget
    window: RateLimitItem
    identifiers: tuple[str, ...]
    granted: bool
    _stats: tuple[float, int] | None = None


class RateLimits:
    """The budgets of one Flask app and the decorators its routes use. Build it before the routes, install it
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
        self._trusted_seen: dict[str, bool] = {}
        self.storage = storage_from_string(config.storage_url)
        self._windows = MovingWindowRateLimiter(self.storage)
        self._exempt_blueprints: set[str] = set()
        self.per_ip = Budget.of(config.per_ip, "per-ip", "too many requests from this address")
        self.auth = self._guard(Budget.of(config.auth_per_ip, "auth",
                                          "too many sign-ups and logins from this address"))
        self.login_failures = self._guard(Budget.of(
            config.login_failures_per_account, "login-failures", "too many failed logins for this account",
            key=login_account, counted_on=401, exempt_when=lambda: not login_account()))

    def holds(self, account: Callable[[], str]) -> Callable:
        """The hold budgets of POST /reserve, counted on each hold made (201); `account` names the caller (the
        decorated view runs after the caller is authenticated)."""
        per_ip = self._guard(Budget.of(self.config.holds_per_ip, "holds-ip", "too many holds from this address",
                                       counted_on=201))
        per_account = self._guard(Budget.of(self.config.holds_per_account, "holds-account",
                                            "too many holds for this account", key=account, counted_on=201))
        return lambda view: per_ip(per_account(view))

    def exempt(self, blueprint):
        """No limit on these routes: health checks, whose 429 would make a load balancer drop this process."""
        self._exempt_blueprints.add(blueprint.name)
        return blueprint

    def install(self, app: Flask) -> None:
        app.before_request(self._check_per_ip)
        app.after_request(self._settle)

    # --- per request ----------------------------------------------------------------------------------------------

    def _trusted_client(self) -> bool:
        address = client_ip()
        known = self._trusted_seen.get(address)
        if known is None:
            try:
                parsed = ipaddress.ip_address(address)
                known = any(parsed in network for network in self._trusted)
            except ValueError:
                known = False
            if len(self._trusted_seen) >= 4096:
                self._trusted_seen.clear()
            self._trusted_seen[address] = known
        return known

    def _limited(self) -> bool:
        """Whether this request takes budgets at all (decided once per request)."""
        limited = g.get("rate_limited")
        if limited is None:
            limited = g.rate_limited = bool(
                request.endpoint is not None and request.blueprint not in self._exempt_blueprints
                and not (self._trusted and self._trusted_client()))
        return limited

    def _check_per_ip(self) -> None:
        if self._limited():
            self._take(self.per_ip)

    def _guard(self, budget: Budget) -> Callable:
        def decorator(view):
            @functools.wraps(view)
            def limited_view(*args, **kwargs):
                if self._limited():
                    self._take(budget)
                return view(*args, **kwargs)
            return limited_view
        return decorator

    def _take(self, budget: Budget) -> None:
        """One unit of each of the budget's windows, shortest first; the first without room refuses the request
        (429). The storage failing lets the request through (logged)."""
        if budget.exempt_when is not None and budget.exempt_when():
            return
        taken: list[_Taken] = g.setdefault("rate_limits_taken", [])
        try:
            identifiers = (self.config.key_prefix, budget.key(), budget.scope)
            for window in budget.windows:
                granted = self._windows.hit(window, *identifiers)
                taken.append(_Taken(budget, window, identifiers, granted))
                if not granted:
                    break
        except AppError:
            raise
        except Exception:       # the counters' storage is down
            log.warning("rate limit counters unavailable; the request goes through", exc_info=True)
            g.rate_limited = False
            return
        if not taken[-1].granted:
            retry_after = max(1, self._seconds_left(taken[-1]) or 1)
            raise TooManyRequests(f"{budget.message}; retry in {retry_after} s", retry_after=retry_after)

    def _stats(self, t: _Taken) -> tuple[float, int]:
        if t._stats is None:
            t._stats = tuple(self._windows.get_window_stats(t.window, *t.identifiers))
        return t._stats

    def _seconds_left(self, t: _Taken) -> int:
        return max(0, math.ceil(self._stats(t)[0] - time.time()))

    def _settle(self, response: Response) -> Response:
        """Give back the units of outcome-counted budgets this answer does not count, then write the headers."""
        taken: list[_Taken] | None = g.get("rate_limits_taken")
        if not taken or not g.get("rate_limited"):
            return response
        try:
            for t in taken:
                counted = t.budget.counted_on
                if counted is not None and t.granted and response.status_code != counted:
                    give_back(self.storage, t.window.key_for(*t.identifiers))
            # The limit this client will meet first: the one refused, else the one with the least left.
            current = taken[-1] if not taken[-1].granted else min(taken, key=lambda t: self._stats(t)[1])
            response.headers[LIMIT_HEADER] = str(current.window.amount)
            response.headers[REMAINING_HEADER] = str(max(0, self._stats(current)[1]))
            response.headers[RESET_HEADER] = str(self._seconds_left(current))
        except Exception:       # the counters' storage is down: the answer goes out as it is
            log.warning("rate limit counters unavailable", exc_info=True)
        return response
