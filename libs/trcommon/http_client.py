"""The internal HTTP client: one keep-alive session per target service, a deadline on every call, the internal
service credential and the request id on every request, and one mapping of failures to AppError."""
from __future__ import annotations

import logging

import requests
from requests.adapters import HTTPAdapter

from .errors import AppError, DependencyUnavailable, error_from_body
from .logs import REQUEST_ID_HEADER, current_request_id
from .web import INTERNAL_TOKEN_HEADER

log = logging.getLogger("trcommon.http")


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

    def request(self, method: str, path: str, *, json: object | None = None, params: dict | None = None,
                timeout: float | None = None, data: bytes | None = None, headers: dict | None = None,
                idempotent: bool | None = None) -> dict:
        """Call the service; return its JSON body on 2xx, raise the service's own AppError on 4xx/5xx and
        DependencyUnavailable when it cannot be reached or does not answer within the deadline."""
        # A call whose answer was lost (connection reset after the commit, or a deadline passed) is retried once
        # when repeating it is harmless: GETs, and writes keyed by a caller-chosen id or reference, whose retry
        # returns the stored result (docs/internal-api.md). Other writes (register, send an OTP) are not retried.
        attempts = self.attempts if (method == "GET" if idempotent is None else idempotent) else 1
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
                                                code="DEPENDENCY_TIMEOUT") from exc
                raise DependencyUnavailable(f"{self.name} is unavailable") from exc
        try:
            body = resp.json() if resp.content else {}
        except ValueError:
            body = None
        if resp.status_code >= 400:
            if resp.status_code in (502, 503, 504) and not (isinstance(body, dict) and "error" in body):
                raise DependencyUnavailable(f"{self.name} is unavailable")
            raise error_from_body(resp.status_code, body)
        if not isinstance(body, dict):
            raise AppError(f"{self.name} returned a malformed response", status=502, code="BAD_GATEWAY")
        return body

    def get(self, path: str, **kwargs) -> dict:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: object | None = None, **kwargs) -> dict:
        return self.request("POST", path, json=json, **kwargs)

    def health(self) -> None:
        self.get("/health", timeout=2)

    def close(self) -> None:
        self._session.close()
