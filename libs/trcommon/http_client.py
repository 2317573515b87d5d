"""The internal HTTP client: one typed call per contract route, one keep-alive connection pool per target service,
a deadline on every call, the internal service credential and the request id on every request, and one mapping of
failures to AppError."""
from __future__ import annotations

import json
import logging
from typing import Mapping, TypeVar
from urllib.parse import urlencode

import urllib3
from pydantic import BaseModel, ValidationError
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError as Urllib3Timeout

from trcontracts.base import HEALTH, CommonError, Route

from .errors import AppError, DependencyUnavailable, error_from_body, invalid_input
from .logs import REQUEST_ID_HEADER, current_request_id
from .web import INTERNAL_TOKEN_HEADER

log = logging.getLogger("trcommon.http")

M = TypeVar("M", bound=BaseModel)

_JSON = "application/json"


def _validated(model: type[BaseModel] | None, given: BaseModel | Mapping | None, what: str) -> BaseModel | None:
    """A route's body or query as an instance of the route's own model: a mapping is validated here (the 400 the
    server would answer, without the round trip), an instance must be of that model and is taken as it is."""
    if model is None:
        if given is not None:
            raise TypeError(f"this route takes no {what}")
        return None
    if isinstance(given, model):
        return given
    if isinstance(given, BaseModel):
        raise TypeError(f"the {what} must be a {model.__name__}, not a {type(given).__name__}")
    try:
        return model.model_validate(given or {})
    except ValidationError as err:
        raise invalid_input(err) from None


class ServiceClient:
    """Calls go straight to a urllib3 connection pool: no proxy, netrc or cookie work per call, and the pool's
    connections are kept alive between calls (at most `pool_size` kept; more are opened when needed)."""

    def __init__(self, name: str, base_url: str, internal_token: str, timeout: float, pool_size: int = 32,
                 attempts: int = 2):
        self.name = name
        self.attempts = attempts
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._prefix = urllib3.util.parse_url(self.base_url).path or ""
        self._token = internal_token
        # Retries are ours (only for idempotent routes, below); redirects are never followed.
        self._pool = urllib3.connection_from_url(self.base_url, maxsize=pool_size, block=False, retries=False)
        self._timeouts: dict[float, urllib3.Timeout] = {}

    def call(self, route: Route[M], body: BaseModel | Mapping | None = None, *,
             path: Mapping[str, object] | None = None, query: BaseModel | Mapping | None = None,
             raw: bytes | None = None, headers: Mapping[str, str] | None = None,
             timeout: float | None = None) -> M:
        """Call a contract route and return its answer as the route's response model.

        `path` fills the route's path parameters, each escaped as one segment; `body`/`query` are the route's
        request model (or a mapping validated into it); `raw` is the body of a raw-body route. Raises the
        service's own AppError on 4xx/5xx and DependencyUnavailable when it cannot be reached or does not
        answer within the deadline."""
        if route.raw_body != (raw is not None):
            raise TypeError(f"{route.path} takes {'a' if route.raw_body else 'no'} raw body")
        url = self._prefix + route.url(**(path or {}))
        send_headers = {INTERNAL_TOKEN_HEADER: self._token, REQUEST_ID_HEADER: current_request_id()}
        payload = raw
        model = _validated(route.body, body, "body")
        if model is not None:
            payload = model.model_dump_json(exclude_none=True).encode()
            send_headers["Content-Type"] = _JSON
        params = _validated(route.query, query, "query")
        if params is not None:
            fields = params.model_dump(mode="json", exclude_none=True)
            if fields:
                url += "?" + urlencode(fields, doseq=True)
        if headers:
            send_headers.update(headers)
        data = self._send(route.method, url, payload, send_headers, timeout or self.timeout, route.idempotent)
        try:
            return route.response.model_validate_json(data) if data else route.response.model_validate({})
        except ValidationError:
            log.warning("malformed answer", extra={"target": self.name, "path": route.path})
            raise AppError(f"{self.name} returned a malformed response", status=502,
                           code=CommonError.BAD_GATEWAY) from None

    def _timeout(self, seconds: float) -> urllib3.Timeout:
        found = self._timeouts.get(seconds)
        if found is None:
            found = self._timeouts[seconds] = urllib3.Timeout(connect=seconds, read=seconds)
        return found

    def _send(self, method: str, url: str, payload: bytes | None, headers: dict, timeout: float,
              idempotent: bool) -> bytes:
        """The reply's bytes of a 2xx answer; an AppError for any other."""
        # A call whose answer was lost (connection reset after the commit, or a deadline passed) is retried once
        # when repeating it is harmless: reads, and writes keyed by a caller-chosen id or reference, whose retry
        # returns the stored result (docs/internal-api.md). Other writes (register, send an OTP) are not retried.
        attempts = self.attempts if idempotent else 1
        deadline = self._timeout(timeout)
        for attempt in range(1, attempts + 1):
            try:
                resp = self._pool.urlopen(method, url, body=payload, headers=headers, timeout=deadline,
                                          retries=False, redirect=False, assert_same_host=False)
                break
            except HTTPError as exc:
                if attempt < attempts:
                    log.info("retrying internal call", extra={"target": self.name, "path": url,
                                                              "error": type(exc).__name__})
                    continue
                # urllib3 counts a refused connection as a connect timeout; it is an unavailable service.
                if isinstance(exc, Urllib3Timeout) and not isinstance(exc, NewConnectionError):
                    raise DependencyUnavailable(f"{self.name} did not answer in time",
                                                code=CommonError.DEPENDENCY_TIMEOUT) from exc
                raise DependencyUnavailable(f"{self.name} is unavailable") from exc
        data = resp.data
        if resp.status >= 400:
            try:
                body = json.loads(data) if data else {}
            except ValueError:
                body = None
            if resp.status in (502, 503, 504) and not (isinstance(body, dict) and "error" in body):
                raise DependencyUnavailable(f"{self.name} is unavailable")
            raise error_from_body(resp.status, body)
        return data

    def health(self) -> None:
        self.call(HEALTH, timeout=2)

    def close(self) -> None:
        self._pool.close()
