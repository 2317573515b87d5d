"""Flask plumbing shared by every HTTP service: request ids, access logs, the JSON error map, input parsing,
contract routes, health checks and the internal-credential guard."""
from __future__ import annotations

import functools
import hmac
import json
import logging
import re
import time
from typing import Callable, TypeVar

import orjson
from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import NullSession, SessionInterface
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from trcontracts.base import CONTROL_CHARACTERS, HEALTH, CommonError, Health, Route

from .errors import AppError, InvalidInput, Unauthorized, invalid_input
from .logs import REQUEST_ID_HEADER, current_request_id, request_context
from .process import start_app
from .settings import CommonSettings

log = logging.getLogger("trcommon.web")
access_log = logging.getLogger("access")

INTERNAL_TOKEN_HEADER = "X-Internal-Token"
REQUEST_ID_WSGI_KEY = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")

ACCESS_LOG_LEVEL = "access_log_level"

M = TypeVar("M", bound=BaseModel)


class ServiceBlueprint(Blueprint):
    """A blueprint of our services (internal routes, health)."""

    @staticmethod
    def polled(view: Callable) -> Callable:
        """Mark a route that machines call over and over (health checks, a worker's every-second query): its
        access-log line is DEBUG, so an idle system is quiet at INFO.

            @bp.get("/orders/stale")
            @bp.polled
            def stale_orders(): ...
        """
        setattr(view, ACCESS_LOG_LEVEL, logging.DEBUG)
        return view


# Flask's own reply (compact, keys in order, a final newline); values orjson does not write itself go through
# Flask's default, so a datetime is still an HTTP date, a Decimal a string. Only non-ASCII text differs: UTF-8
# rather than \u escapes, the same JSON.
_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


class OrjsonProvider(DefaultJSONProvider):
    """jsonify written by orjson; reading request bodies stays with the standard json module."""

    sort_keys = False
    compact = True

    def response(self, *args, **kwargs):
        data = orjson.dumps(self._prepare_response_obj(args, kwargs), default=self.default, option=_ORJSON_OPTIONS)
        return self._app.response_class(data, mimetype=self.mimetype)


class NoSessions(SessionInterface):
    """No cookie sessions: a caller is known by the token of each request, never by a cookie. Every request shares
    one empty session that refuses writes, instead of Flask building a session object per request (about 7% of the
    in-process CPU of an edge request)."""

    _none = NullSession()

    def open_session(self, app, request):
        return self._none

    def save_session(self, app, session, response) -> None:
        return None


def create_flask_app(name: str, settings: CommonSettings) -> Flask:
    app = Flask(name.replace("-", "_"))
    app.session_interface = NoSessions()
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes     # a longer body: 413 in the error format
    app.json = OrjsonProvider(app)

    # The request id covers the whole request: before_request, the view, after_request and teardown all run
    # inside Flask's wsgi_app.
    handle = app.wsgi_app

    def wsgi_app(environ, start_response):
        with request_context(environ.get(REQUEST_ID_WSGI_KEY)):
            return handle(environ, start_response)

    app.wsgi_app = wsgi_app

    @app.before_request
    def _start():
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        response.headers[REQUEST_ID_HEADER] = current_request_id()
        started = g.get("started")
        level = getattr(app.view_functions.get(request.endpoint), ACCESS_LOG_LEVEL, logging.INFO)
        if started is not None and access_log.isEnabledFor(level):
            access_log.log(
                level, "request",
                extra={"method": request.method, "path": request.path, "status": response.status_code,
                       "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
            )
        return response

    register_error_handlers(app)
    return app


def error_response(err: AppError):
    response = jsonify(err.body())
    response.status_code = err.status
    if err.retry_after is not None:
        response.headers["Retry-After"] = str(err.retry_after)
    return response


def register_error_handlers(app: Flask) -> None:
    """The one error map of the HTTP transport."""

    @app.errorhandler(AppError)
    def _app_error(err: AppError):
        if err.status >= 500:
            log.warning("request failed", extra={"code": err.code, "error_message": err.message})
        return error_response(err)

    @app.errorhandler(ValidationError)
    def _validation(err: ValidationError):
        return error_response(invalid_input(err))

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        code = (err.name or "error").upper().replace(" ", "_")
        response = error_response(AppError(err.description or err.name, code=code, status=err.code or 500))
        if err.code == 405 and err.valid_methods:
            response.headers["Allow"] = ", ".join(err.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error")
        return error_response(AppError("internal error"))


# What a JSON body may hold before any model sees it: nesting a few levels deep (no decoder recursion), integers
# that fit the database's bigint, no NaN or Infinity, and text without control characters (PostgreSQL refuses
# NUL; the others have no place in a field).
MAX_JSON_DEPTH = 32
MAX_JSON_INT = 2**63 - 1
# The refused characters as a regular expression class (the same in Python, JSON Schema and JavaScript), so the
# public API's OpenAPI document can state the rule.
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")


class _Refused(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class _NotANumber:
    """What the decoder leaves for an integer beyond 64 bits, NaN or Infinity, for the check to name its field."""


_NOT_A_NUMBER = _NotANumber()


def _bounded_int(text: str):
    # More than 19 digits is out of range without converting (int() refuses past 4,300 digits anyway).
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > MAX_JSON_INT:
        return _NOT_A_NUMBER
    return value


def _checked(value, path: tuple = (), depth: int = 1):
    if depth > MAX_JSON_DEPTH:
        raise _Refused(f"the body is nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise _Refused("text must not hold control characters", ".".join(map(str, path)))
    elif value is _NOT_A_NUMBER or (isinstance(value, float) and (value != value or abs(value) == float("inf"))):
        raise _Refused("number out of range (integers: 64 bits; no NaN or Infinity)", ".".join(map(str, path)))
    elif isinstance(value, dict):
        for key, item in value.items():
            _checked(key, path, depth)
            _checked(item, (*path, key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _checked(item, (*path, i), depth + 1)
    return value


def load_json_body(raw: bytes) -> object:
    """A request body as JSON under the rules above; anything else is a 400 in the error format (naming the field
    when one is at fault, as a model's own 400 does)."""
    try:
        return _checked(json.loads(raw, parse_int=_bounded_int, parse_constant=lambda _: _NOT_A_NUMBER))
    except _Refused as exc:
        if exc.field is None:
            raise InvalidInput(str(exc)) from None
        raise InvalidInput("request is invalid", details=[{"field": exc.field, "message": str(exc)}]) from None
    except RecursionError:
        raise InvalidInput(f"the body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError:      # bad JSON or bad UTF-8 (UnicodeDecodeError is a ValueError)
        raise InvalidInput("request body must be a JSON object (Content-Type: application/json)") from None


def request_json() -> object:
    """The current request's body as load_json_body reads it, parsed once per request however many readers ask
    (the login-failure rate limit and the route's model both read the login body)."""
    if "json_body" not in g:
        g.json_body = load_json_body(request.get_data(cache=True))
    return g.json_body


def parse_body(model: type[M]) -> M:
    """Validate the JSON body against a pydantic model; anything else is a 400 in the error format, a body over
    MAX_BODY_BYTES a 413."""
    if not request.is_json:
        raise InvalidInput("request body must be a JSON object (Content-Type: application/json)")
    data = request_json()
    if not isinstance(data, dict):
        raise InvalidInput("request body must be a JSON object")
    return model.model_validate(data)


def parse_query(model: type[M]) -> M:
    return model.model_validate(request.args.to_dict())


def json_reply(model: BaseModel, status: int = 200):
    """A contract model as the JSON answer (times in RFC 3339, enums by name, fields in declared order), written
    by pydantic's own serializer in one pass."""
    response = current_app.response_class(model.model_dump_json() + "\n", mimetype=current_app.json.mimetype)
    response.status_code = status
    return response


def flask_rule(route: Route) -> str:
    return route.path.format(**{name: f"<{name}>" for name in route.path_params})


# The most of an unread request body the edge reads after its answer (DrainUnreadBody); a larger one may still
# lose its answer to a reset.
DRAIN_MAX_BYTES = 1024 * 1024


class DrainUnreadBody:
    """WSGI middleware: after the answer, read what is left of the request body (at most DRAIN_MAX_BYTES).

    An answer given before the body was read (a 401 for a missing token, a 413 for a body over MAX_BODY_BYTES) is
    otherwise often lost when the server closes the connection with the unread body still in the socket's buffer:
    the kernel then resets the connection, and the client sees the reset instead of the answer
    (e2e-tests/test_server_errors.py). Requests without a body keep their response as it is."""

    def __init__(self, wsgi_app, limit: int = DRAIN_MAX_BYTES):
        self.wsgi_app = wsgi_app
        self.limit = limit

    def __call__(self, environ, start_response):
        result = self.wsgi_app(environ, start_response)
        has_body = environ.get("CONTENT_LENGTH", "") not in ("", "0") or "chunked" in environ.get(
            "HTTP_TRANSFER_ENCODING", "").lower()
        return _DrainedOnClose(result, environ.get("wsgi.input"), self.limit) if has_body else result


class _DrainedOnClose:
    def __init__(self, result, stream, limit: int):
        self.result, self.stream, self.limit = result, stream, limit

    def __iter__(self):
        return iter(self.result)

    def close(self) -> None:
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            left = self.limit
            try:
                while left > 0 and (chunk := self.stream.read(min(65536, left))):
                    left -= len(chunk)
            except (OSError, ValueError):     # the client went away, or the server closed the stream
                pass


def serve(bp: Blueprint, route: Route):
    """Register the decorated view as the server of a contract route: method and path come from the route, the
    body or query is parsed with the route's model and passed as `body=` or `query=` (path parameters by name),
    and the view returns the route's response model (or `(model, status)` when the status varies)."""

    def decorator(view):
        @functools.wraps(view)
        def endpoint(**path):
            if route.body is not None:
                path["body"] = parse_body(route.body)
            if route.query is not None:
                path["query"] = parse_query(route.query)
            result = view(**path)
            model, status = result if isinstance(result, tuple) else (result, route.status)
            if not isinstance(model, route.response):
                raise TypeError(f"{route.method} {route.path} answers {route.response.__name__}, "
                                f"not {type(model).__name__}")
            return json_reply(model, status)

        bp.add_url_rule(flask_rule(route), view.__name__, endpoint, methods=[route.method])
        return view

    return decorator


def internal_blueprint(name: str, import_name: str, settings: CommonSettings, **kwargs) -> ServiceBlueprint:
    """A blueprint whose every route requires the internal service credential (never routed by the gateway)."""
    bp = ServiceBlueprint(name, import_name, **kwargs)
    expected = settings.internal_service_token.encode()

    @bp.before_request
    def _require_internal_credential():
        given = request.headers.get(INTERNAL_TOKEN_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            raise Unauthorized("internal service credential required",
                               code=CommonError.INTERNAL_CREDENTIAL_REQUIRED)

    return bp


HealthCheck = Callable[[], None]


def health_blueprint(checks: dict[str, HealthCheck]) -> ServiceBlueprint:
    """`GET /health`: 200 when every named check passes, 503 with the failing ones otherwise."""
    bp = ServiceBlueprint("health", __name__)

    @serve(bp, HEALTH)
    @bp.polled
    def health():
        results, ok = {}, True
        for name, check in checks.items():
            try:
                check()
                results[name] = "up"
            except Exception as exc:  # a health check reports, it never raises
                ok = False
                results[name] = f"down: {type(exc).__name__}"
        return Health(status="ok" if ok else "unavailable", checks=results), (200 if ok else 503)

    return bp


def database_service_app(settings_class, bootstrap, settings=None, container=None):
    """The start of every database-owning HTTP service: trcommon.process's start-up (settings from the
    environment unless given, JSON logging, the composition root built with a bounded wait for the database
    unless given, e.g. by tests), then the Flask app with the common plumbing and `GET /health` checking the
    database.

    Returns (app, settings, container); the service then registers its own blueprints."""
    from .db import check_database

    settings, container = start_app(settings_class, bootstrap, settings=settings, container=container,
                                    database=True)
    app = create_flask_app(settings.service_name, settings)
    engine = container.engine
    app.register_blueprint(health_blueprint({"database": lambda: check_database(engine)}))
    return app, settings, container
