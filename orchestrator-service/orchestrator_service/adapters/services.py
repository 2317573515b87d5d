"""HTTP clients of user-, order- and event-service (thin typed wrappers over trcommon's ServiceClient)."""
from __future__ import annotations

from trcommon.http_client import ServiceClient


class UserService:
    def __init__(self, client: ServiceClient):
        self.http = client

    def register(self, body: dict) -> dict:
        return self.http.post("/internal/auth/register", body)

    def login(self, body: dict) -> dict:
        return self.http.post("/internal/auth/login", body)

    def refresh(self, body: dict) -> dict:
        return self.http.post("/internal/auth/refresh", body)

    def get_user(self, user_id: str) -> dict:
        return self.http.get(f"/internal/users/{user_id}")

    def debit(self, user_id: str, amount: int, reference: str, reason: str, *, otp_purpose: str | None = None,
              otp_code: str | None = None, not_after: str | None = None) -> dict:
        body = {"user_id": user_id, "amount": amount, "reference": reference, "reason": reason}
        if otp_purpose:
            body["otp_purpose"] = otp_purpose
            body["otp_code"] = otp_code
        if not_after:
            body["not_after"] = not_after
        return self.http.post("/internal/credits/debit", body, idempotent=True)     # keyed by reference

    def credit(self, user_id: str, amount: int, reference: str, reason: str) -> dict:
        return self.http.post("/internal/credits/credit", {"user_id": user_id, "amount": amount,
                                                           "reference": reference, "reason": reason},
                              idempotent=True)


    def ledger(self, reference: str) -> list[dict]:
        return self.http.get("/internal/credits/ledger", params={"reference": reference})["entries"]

    def topup(self, user_id: str, amount: int) -> dict:
        return self.http.post("/internal/credits/topup", {"user_id": user_id, "amount": amount})


class OrderService:
    def __init__(self, client: ServiceClient):
        self.http = client

    def create(self, order: dict) -> dict:
        return self.http.post("/internal/orders", order, idempotent=True)       # keyed by order_id

    def get(self, order_id: str) -> dict:
        return self.http.get(f"/internal/orders/{order_id}")

    def list(self, **query) -> list[dict]:
        return self.http.get("/internal/orders", params={k: v for k, v in query.items() if v is not None})["orders"]

    def begin_payment(self, order_id: str, user_id: str) -> dict:
        return self.http.post(f"/internal/orders/{order_id}/begin-payment", {"user_id": user_id}, idempotent=True)

    def transition(self, order_id: str, to: str, reason: str | None = None) -> dict:
        return self.http.post(f"/internal/orders/{order_id}/transition", {"to": to, "reason": reason},
                              idempotent=True)

    def stale(self, grace_seconds: float, limit: int = 100) -> list[dict]:
        return self.http.get("/internal/orders/stale",
                             params={"grace_seconds": grace_seconds, "limit": limit})["orders"]


class EventService:
    def __init__(self, client: ServiceClient):
        self.http = client

    def list(self, limit: int, offset: int) -> dict:
        return self.http.get("/events", params={"limit": limit, "offset": offset})

    def get(self, event_id: str) -> dict:
        return self.http.get(f"/events/{event_id}")


def forward_stripe_webhook(users: UserService, payload: bytes, signature: str | None) -> dict:
    """Pass Stripe's exact bytes through: the signature covers the raw body."""
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return users.http.request("POST", "/internal/webhooks/stripe", data=payload, headers=headers)
