"""JWT access and refresh tokens (HS256 with exp, iat, iss, sub, role) and the route guard that reads them.

Identity always comes from a verified token, never from a request body or a forwarded header.
"""
from __future__ import annotations

import functools
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt
from cachetools import TLRUCache
from flask import g, request

from trcontracts.base import CommonError, canonical_uuid

from .errors import Forbidden, Unauthorized

ALGORITHM = "HS256"
ROLES = ("fan", "scanner", "admin")

# Verified tokens kept so that a client's next requests skip the signature check (HMAC and JSON decoding); an
# entry never outlives its token's exp, and exp and nbf are checked against the clock again on every use.
VERIFIED_CACHE_SIZE = 8192
VERIFIED_CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str


@dataclass(frozen=True)
class _Verified:
    """What a token's verified claims still decide on each use."""
    principal: Principal
    typ: object
    exp: int
    nbf: int | None


def _until_expiry(_token: str, verified: _Verified, now: float) -> float:
    return min(float(verified.exp), now + VERIFIED_CACHE_SECONDS)


# exp - iat may exceed the configured lifetime by this much (the issuer's rounding of times to seconds).
LIFETIME_SLACK_SECONDS = 5


class TokenService:
    def __init__(self, secret: str, issuer: str, access_ttl_seconds: int = 900, refresh_ttl_seconds: int = 1209600):
        self._secret = secret
        self.issuer = issuer
        self.access_ttl = access_ttl_seconds
        self.refresh_ttl = refresh_ttl_seconds
        self._verified: TLRUCache = TLRUCache(VERIFIED_CACHE_SIZE, ttu=_until_expiry, timer=time.time)
        self._verified_lock = threading.Lock()

    def _issue(self, principal: Principal, typ: str, ttl: int) -> str:
        now = datetime.now(timezone.utc)
        claims = {"iss": self.issuer, "sub": principal.user_id, "role": principal.role, "typ": typ,
                  "iat": now, "exp": now + timedelta(seconds=ttl), "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue_pair(self, principal: Principal) -> dict:
        return {"access_token": self._issue(principal, "access", self.access_ttl),
                "refresh_token": self._issue(principal, "refresh", self.refresh_ttl),
                "token_type": "Bearer", "expires_in": self.access_ttl}

    def issue_access(self, principal: Principal) -> dict:
        return {"access_token": self._issue(principal, "access", self.access_ttl), "token_type": "Bearer",
                "expires_in": self.access_ttl}

    def verify(self, token: str, typ: str = "access") -> Principal:
        with self._verified_lock:
            verified = self._verified.get(token)
        if verified is None:
            verified = self._decode(token)
            with self._verified_lock:
                self._verified[token] = verified
        # The same clock checks as jwt.decode's (no leeway), on every use of a cached token.
        now = time.time()
        if verified.exp <= now:
            raise Unauthorized("token has expired", code=CommonError.TOKEN_EXPIRED)
        if verified.nbf is not None and verified.nbf > now:
            raise Unauthorized("token is invalid", code=CommonError.INVALID_TOKEN)
        if verified.typ != typ:
            raise Unauthorized("token is invalid", code=CommonError.INVALID_TOKEN)
        return verified.principal

    def _decode(self, token: str) -> _Verified:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], issuer=self.issuer,
                                options={"require": ["exp", "iat", "iss", "sub", "role"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token has expired", code=CommonError.TOKEN_EXPIRED) from None
        except jwt.InvalidTokenError:
            raise Unauthorized("token is invalid", code=CommonError.INVALID_TOKEN) from None
        if claims["role"] not in ROLES:
            raise Unauthorized("token is invalid", code=CommonError.INVALID_TOKEN)
        # A token meant to live longer than this system issues (a leaked secret's forgery, or a token from a
        # misconfigured issuer) is refused rather than honoured for a century.
        lifetime = self.refresh_ttl if claims.get("typ") == "refresh" else self.access_ttl
        try:
            too_long = int(claims["exp"]) - int(claims["iat"]) > lifetime + LIFETIME_SLACK_SECONDS
        except (TypeError, ValueError):
            too_long = True
        if too_long:
            raise Unauthorized("token is invalid", code=CommonError.INVALID_TOKEN)
        # The subject names a user by id, and is pasted into nothing: anything but a UUID is no identity.
        user_id = canonical_uuid(claims["sub"])
        if user_id is None:
            raise Unauthorized("token is invalid", code=CommonError.INVALID_TOKEN)
        nbf = claims.get("nbf")
        return _Verified(Principal(user_id=user_id, role=claims["role"]), claims.get("typ"),
                         int(claims["exp"]), None if nbf is None else int(nbf))


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a Bearer token is required", code=CommonError.AUTH_REQUIRED)
    return token.strip()


def require_auth(tokens: TokenService, *roles: str):
    """Route decorator: verify the Bearer access token and, if roles are given, the caller's role.
    The verified principal is put in `flask.g.principal`."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            principal = tokens.verify(bearer_token())
            if roles and principal.role not in roles:
                raise Forbidden(f"this action needs the role {' or '.join(roles)}", code=CommonError.WRONG_ROLE)
            g.principal = principal
            return view(*args, **kwargs)

        return wrapped

    return decorator


def current_principal() -> Principal:
    return g.principal
