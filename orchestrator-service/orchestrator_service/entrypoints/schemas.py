"""Request bodies of the public API. Unknown fields are ignored (identity and prices never come from the body);
user-service applies the authoritative account rules."""
from __future__ import annotations

from pydantic import BaseModel, Field

from trcontracts import users

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class RegisterBody(BaseModel):
    email: str = Field(max_length=254, examples=["fan@example.com"])
    password: str = Field(max_length=users.PASSWORD_MAX, examples=["a-long-password"])
    phone: str = Field(max_length=20, examples=["+6591234567"])


class LoginBody(BaseModel):
    email: str = Field(max_length=254, examples=["fan1@demo.test"])
    password: str = Field(max_length=users.PASSWORD_MAX, examples=["demo-password"])


class RefreshBody(BaseModel):
    refresh_token: str = Field(max_length=4096)


class ReserveBody(BaseModel):
    seat_id: str = Field(pattern=UUID_PATTERN)


class PayBody(BaseModel):
    order_id: str = Field(pattern=UUID_PATTERN)
    otp_code: str | None = Field(default=None, pattern=users.OTP_CODE_PATTERN.pattern)


class TopupBody(BaseModel):
    amount: int = Field(ge=100, le=1_000_000, description="credits to buy (1 credit = 0.01 in the currency)")


class Page(BaseModel):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)
