"""HTTP clients of user-, order- and event-service: thin typed wrappers over ServiceClient.call, one per contract
route the orchestrator uses, returning the contract's models."""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Iterable, Mapping

from cachetools import TTLCache, cached

from trcommon.errors import AppError
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

    def find_by_email(self, email: str) -> users.User | None:
        try:
            return self.http.call(users.USER_BY_EMAIL, query={"email": email})
        except AppError as err:
            if err.code == users.UserError.USER_NOT_FOUND:
                return None
            raise

    def debit(self, user_id: str, amount: int, reference: str, reason: str, *, otp_purpose: str | None = None,
              otp_code: str | None = None, otp_parties: list[dict] | None = None, not_after: datetime | None = None,
              account: users.Account = users.Account.SPENDABLE) -> users.BalanceChange:
        return self.http.call(users.DEBIT, {
            "user_id": user_id, "amount": amount, "reference": reference, "reason": reason,
            "otp_purpose": otp_purpose, "otp_code": otp_code if otp_purpose and not otp_parties else None,
            "otp_parties": otp_parties, "not_after": not_after, "account": account})

    def credit(self, user_id: str, amount: int, reference: str, reason: str,
               account: users.Account = users.Account.SPENDABLE) -> users.BalanceChange:
        return self.http.call(users.CREDIT, {"user_id": user_id, "amount": amount, "reference": reference,
                                             "reason": reason, "account": account})

    def release_pending(self, user_id: str, amount: int, reference: str) -> users.BalanceChange:
        return self.http.call(users.RELEASE_PENDING, {"user_id": user_id, "amount": amount, "reference": reference})

    def send_otp(self, user_id: str, purpose: str) -> users.OtpSent:
        return self.http.call(users.OTP_SEND, {"user_id": user_id, "purpose": purpose})

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

    # --- admin -----------------------------------------------------------------------------------------------------

    def set_flag(self, user_id: str, flagged: bool) -> users.User:
        return self.http.call(users.SET_FLAG, {"flagged": flagged}, path={"user_id": user_id})

    def user_ledger(self, user_id: str, limit: int, offset: int) -> list[users.LedgerEntry]:
        """The user's ledger, newest first."""
        return self.http.call(users.LEDGER, query={"user_id": user_id, "limit": limit, "offset": offset}).entries

    def grant(self, user_id: str, amount: int, reference: str, reason: str,
              actor_user_id: str) -> users.BalanceChange:
        """Credits granted by an admin (`actor_user_id`), applied once per reference."""
        return self.http.call(users.CREDIT, {"user_id": user_id, "amount": amount, "reference": reference,
                                             "reason": reason, "actor_user_id": actor_user_id})

    def record_admin_action(self, body: Mapping) -> users.AdminAction:
        return self.http.call(users.RECORD_ADMIN_ACTION, body)

    def finish_admin_action(self, action_id: str, outcome: users.AdminActionOutcome | str, after: Mapping | None = None,
                            error_code: str | None = None) -> users.AdminAction:
        return self.http.call(users.FINISH_ADMIN_ACTION, {"outcome": outcome, "after": after, "error_code": error_code},
                              path={"action_id": action_id})

    def admin_actions(self, **query) -> list[users.AdminAction]:
        """The audit trail newest first; `query` is AdminActionQuery's (admin_id, target_type, target_id, action,
        limit, offset)."""
        return self.http.call(users.LIST_ADMIN_ACTIONS, query=query).actions

    def notifications(self, user_id: str, limit: int, offset: int) -> list[users.NotificationRecord]:
        return self.http.call(users.LIST_NOTIFICATIONS, path={"user_id": user_id},
                              query={"limit": limit, "offset": offset}).notifications


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

    def begin_refund(self, order_id: str) -> orders.Order:
        return self.http.call(orders.BEGIN_REFUND, path={"order_id": order_id})

    def transition(self, order_id: str, to: orders.OrderStatus, reason: str | None = None) -> orders.Order:
        return self.http.call(orders.TRANSITION, {"to": to, "reason": reason}, path={"order_id": order_id})

    def stale(self, grace_seconds: float, limit: int = 100) -> list[orders.Order]:
        return self.http.call(orders.STALE_ORDERS, query={"grace_seconds": grace_seconds, "limit": limit}).orders


    # --- transfers ----------------------------------------------------------------------------------------------

    def create_transfer(self, transfer: Mapping) -> orders.Transfer:
        return self.http.call(orders.CREATE_TRANSFER, transfer)

    def get_transfer(self, transfer_id: str) -> orders.Transfer:
        return self.http.call(orders.GET_TRANSFER, path={"transfer_id": transfer_id})

    def list_transfers(self, **query) -> list[orders.Transfer]:
        return self.http.call(orders.LIST_TRANSFERS, query=query).transfers

    def begin_confirm(self, transfer_id: str, user_id: str) -> orders.Transfer:
        return self.http.call(orders.BEGIN_CONFIRM, {"user_id": user_id}, path={"transfer_id": transfer_id})

    def transition_transfer(self, transfer_id: str, to: orders.TransferStatus, *, reason: str | None = None,
                            release_at: datetime | None = None, resolution: str | None = None,
                            expected_step: orders.TransferStep | None = None) -> orders.Transfer:
        return self.http.call(orders.TRANSFER_TRANSITION, {
            "to": to, "reason": reason, "release_at": release_at.isoformat() if release_at else None,
            "resolution": resolution,
            "expected_step": expected_step}, path={"transfer_id": transfer_id})

    def begin_reverse(self, transfer_id: str) -> orders.Transfer:
        return self.http.call(orders.BEGIN_REVERSE, path={"transfer_id": transfer_id})

    def mark_released(self, transfer_id: str) -> orders.Transfer:
        return self.http.call(orders.MARK_RELEASED, path={"transfer_id": transfer_id})

    def stale_transfers(self, grace_seconds: float, limit: int = 100) -> list[orders.Transfer]:
        return self.http.call(orders.STALE_TRANSFERS,
                              query={"grace_seconds": grace_seconds, "limit": limit}).transfers

    # --- an event's records (admin reports and the event-cancellation saga) ------------------------------------

    def event_orders(self, event_id: str, statuses: list[str] | None = None, limit: int = 50,
                     offset: int = 0) -> list[orders.Order]:
        """The event's orders, oldest first; only those in one of `statuses` when given."""
        return self.http.call(orders.LIST_ORDERS, query={
            "event_id": event_id, "status": statuses or None, "limit": limit, "offset": offset}).orders

    def event_transfers(self, event_id: str, statuses: list[str] | None = None, limit: int = 50,
                        offset: int = 0) -> list[orders.Transfer]:
        """The event's transfers, oldest first; only those in one of `statuses` when given."""
        return self.http.call(orders.LIST_TRANSFERS, query={
            "event_id": event_id, "status": statuses or None, "limit": limit, "offset": offset}).transfers

    def event_sales(self, event_id: str) -> orders.EventSales:
        return self.http.call(orders.EVENT_SALES, path={"event_id": event_id})

    def cancellation_notices(self, event_id: str, reason: str, event_name: str | None = None) -> int:
        """Tell every fan of the event it is cancelled (once each, however often called); how many were told."""
        return self.http.call(orders.EVENT_CANCELLED_NOTICES, {"reason": reason, "event_name": event_name},
                              path={"event_id": event_id}).notified


class EventService:
    """Events change rarely and are read on every seat map and gate scan: a found event is kept for
    `cache_seconds` (0: not kept). An unknown event is never kept, so a new one is seen at once; every change made
    through this client (publish, cancel and its steps) drops the event from the cache, and `forget` drops one for
    a caller that knows it changed elsewhere."""

    def __init__(self, client: ServiceClient, cache_seconds: float = 0.0, cache_size: int = 4096):
        self.http = client
        self._cache = None
        if cache_seconds > 0:
            self._cache = cached(TTLCache(cache_size, cache_seconds), lock=threading.Lock(),
                                 key=lambda event_id: event_id, info=False)(self._get)
            self.get = self._cache

    def list(self, limit: int, offset: int,
             status: events.EventStatus | str | Iterable[events.EventStatus | str] | None = None) -> events.EventList:
        """A page of events by start time; `status`: one state or several (all events without it)."""
        query: dict = {"limit": limit, "offset": offset}
        if status is not None:
            query["status"] = [status] if isinstance(status, str) else list(status)
        return self.http.call(events.LIST_EVENTS, query=query)

    def get(self, event_id: str) -> events.Event:
        return self._get(event_id)

    def _get(self, event_id: str) -> events.Event:
        return self.http.call(events.GET_EVENT, path={"event_id": event_id})

    def current(self, event_id: str) -> events.Event:
        """The event as event-service has it now, never from the cache: for a decision that moves credits."""
        return self._get(event_id)

    def forget(self, event_id: str) -> None:
        """Drop the event from the cache (nothing to do without one): the next get reads it again."""
        if self._cache is not None:
            with self._cache.cache_lock:
                self._cache.cache.pop(event_id, None)

    def _changed(self, event: events.Event) -> events.Event:
        self.forget(event.event_id)
        return event

    def venues(self, limit: int, offset: int) -> events.VenueList:
        return self.http.call(events.LIST_VENUES, query={"limit": limit, "offset": offset})

    # --- organizer ----------------------------------------------------------------------------------------------

    def create_venue(self, body: Mapping) -> events.Venue:
        """`{venue_id, name, address?}`; the same venue again answers it as it is (VENUE_CONFLICT for other
        details)."""
        return self.http.call(events.CREATE_VENUE, body)

    def get_venue(self, venue_id: str) -> events.Venue:
        return self.http.call(events.GET_VENUE, path={"venue_id": venue_id})

    def create_hall(self, venue_id: str, body: Mapping) -> events.Hall:
        """`{hall_id, name}`; VENUE_NOT_FOUND, HALL_NAME_TAKEN, HALL_CONFLICT."""
        return self.http.call(events.CREATE_HALL, body, path={"venue_id": venue_id})

    def create_event(self, body: Mapping) -> events.Event:
        """`{event_id, name, hall_id, starts_at, description?}`: a DRAFT event (the same again: as it is now)."""
        return self._changed(self.http.call(events.CREATE_EVENT, body))

    def publish(self, event_id: str) -> events.Event:
        return self._changed(self.http.call(events.PUBLISH_EVENT, path={"event_id": event_id}))

    def begin_cancel(self, event_id: str, reason: str) -> events.Event:
        return self._changed(self.http.call(events.BEGIN_CANCEL, {"reason": reason}, path={"event_id": event_id}))

    def cancel_progress(self, event_id: str, done: int) -> events.Event:
        return self._changed(self.http.call(events.CANCEL_PROGRESS, {"done": done}, path={"event_id": event_id}))

    def finish_cancel(self, event_id: str) -> events.Event:
        return self._changed(self.http.call(events.FINISH_CANCEL, path={"event_id": event_id}))

    def stale_cancellations(self, grace_seconds: float, limit: int = 100) -> list[events.Event]:
        """CANCELLING events not updated for more than grace_seconds (whole seconds), oldest first."""
        return self.http.call(events.STALE_CANCELLATIONS,
                              query={"grace_seconds": int(grace_seconds), "limit": limit}).events
