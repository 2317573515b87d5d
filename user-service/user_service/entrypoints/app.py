"""HTTP entrypoint: translates requests to service-layer calls and results to JSON."""
from __future__ import annotations

from typing import Annotated
from uuid import UUID

from flask import Flask, jsonify, request
from pydantic import AwareDatetime, BaseModel, EmailStr, Field, ValidationInfo, field_validator, model_validator

from trcommon.web import database_service_app, internal_blueprint, parse_body, parse_query

from ..bootstrap import Container, bootstrap
from ..domain.model import MAX_AMOUNT, password_problem, phone_problem
from ..domain.otp import CODE_PATTERN, PURPOSE_PATTERN
from ..service_layer import services
from ..settings import UserSettings

# Webhook bodies and every other request here are small; refuse anything larger before reading it.
MAX_BODY_BYTES = 1024 * 1024

Amount = Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT)]
Reference = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=200)]
Purpose = Annotated[str, Field(pattern=PURPOSE_PATTERN.pattern)]
Code = Annotated[str, Field(pattern=CODE_PATTERN.pattern)]
# Login and look-ups take any stored email (the demo users have .test addresses, which EmailStr refuses).
LooseEmail = Annotated[str, Field(min_length=1, max_length=320)]


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


class LoginBody(BaseModel):
    email: LooseEmail
    password: str = Field(min_length=1, max_length=1024)


class RefreshBody(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class EmailQuery(BaseModel):
    email: LooseEmail


class CreditBody(BaseModel):
    user_id: UUID
    amount: Amount
    reference: Reference
    reason: Reason


class DebitBody(CreditBody):
    otp_purpose: Purpose | None = None
    otp_code: Code | None = None
    not_after: AwareDatetime | None = None


class LedgerQuery(BaseModel):
    reference: Reference | None = None
    user_id: UUID | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)

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


def create_app(settings: UserSettings | None = None, container: Container | None = None) -> Flask:
    app, settings, c = database_service_app(UserSettings, bootstrap, settings, container)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    api = internal_blueprint("users", __name__, settings, url_prefix="/internal")

    @api.post("/auth/register")
    def register():
        body = parse_body(RegisterBody)
        return jsonify({"user_id": services.register(c, body.email, body.password, body.phone)}), 201

    @api.post("/auth/login")
    def login():
        body = parse_body(LoginBody)
        return jsonify(services.login(c, body.email, body.password))

    @api.post("/auth/refresh")
    def refresh():
        body = parse_body(RefreshBody)
        return jsonify(services.refresh(c, body.refresh_token))

    @api.get("/users/by-email")
    def user_by_email():
        query = parse_query(EmailQuery)
        return jsonify(services.get_user_by_email(c, query.email).to_dict())

    @api.get("/users/<user_id>")
    def user(user_id: str):
        return jsonify(services.get_user(c, user_id).to_dict())

    @api.post("/credits/debit")
    def debit():
        body = parse_body(DebitBody)
        change = services.debit(c, str(body.user_id), body.amount, body.reference, body.reason,
                                body.otp_purpose, body.otp_code, body.not_after)
        return jsonify(change.to_dict())

    @api.post("/credits/credit")
    def credit():
        body = parse_body(CreditBody)
        return jsonify(services.credit(c, str(body.user_id), body.amount, body.reference, body.reason).to_dict())

    @api.get("/credits/ledger")
    def ledger():
        query = parse_query(LedgerQuery)
        entries = services.ledger_entries(c, query.reference, str(query.user_id) if query.user_id else None,
                                          query.limit, query.offset)
        return jsonify({"entries": [e.to_dict() for e in entries]})

    @api.post("/otp/send")
    def otp_send():
        body = parse_body(OtpSendBody)
        expires_at = services.send_otp(c, str(body.user_id), body.purpose)
        return jsonify({"sent": True, "expires_at": expires_at.isoformat()}), 202

    @api.post("/otp/verify")
    def otp_verify():
        body = parse_body(OtpVerifyBody)
        services.verify_otp(c, str(body.user_id), body.purpose, body.code)
        return jsonify({"verified": True})

    @api.post("/credits/topup")
    def topup():
        body = parse_body(TopupBody)
        intent = services.create_topup(c, str(body.user_id), body.amount)
        return jsonify({"client_secret": intent.client_secret, "payment_intent_id": intent.payment_intent_id,
                        "amount": intent.amount}), 201

    @api.post("/webhooks/stripe")
    def stripe_webhook():
        # The signature covers the exact bytes Stripe sent: read them raw, never re-serialised JSON.
        services.receive_stripe_webhook(c, request.get_data(), request.headers.get("Stripe-Signature"))
        return jsonify({"received": True})

    app.register_blueprint(api)
    return app
