"""Request bodies of the public API. Unknown fields are ignored (identity and prices never come from the body);
user-service applies the authoritative account rules."""
from __future__ import annotations

from typing import Annotated, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from trcommon.errors import InvalidInput
from trcontracts import inventory, users

from ..domain.ids import UUID_PATTERN, canonical_uuid

# An identifier in a body: a UUID, passed on in its canonical (lower-case) form.
Id = Annotated[str, Field(pattern=UUID_PATTERN, examples=["7eff1b59-bb1a-5e39-9907-da92a3edd548"]),
               AfterValidator(canonical_uuid)]


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else "\\" + c for c in word)


# An email at a special-use domain (RFC 6761: .test, .local, .invalid, ...) cannot receive mail: user-service's
# email check refuses it. Written for JSON Schema (no inline flags).
SPECIAL_USE_DOMAIN = "[.@](" + "|".join(map(_any_case, SPECIAL_USE_DOMAIN_NAMES)) + ")$"


class RegisterBody(BaseModel):
    # user-service applies the account rules (trcontracts.users.RegisterBody); the document states them.
    email: str = Field(max_length=254, examples=["fan@example.com"],
                       description="an address that can receive mail (not at a special-use domain such as .test)",
                       json_schema_extra={"format": "email", "not": {"pattern": SPECIAL_USE_DOMAIN}})
    password: str = Field(min_length=users.PASSWORD_MIN, max_length=users.PASSWORD_MAX, examples=["a-long-password"],
                          description="not the email address")
    phone: str = Field(max_length=20, examples=["+6591234567"], description="E.164",
                       json_schema_extra={"pattern": r"^\+[1-9][0-9]{7,14}$"})


class LoginBody(BaseModel):
    email: str = Field(min_length=1, max_length=254, examples=["fan1@demo.test"])
    password: str = Field(min_length=1, max_length=users.PASSWORD_MAX, examples=["demo-password"])


class RefreshBody(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


def _no_default(schema: dict) -> None:
    schema.pop("default", None)


class ReserveBody(BaseModel):
    """One seat (`seat_id`) or a party's seats (`seat_ids`), held together under one order or not at all: exactly
    one of the two (the document says so with `oneOf`)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["seat_id"]}, {"required": ["seat_ids"]}]})

    # Not nullable: a field that is given must be a seat (None only stands for "absent", so no default is shown).
    seat_id: Id = Field(None, description="one seat; or give seat_ids", json_schema_extra=_no_default)
    seat_ids: list[Id] = Field(None, min_length=1, max_length=inventory.MAX_SEATS_PER_HOLD,
                               description=f"1 to {inventory.MAX_SEATS_PER_HOLD} distinct seats of one event (ids "
                                           "compared in any case), held together or not at all; or give seat_id",
                               json_schema_extra=lambda schema: _no_default(schema) or schema.update(uniqueItems=True))

    @field_validator("seat_ids")
    @classmethod
    def _distinct(cls, seat_ids: list[str] | None) -> list[str] | None:
        if seat_ids is not None and len(set(seat_ids)) != len(seat_ids):
            raise ValueError("a seat appears more than once")
        return seat_ids

    def seats(self) -> list[str]:
        """The seats asked for; exactly one of seat_id and seat_ids must be given."""
        if (self.seat_id is None) == (self.seat_ids is None):
            raise InvalidInput("request is invalid", details=[
                {"field": "seat_ids", "message": "give either seat_id or seat_ids"}])
        return self.seat_ids or [self.seat_id]


class PayBody(BaseModel):
    order_id: Id
    otp_code: str | None = Field(default=None, pattern=users.OTP_CODE_PATTERN.pattern)


class TopupBody(BaseModel):
    # The configured bounds (TOPUP_MIN_AMOUNT, TOPUP_MAX_AMOUNT) are user-service's, which answers the same 400.
    amount: int = Field(ge=1, le=users.MAX_AMOUNT, strict=True,
                        description="credits to buy (1 credit = 0.01 in the currency), a JSON integer (100.0 or "
                                    "\"1000\" is refused) from TOPUP_MIN_AMOUNT to TOPUP_MAX_AMOUNT (100 and "
                                    "1000000 by default)")


# --- transfers --------------------------------------------------------------------------------------------------

OtpCode = Field(pattern=users.OTP_CODE_PATTERN.pattern, examples=["123456"])


class InitiateTransferBody(BaseModel):
    seat_id: Id
    buyer_email: str = Field(min_length=3, max_length=254, examples=["fan2@demo.test"])
    # strict: "50" or 50.0 is refused, not converted; 0 is a gift
    amount: int = Field(strict=True, ge=0, le=1_000_000_000,
                        description="credits the buyer pays: 0 (a gift) up to the seat's face value, a JSON integer "
                                    "(50.0 or \"50\" is refused)")


class ConfirmTransferBody(BaseModel):
    transfer_id: Id
    seller_otp: str = OtpCode
    buyer_otp: str = OtpCode


class TransferIdBody(BaseModel):
    transfer_id: Id


# Free text is kept trimmed (order-service), so it needs a character that is not whitespace. Written as the whole
# class rather than `\S`, whose meaning differs between the engines that read it: JSON Schema's (ECMAScript) counts
# U+FEFF but not U+0085 as whitespace, pydantic's (Rust) the reverse, Python's also U+001C-U+001F; a fuzzer then
# sent "\u0085" as valid and was refused. The union of the three, and U+180E and U+200B, is blank for everyone.
WHITESPACE = (r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u180e\u2000-\u200b\u2028\u2029\u202f\u205f\u3000"
              r"\ufeff")
NOT_BLANK = f"[^{WHITESPACE}]"


class DisputeBody(TransferIdBody):
    reason: str = Field(min_length=1, max_length=500, pattern=NOT_BLANK, description="not only whitespace")


class ResolveBody(TransferIdBody):
    resolution: str = Field(min_length=1, max_length=500, pattern=NOT_BLANK,
                            description="why the dispute is closed without reversal (not only whitespace)")


# --- answers (documented in /openapi.json) ------------------------------------------------------------------------

class TransferView(BaseModel):
    transfer_id: str
    seat_id: str
    event_id: str
    seller_user_id: str
    buyer_user_id: str
    amount: int
    status: str = Field(description="PENDING_OTP, COMPLETED, DISPUTED, REVERSED, CANCELLED or EXPIRED")
    expires_at: str = Field(description="a PENDING_OTP transfer not confirmed by then ends EXPIRED")
    dispute_reason: str | None
    resolution: str | None
    completed_at: str | None
    release_at: str | None = Field(description="when the seller's pending proceeds become spendable")
    released_at: str | None
    failure_reason: str | None
    created_at: str
    updated_at: str


class TransferList(BaseModel):
    transfers: list[TransferView]


class TicketView(BaseModel):
    seat_id: str
    event_id: str
    event_name: str | None
    hall_id: str | None
    starts_at: str | None
    section: str
    row: str
    number: int
    price: int
    status: str = Field(description="HELD (not paid yet), SOLD or CHECKED_IN")
    ticket_version: int
    held_until: str | None
    pending_transfer: TransferView | None


class TicketList(BaseModel):
    tickets: list[TicketView]


class Profile(BaseModel):
    user_id: str
    email: str
    phone: str
    role: str
    credit_balance: int = Field(description="spendable credits")
    pending_credits: int = Field(description="transfer proceeds not yet released (the dispute window is open)")
    is_flagged: bool


# --- the gate ----------------------------------------------------------------------------------------------------

class VerifyBody(BaseModel):
    qr: str = Field(min_length=1, max_length=2048, description="the scanned code, as the QR holds it")
    hall_id: Id = Field(description="the hall this scanner stands at")


class QrCode(BaseModel):
    qr: str = Field(description="a JWS compact string (EdDSA, Ed25519) naming the seat, its holder and version")
    expires_at: str = Field(description="when a scanner stops accepting it (ask for a new one before)")


class PublicKey(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class PublicKeys(BaseModel):
    keys: list[PublicKey]


class ScanSeat(BaseModel):
    section: str
    row: str
    number: int


class ScanEvent(BaseModel):
    event_id: str
    name: str


class ScanVerdict(BaseModel):
    result: Literal["CHECKED_IN", "DUPLICATE", "UNPAID", "NOT_FOUND", "WRONG_HALL", "EXPIRED", "INVALID"]
    message: str
    seat: ScanSeat | None
    event: ScanEvent | None
    hall_id: str
    checked_in_at: str | None = Field(None, description="CHECKED_IN and DUPLICATE: when the ticket was let in")
    checked_in_hall_id: str | None = Field(None, description="CHECKED_IN and DUPLICATE: where it was let in")
