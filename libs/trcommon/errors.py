"""The error vocabulary shared by every service: `{"error": {"code", "message"}}` plus an HTTP status.
The codes themselves are declared in trcontracts (CommonError, and each service's own enum).

An error that ends by itself after a while (a send cap, a rate limit) carries `retry_after` seconds: it is the
`retry_after` field of the error body, so it crosses internal hops with the body (an internal client rebuilds it
from there), and every service's error map turns it into the `Retry-After` header of its answer."""
from __future__ import annotations

from trcontracts.base import CommonError, ErrorCode


class AppError(Exception):
    """A business or input error that maps to a well-defined HTTP status and error code. A contract code
    (an ErrorCode) brings its own status, so a class or a call that names one need not repeat it."""

    code: str = CommonError.INTERNAL_ERROR
    status: int = CommonError.INTERNAL_ERROR.status
    # Lost a race for a lock held by someone else right now: the same call may succeed if retried. Transports
    # that can say so do (gRPC: ABORTED rather than the status that follows from `status`).
    contention = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__ and "status" not in cls.__dict__ and isinstance(cls.code, ErrorCode):
            cls.status = cls.code.status

    def __init__(self, message: str = "", *, code: str | None = None, status: int | None = None,
                 details: object | None = None, retry_after: int | None = None):
        super().__init__(message or self.__class__.__name__)
        self.message = message or "internal error"
        if code:
            self.code = code
            if status is None and isinstance(code, ErrorCode):
                status = code.status
        if status:
            self.status = status
        self.details = details
        self.retry_after = retry_after

    def body(self) -> dict:
        err: dict = {"code": self.code, "message": self.message}
        if self.details is not None:
            err["details"] = self.details
        if self.retry_after is not None:
            err["retry_after"] = self.retry_after
        return {"error": err}


class InvalidInput(AppError):
    code = CommonError.INVALID_INPUT


class Unauthorized(AppError):
    code = CommonError.UNAUTHORIZED


class PaymentRequired(AppError):
    code = CommonError.PAYMENT_REQUIRED


class Forbidden(AppError):
    code = CommonError.FORBIDDEN


class NotFound(AppError):
    code = CommonError.NOT_FOUND


class Conflict(AppError):
    code = CommonError.CONFLICT


class Gone(AppError):
    code = CommonError.GONE


class PreconditionRequired(AppError):
    code = CommonError.PRECONDITION_REQUIRED


class TooManyRequests(AppError):
    code = CommonError.TOO_MANY_REQUESTS


class DependencyUnavailable(AppError):
    """A service or database we need is down or too slow: 503, and the caller may retry later."""

    code = CommonError.SERVICE_UNAVAILABLE


def error_from_body(status: int, body: object) -> AppError:
    """Rebuild an AppError from another service's error response, keeping its status and code."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        retry_after = err.get("retry_after")
        if not (isinstance(retry_after, int) and not isinstance(retry_after, bool) and retry_after >= 0):
            retry_after = None
        return AppError(str(err.get("message", "")), code=str(err.get("code", CommonError.INTERNAL_ERROR)),
                        status=status, details=err.get("details"), retry_after=retry_after)
    return AppError(f"unexpected response ({status})", status=status if status >= 400 else 502,
                    code=CommonError.BAD_GATEWAY)


def invalid_input(err) -> InvalidInput:
    """The 400 for a pydantic ValidationError, naming each field that failed and why."""
    details = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
               for e in err.errors(include_url=False, include_input=False)]
    return InvalidInput("request is invalid", details=details)
