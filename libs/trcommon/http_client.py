"""The internal HTTP client: one typed call per contract route, one keep-alive session per target service, a
deadline on every call, the internal service credential and the request id on every request, and one mapping of
failures to AppError."""
from __future__ import annotations

import logging
from typing import Mapping, TypeVar

import requests
from pydantic import BaseModel, ValidationError
from requests.adapters import HTTPAdapter

from trcontracts.base import HEALTH, CommonError, Route

from .errors import AppError, DependencyUnavailable, error_from_body, invalid_input
from .logs import REQUEST_ID_HEADER, current_request_id
from .web import INTERNAL_TOKEN_HEADER

log = logging.getLogger("trcommon.http")

M = TypeVar("M", bound=BaseModel)


def _request_fields(model: type[BaseModel] | None, given: BaseModel | Mapping | None, what: str) -> dict | None:
    """The JSON-ready fields of a route's body or query, validated by the route's own model: a mapping is
    validated here (the 400 the server would answer, without the round trip), an instance must be of that model."""
    if model is None:
        if given is not None:
            raise TypeError(f"this route takes no {what}")
        return None
    if not isinstance(given, model):
        if isinstance(given, BaseModel):
            raise TypeError(f"the {what} must be a {model.__name__}, not a {type(given).__name__}")
        try:
            given = model.model_validate(given or {})
        except ValidationError as err:
            raise invalid_input(err) from None
    return given.model_dump(mode="json", exclude_none=True)


class ServiceClient:
    def __init__(self, name: str, base_url: str, internal_token: str, timeout: float, pool_size: int = 32,
                 attempts: int = 2):
        self.name = name
        self.attempts = attempts
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers[INTERNAL_TOKEN_HEADER] = internal_token

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
        url = route.url(**(path or {}))
        reply = self._send(route.method, url, json=_request_fields(route.body, body, "body"),
                           params=_request_fields(route.query, query, "query"), data=raw, headers=headers,
                           timeout=timeout, idempotent=route.idempotent)
        try:
            return route.response.model_validate(reply)
        except ValidationError:
            log.warning("malformed answer", extra={"target": self.name, "path": route.path})
            raise AppError(f"{self.name} returned a malformed response", status=502,
                           code=CommonError.BAD_GATEWAY) from None

    def _send(self, method: str, path: str, *, json: object | None, params: dict | None, data: bytes | None,
              headers: Mapping[str, str] | None, timeout: float | None, idempotent: bool) -> dict:
        # A call whose answer was lost (connection reset after the commit, or a deadline passed) is retried once
        # when repeating it is harmless: reads, and writes keyed by a caller-chosen id or reference, whose retry
        # returns the stored result (docs/internal-api.md). Other writes (register, send an OTP) are not retried.
        attempts = self.attempts if idempotent else 1
        for attempt in range(1, attempts + 1):
            try:
                resp = self._session.request(method, self.base_url + path, json=json, params=params, data=data,
                                             timeout=timeout or self.timeout,
                                             headers={REQUEST_ID_HEADER: current_request_id(), **(headers or {})})
                break
            except requests.RequestException as exc:
                if attempt < attempts:
                    log.info("retrying internal call", extra={"target": self.name, "path": path,
                                                              "error": type(exc).__name__})
                    continue
                if isinstance(exc, requests.Timeout):
                    raise DependencyUnavailable(f"{self.name} did not answer in time",
                                                code=CommonError.DEPENDENCY_TIMEOUT) from exc
                raise DependencyUnavailable(f"{self.name} is unavailable") from exc
        try:
            body = resp.json() if resp.content else {}
        except ValueError:
            body = None
        if resp.status_code >= 400:
            if resp.status_code in (502, 503, 504) and not (isinstance(body, dict) and "error" in body):
                raise DependencyUnavailable(f"{self.name} is unavailable")
            raise error_from_body(resp.status_code, body)
        return body

    def health(self) -> None:
        self.call(HEALTH, timeout=2)

    def close(self) -> None:
        self._session.close()
