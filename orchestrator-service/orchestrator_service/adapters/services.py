"""HTTP clients of user-, order- and event-service: thin typed wrappers over ServiceClient.call, one per contract
route the orchestrator uses, returning the contract's models."""
from __future__ import annotations

from datetime import datetime
from typing import Mapping

from trcommon.http_client import ServiceClient
from trcontracts import events, orders, users


class UserService:
    def __init__(self, client: ServiceClient):
        self.http = client

    def register(self, body: Mapping) -> users.UserId:
        return self.http.call(users.REGISTER, body)

    def login(self, body: Mapping) -> users.TokenPair:
        return self.http.call(users.LOGIN, body)

    def refresh(self, body: Mapping) -> users.AccessToken:
        return self.http.call(users.REFRESH, body)

    def get_user(self, user_id: str) -> users.User:
        return self.http.call(users.GET_USER, path={"user_id": user_id})

    def debit(self, user_id: str, amount: int, reference: str, reason: str, *, otp_purpose: str | None = None,
              otp_code: str | None = None, not_after: datetime | None = None) -> users.BalanceChange:
        return self.http.call(users.DEBIT, {
            "user_id": user_id, "amount": amount, "reference": reference, "reason": reason,
            "otp_purpose": otp_purpose, "otp_code": otp_code if otp_purpose else None, "not_after": not_after})

    def credit(self, user_id: str, amount: int, reference: str, reason: str) -> users.BalanceChange:
        return self.http.call(users.CREDIT, {"user_id": user_id, "amount": amount, "reference": reference,
                                             "reason": reason})

    def ledger(self, reference: str) -> list[users.LedgerEntry]:
        return self.http.call(users.LEDGER, query={"reference": reference}).entries

    def topup(self, user_id: str, amount: int) -> users.Topup:
        return self.http.call(users.TOPUP, {"user_id": user_id, "amount": amount})

    def stripe_webhook(self, payload: bytes, signature: str | None) -> users.Received:
        """Pass Stripe's exact bytes through: the signature covers the raw body."""
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers[users.STRIPE_SIGNATURE_HEADER] = signature
        return self.http.call(users.STRIPE_WEBHOOK, raw=payload, headers=headers)


class OrderService:
    def __init__(self, client: ServiceClient):
        self.http = client

    def create(self, order: Mapping) -> orders.Order:
        return self.http.call(orders.CREATE_ORDER, order)

    def get(self, order_id: str) -> orders.Order:
        return self.http.call(orders.GET_ORDER, path={"order_id": order_id})

    def list(self, **query) -> list[orders.Order]:
        return self.http.call(orders.LIST_ORDERS, query=query).orders

    def begin_payment(self, order_id: str, user_id: str) -> orders.Order:
        return self.http.call(orders.BEGIN_PAYMENT, {"user_id": user_id}, path={"order_id": order_id})

    def transition(self, order_id: str, to: orders.OrderStatus, reason: str | None = None) -> orders.Order:
        return self.http.call(orders.TRANSITION, {"to": to, "reason": reason}, path={"order_id": order_id})

    def stale(self, grace_seconds: float, limit: int = 100) -> list[orders.Order]:
        return self.http.call(orders.STALE_ORDERS, query={"grace_seconds": grace_seconds, "limit": limit}).orders


class EventService:
    def __init__(self, client: ServiceClient):
        self.http = client

    def list(self, limit: int, offset: int) -> events.EventList:
        return self.http.call(events.LIST_EVENTS, query={"limit": limit, "offset": offset})

    def get(self, event_id: str) -> events.Event:
        return self.http.call(events.GET_EVENT, path={"event_id": event_id})
