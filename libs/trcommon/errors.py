"""The error vocabulary shared by every service: `{"error": {"code", "message"}}` plus an HTTP status."""
from __future__ import annotations


class AppError(Exception):
    """A business or input error that maps to a well-defined HTTP status and error code."""

    status = 500
    code = "INTERNAL_ERROR"
    # Lost a race for a lock held by someone else right now: the same call may succeed if retried. Transports
    # that can say so do (gRPC: ABORTED rather than the status that follows from `status`).
    contention = False

    def __init__(self, message: str = "", *, code: str | None = None, status: int | None = None,
                 details: object | None = None):
        super().__init__(message or self.__class__.__name__)
        self.message = message or "internal error"
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details

    def body(self) -> dict:
        err: dict = {"code": self.code, "message": self.message}
        if self.details is not None:
            err["details"] = self.details
        return {"error": err}


class InvalidInput(AppError):
    status, code = 400, "INVALID_INPUT"


class Unauthorized(AppError):
    status, code = 401, "UNAUTHORIZED"


class PaymentRequired(AppError):
    status, code = 402, "INSUFFICIENT_CREDITS"


class Forbidden(AppError):
    status, code = 403, "FORBIDDEN"


class NotFound(AppError):
    status, code = 404, "NOT_FOUND"


class Conflict(AppError):
    status, code = 409, "CONFLICT"


class Gone(AppError):
    status, code = 410, "GONE"


class PreconditionRequired(AppError):
    status, code = 428, "PRECONDITION_REQUIRED"


class TooManyRequests(AppError):
    status, code = 429, "TOO_MANY_REQUESTS"


class DependencyUnavailable(AppError):
    """A service or database we need is down or too slow: 503, and the caller may retry later."""

    status, code = 503, "SERVICE_UNAVAILABLE"


def error_from_body(status: int, body: object) -> AppError:
    """Rebuild an AppError from another service's error response, keeping its status and code."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return AppError(str(err.get("message", "")), code=str(err.get("code", "INTERNAL_ERROR")), status=status,
                        details=err.get("details"))
    return AppError(f"unexpected response ({status})", status=status if status >= 400 else 502,
                    code="BAD_GATEWAY")
