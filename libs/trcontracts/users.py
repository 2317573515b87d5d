"""The internal API of user-service: accounts, tokens, the credit ledger, one-time codes, Stripe top-ups, the admin
audit trail and fans' notifications."""
from __future__ import annotations

import json
import re
from enum import StrEnum, auto
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, EmailStr, Field, StrictBool, ValidationInfo, field_validator, model_validator

from .base import CONTROL_CHARACTERS, MAX_OFFSET, CommonError, ErrorCode, Page, QueryInt, Route, UtcTimestamp
from .inventory import InventoryError
from .notifications import NotificationKind

# --- input rules -------------------------------------------------------------------------------------------------

PASSWORD_MIN, PASSWORD_MAX = 8, 128
PHONE_PATTERN = re.compile(r"^\+[1-9]\d{7,14}$")
# Debits and credits are bounded so that no request can overflow a bigint balance.
MAX_AMOUNT = 10**12
OTP_CODE_DIGITS = 6
OTP_CODE_PATTERN = re.compile(rf"^\d{{{OTP_CODE_DIGITS}}}$")
# A release of pending credits writes its pending row under its reference with this suffix.
PENDING_REFERENCE_SUFFIX = ":pending"
# `order:{order_id}`, `transfer:{transfer_id}`, ...: a kind, a colon and an identifier.
OTP_PURPOSE_PATTERN = re.compile(r"^[a-z][a-z_-]{0,31}:[A-Za-z0-9][A-Za-z0-9:_.-]{0,127}$")


def normalize_email(email: str) -> str:
    """Emails are compared and stored lower-cased, so Fan@X.com and fan@x.com are one account."""
    return email.strip().lower()


def password_problem(password: str, email: str) -> str | None:
    """Why a password is unacceptable, or None when it is fine."""
    if len(password) < PASSWORD_MIN:
        return f"password must be at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"password must be at most {PASSWORD_MAX} characters"
    if normalize_email(password) == normalize_email(email):
        return "password must not be the email address"
    return None


def phone_problem(phone: str) -> str | None:
    if not PHONE_PATTERN.fullmatch(phone):
        return "phone must be in E.164 format, e.g. +6591234567"
    return None


Amount = Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT)]
REFERENCE_MAX = 200
Reference = Annotated[str, Field(min_length=1, max_length=REFERENCE_MAX)]
# Short enough that its pending row's reference is still a Reference (and so can be looked up).
ReleaseReference = Annotated[str, Field(min_length=1, max_length=REFERENCE_MAX - len(PENDING_REFERENCE_SUFFIX))]
Reason = Annotated[str, Field(min_length=1, max_length=200)]
Purpose = Annotated[str, Field(pattern=OTP_PURPOSE_PATTERN.pattern)]
Code = Annotated[str, Field(pattern=OTP_CODE_PATTERN.pattern)]
# Stripe's signature of a webhook body, passed through to user-service with the raw bytes.
STRIPE_SIGNATURE_HEADER = "Stripe-Signature"
# Text of a query string: a query is not a JSON body, which the servers already refuse with control characters
# (PostgreSQL cannot store NUL, and the others have no place in a field).
NO_CONTROL_CHARACTERS = f"^[^{CONTROL_CHARACTERS}]*$"
# Login and look-ups take any stored email (the demo users have .test addresses, which EmailStr refuses).
LooseEmail = Annotated[str, Field(min_length=1, max_length=320, pattern=NO_CONTROL_CHARACTERS)]


class Account(StrEnum):
    """Which of a user's two balances a ledger row moves: `spendable` is `credit_balance`, `pending` is
    `pending_credits` (a seller's transfer proceeds until the dispute window ends)."""

    SPENDABLE = "spendable"
    PENDING = "pending"


class UserError(ErrorCode):
    USER_NOT_FOUND = auto(), 404
    EMAIL_TAKEN = auto(), 409
    INVALID_CREDENTIALS = auto(), 401
    INVALID_TOKEN = CommonError.INVALID_TOKEN
    TOKEN_EXPIRED = CommonError.TOKEN_EXPIRED
    INSUFFICIENT_CREDITS = auto(), 402
    INSUFFICIENT_PENDING_CREDITS = auto(), 402
    REFERENCE_CONFLICT = auto(), 409
    # A debit with `not_after` once that instant has passed (the hold being paid for has ended).
    HOLD_EXPIRED = InventoryError.HOLD_EXPIRED
    OTP_REQUIRED = auto(), 428
    OTP_INVALID = auto(), 403
    OTP_EXPIRED = auto(), 410
    OTP_LOCKED = auto(), 429
    OTP_SEND_LIMIT = auto(), 429
    OTP_PROVIDER_UNAVAILABLE = auto(), 503
    PAYMENTS_NOT_CONFIGURED = auto(), 503
    PAYMENTS_UNAVAILABLE = auto(), 503
    DEVELOPMENT_ONLY = auto(), 403
    INVALID_SIGNATURE = auto(), 400
    INVALID_PAYLOAD = auto(), 400
    ADMIN_ACTION_NOT_FOUND = auto(), 404


# --- requests ----------------------------------------------------------------------------------------------------

class RegisterBody(BaseModel):
    email: EmailStr
    password: str
    phone: str

    @field_validator("password")
    @classmethod
    def _password(cls, value: str, info: ValidationInfo) -> str:
        problem = password_problem(value, info.data.get("email", ""))
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        problem = phone_problem(value)
        if problem:
            raise ValueError(problem)
        return value


RegisterBody.__doc__ = (f"The password is {PASSWORD_MIN}–{PASSWORD_MAX} characters and not the email; the phone "
                        f"is E.164 (`+6591234567`).")


class LoginBody(BaseModel):
    email: LooseEmail
    password: str = Field(min_length=1, max_length=1024)


class RefreshBody(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class EmailQuery(BaseModel):
    email: LooseEmail


class _BalanceBody(BaseModel):
    user_id: UUID
    amount: Amount
    reference: Reference
    reason: Reason
    account: Account = Account.SPENDABLE


class CreditBody(_BalanceBody):
    """`actor_user_id`: the admin who granted the credits (stored on the ledger row); none for the system's own
    credits (refunds, transfer proceeds, top-ups)."""

    actor_user_id: UUID | None = None


class OtpParty(BaseModel):
    """One party's code for the debit's `otp_purpose`."""

    user_id: UUID
    code: Code


class DebitBody(_BalanceBody):
    """`otp_parties` needs `otp_purpose` and names each user once; the debited user's code is given in
    `otp_parties` or in `otp_code`, not both. `amount` may be 0 only with `otp_parties`: a gift's debit, which
    moves nothing but records that every party confirmed it."""

    amount: Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT)]

    otp_purpose: Purpose | None = None
    otp_code: Code | None = None
    otp_parties: list[OtpParty] | None = Field(None, min_length=1, max_length=2)
    not_after: UtcTimestamp | None = None

    @model_validator(mode="after")
    def _parties(self):
        if self.otp_parties is None:
            if self.amount == 0:
                raise ValueError("amount must be greater than 0 (0 only for a gift confirmed with otp_parties)")
            return self
        if self.otp_purpose is None:
            raise ValueError("otp_parties needs otp_purpose")
        party_ids = [party.user_id for party in self.otp_parties]
        if len(set(party_ids)) != len(party_ids):
            raise ValueError("each party is named once in otp_parties")
        if self.otp_code is not None and self.user_id in party_ids:
            raise ValueError("the debited user's code is given twice, in otp_code and otp_parties")
        return self


class ReleaseBody(BaseModel):
    user_id: UUID
    amount: Amount
    reference: ReleaseReference
    reason: Reason = "pending credits released"


class LedgerQuery(BaseModel):
    """At least one of reference, user_id."""

    reference: Annotated[Reference, Field(pattern=NO_CONTROL_CHARACTERS)] | None = None
    user_id: UUID | None = None
    limit: QueryInt = Field(50, ge=1, le=500)
    offset: QueryInt = Field(0, ge=0, le=MAX_OFFSET)

    @model_validator(mode="after")
    def _some_filter(self):
        if self.reference is None and self.user_id is None:
            raise ValueError("give reference or user_id")
        return self


class OtpSendBody(BaseModel):
    user_id: UUID
    purpose: Purpose


class OtpVerifyBody(OtpSendBody):
    code: Code


class TopupBody(BaseModel):
    user_id: UUID
    amount: Amount


class DevPaymentIntentBody(TopupBody):
    """A development payment of `amount` credits for `user_id`."""


class SetFlagBody(BaseModel):
    flagged: StrictBool


# The largest `request`, `before` or `after` of an admin action, as compact JSON.
ADMIN_ACTION_JSON_MAX = 64 * 1024


def _bounded_json(value: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value, separators=(",", ":"), default=str)) > ADMIN_ACTION_JSON_MAX:
        raise ValueError(f"{name} must be at most {ADMIN_ACTION_JSON_MAX} bytes as JSON")
    return value


class AdminActionOutcome(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class AdminActionBody(BaseModel):
    """One admin action, recorded before it is carried out (outcome PENDING). `request` is what the admin asked
    for, `before` the target as it was (when there was one); each at most 64 KB as JSON."""

    action_id: UUID
    admin_id: UUID
    action: str = Field(min_length=1, max_length=64)
    target_type: str = Field(min_length=1, max_length=32)
    target_id: str = Field(min_length=1, max_length=200)
    request: dict[str, Any]
    before: dict[str, Any] | None = None

    @field_validator("request", "before")
    @classmethod
    def _size(cls, value, info: ValidationInfo):
        return _bounded_json(value, info.field_name)


class FinishAdminActionBody(BaseModel):
    """`error_code` only with FAILED; `after` (the target as the action left it) at most 64 KB as JSON."""

    outcome: AdminActionOutcome
    after: dict[str, Any] | None = None
    error_code: str | None = Field(None, min_length=1, max_length=64)

    @field_validator("outcome")
    @classmethod
    def _final(cls, value: AdminActionOutcome) -> AdminActionOutcome:
        if value == AdminActionOutcome.PENDING:
            raise ValueError("outcome must be SUCCEEDED or FAILED")
        return value

    @field_validator("after")
    @classmethod
    def _size(cls, value):
        return _bounded_json(value, "after")

    @model_validator(mode="after")
    def _code_with_failure(self):
        if self.error_code is not None and self.outcome != AdminActionOutcome.FAILED:
            raise ValueError("error_code is given only with outcome FAILED")
        return self


class AdminActionQuery(Page):
    """Every filter is optional; together they narrow the list."""

    admin_id: UUID | None = None
    target_type: str | None = Field(None, min_length=1, max_length=32, pattern=NO_CONTROL_CHARACTERS)
    target_id: str | None = Field(None, min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    action: str | None = Field(None, min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)


class NotificationQuery(Page):
    pass


# --- answers -----------------------------------------------------------------------------------------------------

class UserId(BaseModel):
    user_id: str


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class AccessToken(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


class User(BaseModel):
    user_id: str
    email: str
    phone: str
    role: str
    credit_balance: int
    pending_credits: int
    is_flagged: bool
    created_at: UtcTimestamp


class BalanceChange(BaseModel):
    """The ledger entry of a reference and whether this call applied it. `amount` < 0 for a debit; `balance`
    is the entry's account's balance after it."""

    entry_id: str
    user_id: str
    amount: int
    balance: int | None
    reference: str
    account: Account
    applied: bool


class LedgerEntry(BaseModel):
    """`balance_after` is the balance of the entry's `account`; `actor_user_id` the admin who granted it, if one
    did."""

    entry_id: str
    user_id: str
    amount: int
    balance_after: int | None
    reason: str
    reference: str
    account: Account
    created_at: UtcTimestamp
    actor_user_id: str | None = None


class LedgerEntries(BaseModel):
    entries: list[LedgerEntry]


class OtpSent(BaseModel):
    sent: bool
    expires_at: UtcTimestamp


class OtpVerified(BaseModel):
    verified: bool


class Topup(BaseModel):
    client_secret: str
    payment_intent_id: str
    amount: int


class PaymentIntentRecord(BaseModel):
    """A PaymentIntent as user-service recorded it: a webhook for it is credited for exactly this."""

    payment_intent_id: str
    user_id: str
    amount: int
    currency: str


class Received(BaseModel):
    received: bool


class AdminAction(BaseModel):
    """One admin action of the audit trail: who (`admin_id`), what (`action` on `target_type`/`target_id`, with
    `request`), when (`created_at`, `finished_at`), the target `before` and `after`, and how it ended."""

    action_id: str
    admin_id: str
    action: str
    target_type: str
    target_id: str
    request: dict[str, Any]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    outcome: AdminActionOutcome
    error_code: str | None
    created_at: UtcTimestamp
    finished_at: UtcTimestamp | None


class AdminActions(BaseModel):
    actions: list[AdminAction]


class NotificationRecord(BaseModel):
    """A notification as delivered to the fan (`delivered_at`: when its SMS and e-mail were written)."""

    notification_id: str
    kind: NotificationKind
    data: dict[str, Any]
    occurred_at: UtcTimestamp
    delivered_at: UtcTimestamp


class NotificationRecords(BaseModel):
    notifications: list[NotificationRecord]


# --- routes ------------------------------------------------------------------------------------------------------

E = UserError
_OTP_CHECK = (E.OTP_INVALID, E.OTP_EXPIRED, E.OTP_LOCKED)

REGISTER = Route(
    "POST", "/internal/auth/register", UserId, 201, body=RegisterBody, errors=(E.EMAIL_TAKEN,),
    doc="Not retried: a repeat would answer EMAIL_TAKEN.")
LOGIN = Route("POST", "/internal/auth/login", TokenPair, body=LoginBody, errors=(E.INVALID_CREDENTIALS,))
REFRESH = Route("POST", "/internal/auth/refresh", AccessToken, body=RefreshBody,
                errors=(E.INVALID_TOKEN, E.TOKEN_EXPIRED),
                doc="The role is read again: a token refreshed after a role change carries the new role.")
GET_USER = Route("GET", "/internal/users/{user_id}", User, errors=(E.USER_NOT_FOUND,), idempotent=True)
USER_BY_EMAIL = Route("GET", "/internal/users/by-email", User, query=EmailQuery, errors=(E.USER_NOT_FOUND,),
                      idempotent=True, doc="Any case of the email finds the account.")
DEBIT = Route(
    "POST", "/internal/credits/debit", BalanceChange, body=DebitBody,
    errors=(E.INSUFFICIENT_CREDITS, E.INSUFFICIENT_PENDING_CREDITS, E.REFERENCE_CONFLICT, E.OTP_REQUIRED,
            *_OTP_CHECK, E.HOLD_EXPIRED, E.USER_NOT_FOUND, E.OTP_SEND_LIMIT, E.OTP_PROVIDER_UNAVAILABLE),
    idempotent=True,
    doc="Keyed by `reference`; takes from `account` (INSUFFICIENT_PENDING_CREDITS when it is `pending`). A flagged "
        "user with `otp_purpose` set needs a valid, unused OTP for that purpose: without `otp_code` one is sent and "
        "the answer is 428; a wrong code is 403 and counts toward the lock. With `otp_parties`, every party needs a "
        "valid, unused code for `otp_purpose`, flagged or not. All codes are checked in the debit's transaction and "
        "used only if the debit applies: if any is refused, none is used, each wrong one counts toward its own "
        "lock, the answer is the first refusal in the order given and `details.parties` lists every refused party "
        "(`user_id`, `code`, `message`). A repeat of an applied debit is answered without looking at codes. With "
        "`not_after`, a new debit is refused with 410 once the database clock has passed it.")
CREDIT = Route("POST", "/internal/credits/credit", BalanceChange, body=CreditBody,
               errors=(E.REFERENCE_CONFLICT, E.USER_NOT_FOUND), idempotent=True,
               doc="Keyed by `reference`; adds to `account`. `actor_user_id` (an admin's grant) is stored on the "
                   "ledger row; a repeat of the reference with another user, amount, account or actor is "
                   "REFERENCE_CONFLICT.")
RELEASE_PENDING = Route(
    "POST", "/internal/credits/release", BalanceChange, body=ReleaseBody,
    errors=(E.INSUFFICIENT_PENDING_CREDITS, E.REFERENCE_CONFLICT, E.USER_NOT_FOUND), idempotent=True,
    doc=f"Moves `amount` from pending to spendable in one transaction: two ledger rows, `reference` (+amount, "
        f"spendable; the answer) and `reference` + `{PENDING_REFERENCE_SUFFIX}` (−amount, pending). Keyed by "
        f"`reference`.")
LEDGER = Route("GET", "/internal/credits/ledger", LedgerEntries, query=LedgerQuery, idempotent=True,
               doc="The entry of a reference, or a user's entries newest first.")
OTP_SEND = Route("POST", "/internal/otp/send", OtpSent, 202, body=OtpSendBody,
                 errors=(E.USER_NOT_FOUND, E.OTP_SEND_LIMIT, E.OTP_PROVIDER_UNAVAILABLE),
                 doc="A new code retires the previous one. OTP_SEND_LIMIT comes with `retry_after` (and `Retry-After`).")
OTP_VERIFY = Route("POST", "/internal/otp/verify", OtpVerified, body=OtpVerifyBody,
                   errors=(E.USER_NOT_FOUND, *_OTP_CHECK), doc="A code is used once.")
TOPUP = Route("POST", "/internal/credits/topup", Topup, 201, body=TopupBody,
              errors=(E.USER_NOT_FOUND, E.PAYMENTS_NOT_CONFIGURED, E.PAYMENTS_UNAVAILABLE),
              doc="Creates a Stripe PaymentIntent and records it (user, amount, currency); `amount` outside the top-up "
                  "limits is 400 INVALID_INPUT, whether or not payments are configured.")
DEV_PAYMENT_INTENT = Route(
    "POST", "/internal/credits/dev-payment-intents", PaymentIntentRecord, 201, body=DevPaymentIntentBody,
    errors=(E.USER_NOT_FOUND, E.DEVELOPMENT_ONLY),
    doc="Development and tests only (403 DEVELOPMENT_ONLY with ENVIRONMENT=production): records a PaymentIntent "
        "the way a top-up does, without calling Stripe, so that a signed `payment_intent.succeeded` for it (`make "
        "topup`, the tests, the bench) is credited like a paid top-up. `amount` is 1 up to the top-up maximum. Not "
        "retried: each call records a new intent.")
STRIPE_WEBHOOK = Route(
    "POST", "/internal/webhooks/stripe", Received, raw_body=True, errors=(E.INVALID_SIGNATURE, E.INVALID_PAYLOAD),
    doc=f"Stripe's raw body and its `{STRIPE_SIGNATURE_HEADER}` header, passed through unchanged (the signature covers "
        "the exact bytes). Each event id is applied once. A payment is credited only for a PaymentIntent recorded by "
        "a top-up (or a development intent), to its recorded user for its recorded amount and currency; an event "
        "for an unknown intent, or one that differs from its record, is acknowledged (200), credits nothing and is "
        "logged.")

SET_FLAG = Route(
    "POST", "/internal/users/{user_id}/flag", User, body=SetFlagBody, errors=(E.USER_NOT_FOUND,), idempotent=True,
    doc="Sets `is_flagged` (a flagged user needs a one-time code for purchases); setting it to what it is already "
        "changes nothing. Any role may be flagged.")
RECORD_ADMIN_ACTION = Route(
    "POST", "/internal/admin-actions", AdminAction, 201, body=AdminActionBody, idempotent=True,
    doc="Records an admin action before it is carried out (outcome PENDING). Keyed by `action_id`: a repeat answers "
        "200 with the record as stored, unchanged, whatever its body.")
FINISH_ADMIN_ACTION = Route(
    "POST", "/internal/admin-actions/{action_id}/finish", AdminAction, body=FinishAdminActionBody,
    errors=(E.ADMIN_ACTION_NOT_FOUND,), idempotent=True,
    doc="Ends a PENDING action with its outcome. The first finish wins: a later one answers the record as it is.")
LIST_ADMIN_ACTIONS = Route(
    "GET", "/internal/admin-actions", AdminActions, query=AdminActionQuery, idempotent=True,
    doc="The audit trail newest first, narrowed by any of `admin_id`, `target_type`, `target_id`, `action`.")
LIST_NOTIFICATIONS = Route(
    "GET", "/internal/users/{user_id}/notifications", NotificationRecords, query=NotificationQuery,
    errors=(E.USER_NOT_FOUND,), idempotent=True, doc="The user's notifications, newest (by `occurred_at`) first.")

ROUTES = (REGISTER, LOGIN, REFRESH, GET_USER, USER_BY_EMAIL, DEBIT, CREDIT, RELEASE_PENDING, LEDGER, OTP_SEND,
          OTP_VERIFY, TOPUP, DEV_PAYMENT_INTENT, STRIPE_WEBHOOK, SET_FLAG, RECORD_ADMIN_ACTION, FINISH_ADMIN_ACTION,
          LIST_ADMIN_ACTIONS, LIST_NOTIFICATIONS)
