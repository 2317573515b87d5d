"""The business outcomes of user-service, each with its error code (trcontracts.users) and HTTP status (via
trcommon.errors)."""
from __future__ import annotations

from trcommon.errors import (
    Conflict,
    DependencyUnavailable,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    PaymentRequired,
    PreconditionRequired,
    TooManyRequests,
    Unauthorized,
)
from trcontracts.base import CommonError
from trcontracts.users import UserError


class _DefaultMessage:
    default_message = ""

    def __init__(self, message: str = "", **kwargs):
        super().__init__(message or self.default_message, **kwargs)


class UserNotFound(_DefaultMessage, NotFound):
    code, default_message = UserError.USER_NOT_FOUND, "no such user"


class EmailTaken(_DefaultMessage, Conflict):
    code, default_message = UserError.EMAIL_TAKEN, "an account with this email already exists"


class InvalidCredentials(_DefaultMessage, Unauthorized):
    code, default_message = UserError.INVALID_CREDENTIALS, "email or password is wrong"


class InsufficientCredits(_DefaultMessage, PaymentRequired):
    code, default_message = UserError.INSUFFICIENT_CREDITS, "not enough credits"


class InsufficientPendingCredits(_DefaultMessage, PaymentRequired):
    code, default_message = UserError.INSUFFICIENT_PENDING_CREDITS, "not enough pending credits"


class ReferenceConflict(_DefaultMessage, Conflict):
    code = UserError.REFERENCE_CONFLICT
    default_message = "this reference was already used for another user, amount or account"


class OtpRequired(_DefaultMessage, PreconditionRequired):
    code, default_message = UserError.OTP_REQUIRED, "a one-time code was sent by SMS; repeat the request with otp_code"


class OtpInvalid(_DefaultMessage, Forbidden):
    code, default_message = UserError.OTP_INVALID, "the one-time code is not valid"


class OtpAlreadyUsed(OtpInvalid):
    default_message = "this code was already used; request a new one"


class DeadlinePassed(_DefaultMessage, Gone):
    code = UserError.HOLD_EXPIRED
    default_message = "the hold being paid for has ended; nothing was charged"


class OtpExpired(_DefaultMessage, Gone):
    code, default_message = UserError.OTP_EXPIRED, "the one-time code has expired; request a new one"


class OtpLocked(_DefaultMessage, TooManyRequests):
    code, default_message = UserError.OTP_LOCKED, "too many wrong codes; request a new one"


class OtpSendLimit(_DefaultMessage, TooManyRequests):
    code, default_message = UserError.OTP_SEND_LIMIT, "too many codes sent in the last hour"

    def __init__(self, message: str = "", retry_after_seconds: int | None = None, **kwargs):
        super().__init__(message, retry_after=retry_after_seconds, **kwargs)


class InvalidAmount(_DefaultMessage, InvalidInput):
    code, default_message = CommonError.INVALID_INPUT, "amount is out of range"


class PaymentsNotConfigured(_DefaultMessage, DependencyUnavailable):
    code, default_message = UserError.PAYMENTS_NOT_CONFIGURED, "payments are not configured on this server"


class DevelopmentOnly(_DefaultMessage, Forbidden):
    code = UserError.DEVELOPMENT_ONLY
    default_message = "development payments are refused with ENVIRONMENT=production"


class PaymentsUnavailable(_DefaultMessage, DependencyUnavailable):
    code, default_message = UserError.PAYMENTS_UNAVAILABLE, "the payment provider is unavailable"


class InvalidSignature(_DefaultMessage, InvalidInput):
    code, default_message = UserError.INVALID_SIGNATURE, "the webhook signature is missing, invalid or stale"


class InvalidPayload(_DefaultMessage, InvalidInput):
    code, default_message = UserError.INVALID_PAYLOAD, "the webhook body is not a Stripe event"


class OtpProviderUnavailable(_DefaultMessage, DependencyUnavailable):
    code, default_message = UserError.OTP_PROVIDER_UNAVAILABLE, "the OTP provider is unavailable"


class AdminActionNotFound(_DefaultMessage, NotFound):
    code, default_message = UserError.ADMIN_ACTION_NOT_FOUND, "no such admin action"
