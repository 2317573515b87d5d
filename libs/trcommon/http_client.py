"""The internal HTTP client: one typed call per contract route, one keep-alive connection pool per target service,
a deadline on every call, the internal service credential and the request id on every request, and one mapping of
failures to AppError."""
from __future__ import annotations

import json
import logging
import threading
from io import BytesIO
from typing import Mapping, TypeVar
from urllib.parse import urlencode

import pycurl
from pydantic import BaseModel, ValidationError

from trcontracts.base import HEALTH, CommonError, Route

from .errors import AppError, DependencyUnavailable, error_from_body, invalid_input
from .logs import REQUEST_ID_HEADER, current_request_id
from .web import INTERNAL_TOKEN_HEADER

log = logging.getLogger("trcommon.http")

M = TypeVar("M", bound=BaseModel)

_JSON_CONTENT = "Content-Type: application/json"


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
    """Calls go through libcurl (pycurl): one easy handle per thread and target service, reset for every call,
    whose connection is kept alive between calls. No proxy, netrc or cookie work per call; the client side of a
    call costs about a quarter of what urllib3 and http.client cost (make bench, see the commit that moved here).

    libcurl repeats a request by itself when a kept-alive connection turns out to be dead before any answer came
    back. That is harmless for the routes marked idempotent (reads, and writes keyed by a caller-chosen id or
    reference, which we retry ourselves anyway), and wrong for the others (register, send an OTP): those go over
    a fresh connection that is closed after the call, so libcurl never has a reused connection to retry on."""

    def __init__(self, name: str, base_url: str, internal_token: str, timeout: float, attempts: int = 2):
        self.name = name
        self.attempts = attempts
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token = internal_token
        self._local = threading.local()
        self._handles: list[pycurl.Curl] = []
        self._handles_lock = threading.Lock()

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
        url = self.base_url + route.url(**(path or {}))
        send_headers = [f"{INTERNAL_TOKEN_HEADER}: {self._token}", f"{REQUEST_ID_HEADER}: {current_request_id()}",
                        "Expect:"]
        payload = raw
        model = _validated(route.body, body, "body")
        if model is not None:
            payload = model.model_dump_json(exclude_none=True).encode()
            send_headers.append(_JSON_CONTENT)
        params = _validated(route.query, query, "query")
        if params is not None:
            fields = params.model_dump(mode="json", exclude_none=True)
            if fields:
                url += "?" + urlencode(fields, doseq=True)
        if headers:
            send_headers.extend(f"{k}: {v}" for k, v in headers.items())
        data = self._send(route.method, url, payload, send_headers, timeout or self.timeout, route.idempotent)
        try:
            return route.response.model_validate_json(data) if data else route.response.model_validate({})
        except ValidationError:
            log.warning("malformed answer", extra={"target": self.name, "path": route.path})
            raise AppError(f"{self.name} returned a malformed response", status=502,
                           code=CommonError.BAD_GATEWAY) from None

    def _handle(self) -> pycurl.Curl:
        curl = getattr(self._local, "curl", None)
        if curl is None:
            curl = self._local.curl = pycurl.Curl()
            with self._handles_lock:
                self._handles.append(curl)
        return curl

    def _send(self, method: str, url: str, payload: bytes | None, headers: list[str], timeout: float,
              idempotent: bool) -> bytes:
        """The reply's bytes of a 2xx answer; an AppError for any other."""
        # A call whose answer was lost (connection reset after the commit, or a deadline passed) is retried once
        # when repeating it is harmless: reads, and writes keyed by a caller-chosen id or reference, whose retry
        # returns the stored result (docs/internal-api.md). Other writes (register, send an OTP) are not retried.
        attempts = self.attempts if idempotent else 1
        curl = self._handle()
        for attempt in range(1, attempts + 1):
            reply = BytesIO()
            curl.reset()            # every option back to its default; the kept-alive connection stays
            curl.setopt(pycurl.URL, url)
            curl.setopt(pycurl.PATH_AS_IS, 1)        # the path as built: segments escaped, nothing collapsed
            curl.setopt(pycurl.PROXY, "")            # never a proxy from the environment
            curl.setopt(pycurl.NOSIGNAL, 1)          # timeouts without signals: we run in threads
            curl.setopt(pycurl.TIMEOUT_MS, int(timeout * 1000))
            curl.setopt(pycurl.CONNECTTIMEOUT_MS, int(timeout * 1000))
            curl.setopt(pycurl.HTTPHEADER, headers)
            curl.setopt(pycurl.WRITEDATA, reply)
            if method != "GET":
                curl.setopt(pycurl.CUSTOMREQUEST, method)
            if payload is not None or method == "POST":
                curl.setopt(pycurl.POSTFIELDS, payload or b"")
            if not idempotent:
                curl.setopt(pycurl.FRESH_CONNECT, 1)
                curl.setopt(pycurl.FORBID_REUSE, 1)
            try:
                curl.perform()
                break
            except pycurl.error as exc:
                code = exc.args[0]
                if attempt < attempts:
                    log.info("retrying internal call", extra={"target": self.name, "path": url,
                                                              "error": f"curl {code}"})
                    continue
                if code == pycurl.E_OPERATION_TIMEDOUT:
                    raise DependencyUnavailable(f"{self.name} did not answer in time",
                                                code=CommonError.DEPENDENCY_TIMEOUT) from exc
                raise DependencyUnavailable(f"{self.name} is unavailable") from exc
        status = curl.getinfo(pycurl.RESPONSE_CODE)
        data = reply.getvalue()
        if status >= 400:
            try:
                body = json.loads(data) if data else {}
            except ValueError:
                body = None
            if status in (502, 503, 504) and not (isinstance(body, dict) and "error" in body):
                raise DependencyUnavailable(f"{self.name} is unavailable")
            raise error_from_body(status, body)
        return data

    def health(self) -> None:
        self.call(HEALTH, timeout=2)

    def close(self) -> None:
        """Closes every thread's handle and its connection (at shutdown: no call may be in progress)."""
        with self._handles_lock:
            handles, self._handles = self._handles, []
        for curl in handles:
            curl.close()
