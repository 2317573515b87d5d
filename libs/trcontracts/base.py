"""The building blocks of every internal contract: error codes that carry their HTTP status, the route
declaration shared by a server and its clients, and the field types several contracts use.

Plain pydantic and the standard library: servers and clients import this, it imports neither.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum, auto
from typing import Annotated, Generic, TypeVar
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field, PlainSerializer

BIGINT_MAX = 2**63 - 1


class ErrorCode(StrEnum):
    """An error code (the `code` of `{"error": {"code", "message"}}`) and the HTTP status it comes with.

    Members are declared `NAME = auto(), status`. A code another contract owns is declared `NAME = Other.NAME`:
    same text, same status, written once."""

    status: int

    @staticmethod
    def _generate_next_value_(name, start, count, last_values):
        return name

    def __new__(cls, value: str, status: int | None = None):
        if status is None:
            status = value.status
        member = str.__new__(cls, value)
        member._value_ = str(value)
        member.status = status
        return member


class CommonError(ErrorCode):
    """Codes of the shared error map (trcommon): input, credentials, tokens and failures of any route."""

    INVALID_INPUT = auto(), 400
    UNAUTHORIZED = auto(), 401
    INTERNAL_CREDENTIAL_REQUIRED = auto(), 401
    AUTH_REQUIRED = auto(), 401
    INVALID_TOKEN = auto(), 401
    TOKEN_EXPIRED = auto(), 401
    PAYMENT_REQUIRED = auto(), 402
    FORBIDDEN = auto(), 403
    WRONG_ROLE = auto(), 403
    NOT_FOUND = auto(), 404
    CONFLICT = auto(), 409
    GONE = auto(), 410
    PRECONDITION_REQUIRED = auto(), 428
    TOO_MANY_REQUESTS = auto(), 429
    INTERNAL_ERROR = auto(), 500
    BAD_GATEWAY = auto(), 502
    SERVICE_UNAVAILABLE = auto(), 503
    DEPENDENCY_TIMEOUT = auto(), 503


# What any internal route may answer besides its own codes (a route with a body or query also answers
# INVALID_INPUT).
EVERY_ROUTE_ERRORS = (CommonError.INTERNAL_CREDENTIAL_REQUIRED, CommonError.SERVICE_UNAVAILABLE,
                      CommonError.INTERNAL_ERROR)


# --- field types -------------------------------------------------------------------------------------------------

def utc_iso(value: datetime) -> str:
    """RFC 3339 in UTC, the one way times are written between services."""
    return value.astimezone(timezone.utc).isoformat()


def _timestamp_string(value: object) -> object:
    # Without this, pydantic would also take a bare number of seconds for a time.
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp with a time zone, e.g. 2030-01-02T20:00:00Z")
    return value


# A point in time with a time zone; written as RFC 3339 in UTC (`2030-01-02T20:00:00+00:00`).
UtcTimestamp = Annotated[AwareDatetime, PlainSerializer(utc_iso, return_type=str, when_used="json")]
# The same, in a request body: only a string is taken.
Timestamp = Annotated[UtcTimestamp, BeforeValidator(_timestamp_string)]
# Integer credits that fit PostgreSQL's BIGINT; strict: "50" or 50.0 is refused, not converted.
Credits = Annotated[int, Field(strict=True, ge=0, le=BIGINT_MAX)]

_DECIMAL_INTEGER = re.compile(r"-?[0-9]{1,19}")


def _query_integer(value: object) -> object:
    # pydantic would read "1.0", " 5", "+5" and "5_0" as integers, and any number of digits.
    if isinstance(value, str) and not _DECIMAL_INTEGER.fullmatch(value):
        raise ValueError("must be an integer written in decimal digits (at most 19)")
    return value


# An integer from a query string: decimal digits only (a minus sign allowed); each field adds its own bounds, and
# every field of this type must have them (a value beyond 64 bits would otherwise reach the database).
QueryInt = Annotated[int, BeforeValidator(_query_integer)]
# How far into a list a page may start: deeper than any list here, far below BIGINT.
MAX_OFFSET = 1_000_000

# Characters no text of any request may hold (the edge's JSON guard refuses them in a body; the same class in
# Python, JSON Schema and JavaScript): C0 controls but tab, line feed and carriage return, and DEL.
CONTROL_CHARACTERS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


class Page(BaseModel):
    """A page of a list: `limit` items from `offset`."""

    limit: QueryInt = Field(50, ge=1, le=200)
    offset: QueryInt = Field(0, ge=0, le=MAX_OFFSET)


# Identifiers: a UUID in its standard 8-4-4-4-12 hexadecimal form (either case). Braces, `urn:uuid:` prefixes and
# missing or moved hyphens, which Python's uuid.UUID also reads, name nothing here.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN[1:-1])


def canonical_uuid(value: object) -> str | None:
    """The canonical text (lower case) of a UUID in its standard form, or None when `value` is not one."""
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value.lower()
    return None


# --- routes ------------------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
R = TypeVar("R", bound=BaseModel)


def path_segment(value: object) -> str:
    """One path segment holding `value` whatever its characters: `/`, `?`, `#` and `%` are escaped, and a
    value of dots is escaped too (a client would otherwise collapse `..` into the parent path)."""
    text = str(value)
    if not text:
        raise ValueError("an empty path parameter names nothing")
    if set(text) == {"."}:
        return "%2E" * len(text)
    return quote(text, safe="")


@dataclass(frozen=True)
class Route(Generic[R]):
    """One internal HTTP route, declared once and used by its server and its clients.

    `path` is a template whose `{name}` parts are single path segments. The request is `body` (a JSON object,
    for POST) or `query` (for GET); `raw_body` routes take the caller's bytes as they are (e.g. Stripe's signed
    body). `response` is the model of the success answer, sent with `status`. `errors` are the route's own
    error codes (EVERY_ROUTE_ERRORS apply to all). `idempotent` routes are retried once by the client when the
    answer is lost: a repeat returns the stored result instead of acting twice."""

    method: str
    path: str
    response: type[R]
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    raw_body: bool = False
    errors: tuple[ErrorCode, ...] = ()
    idempotent: bool = False
    doc: str = ""

    def __post_init__(self):
        if self.method not in ("GET", "POST"):
            raise ValueError(f"unsupported method {self.method}")
        if self.method == "GET" and (self.body is not None or self.raw_body or not self.idempotent):
            raise ValueError(f"GET {self.path}: a read has no body and is idempotent")
        if self.body is not None and self.raw_body:
            raise ValueError(f"{self.path}: a body model or a raw body, not both")

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER.findall(self.path))

    @property
    def all_errors(self) -> tuple[ErrorCode, ...]:
        """Every code the route itself can answer: its own, and INVALID_INPUT when it parses input."""
        parses = self.body is not None or self.query is not None
        extra = (CommonError.INVALID_INPUT,) if parses and CommonError.INVALID_INPUT not in self.errors else ()
        return self.errors + extra

    def url(self, **params: object) -> str:
        """The path with each parameter escaped as one segment, never pasted."""
        names = self.path_params
        if set(params) != set(names):
            raise TypeError(f"{self.path} takes the path parameters {sorted(names)}, got {sorted(params)}")
        return _PLACEHOLDER.sub(lambda m: path_segment(params[m.group(1)]), self.path)


class Health(BaseModel):
    status: str
    checks: dict[str, str]


HEALTH = Route("GET", "/health", Health, idempotent=True,
               doc="No credential needed. 503 with the same shape when a check fails.")
