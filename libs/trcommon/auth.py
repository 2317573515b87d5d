"""JWT access and refresh tokens (HS256 with exp, iat, iss, sub, role) and the route guard that reads them.

Identity always comes from a verified token, never from a request body or a forwarded header.
"""
from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt
from flask import g, request

from trcontracts.base import CommonError

from .errors import Forbidden, Unauthorized

ALGORITHM = "HS256"
ROLES = ("fan", "scanner", "admin")


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str


class TokenService:
    def __init__(self, secret: str, issuer: str, access_ttl_seconds: int = 900, refresh_ttl_seconds: int = 1209600):
        self._secret = secret
        self.issuer = issuer
        self.access_ttl = access_ttl_seconds
        self.refresh_ttl = refresh_ttl_seconds

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
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], issuer=self.issuer,
                                options={"require": ["exp", "iat", "iss", "sub", "role"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token has expired", code=CommonError.TOKEN_EXPIRED) from None
        except jwt.InvalidTokenError:
            raise Unauthorized("token is invalid", code=CommonError.INVALID_TOKEN) from None
        if claims.get("typ") != typ or claims["role"] not in ROLES:
            raise Unauthorized("token is invalid", code=CommonError.INVALID_TOKEN)
        return Principal(user_id=str(claims["sub"]), role=claims["role"])


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
