"""The admin API (role `admin`; everyone else gets 403 WRONG_ROLE before anything is read or written): organizers'
venues, halls, events with seat grids, sales and gate reports; accounts (flags, credit grants, ledgers); the admins'
own audit trail. Routes only translate, as in app.py."""
from __future__ import annotations

import re

from flask import Blueprint, jsonify, request

from trcommon.auth import current_principal, require_auth
from trcommon.errors import InvalidInput
from trcommon.web import parse_body, parse_query

from ..bootstrap import Container
from ..domain.ids import required_uuid
from ..service_layer import accounts, organizer
from .admin_schemas import (AdminEventQuery, AuditQuery, CancelEventBody, EmailQuery, EventBody, FlagBody, GateQuery,
                            GrantBody, HallBody, PricesBody, VenueBody)
from trcontracts.base import Page

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def idempotency_key(required: bool = False) -> str | None:
    """The request's Idempotency-Key: 1-200 visible ASCII characters; the same key repeats the same action once."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        if required:
            raise InvalidInput(f"this request needs an {IDEMPOTENCY_HEADER} header (any unique text, reused on retry)",
                               details=[{"field": IDEMPOTENCY_HEADER, "message": "required"}])
        return None
    if not _KEY.fullmatch(key):
        raise InvalidInput(f"{IDEMPOTENCY_HEADER} must be 1 to 200 visible ASCII characters",
                           details=[{"field": IDEMPOTENCY_HEADER, "message": "invalid"}])
    return key


def admin_routes(c: Container) -> Blueprint:
    bp = Blueprint("admin", __name__)
    admin = require_auth(c.tokens, "admin")

    def me() -> str:
        return current_principal().user_id

    # --- venues, halls, events ------------------------------------------------------------------------------------

    @bp.post("/admin/venues")
    @admin
    def create_venue():
        body = parse_body(VenueBody)
        return jsonify(organizer.create_venue(c, me(), body.model_dump(), idempotency_key())), 201

    @bp.post("/admin/venues/<venue_id>/halls")
    @admin
    def create_hall(venue_id: str):
        venue_id = required_uuid("venue_id", venue_id)
        body = parse_body(HallBody)
        return jsonify(organizer.create_hall(c, me(), venue_id, body.model_dump(), idempotency_key())), 201

    @bp.get("/admin/events")
    @admin
    def list_events():
        q = parse_query(AdminEventQuery)
        return jsonify(organizer.list_events(c, q.limit, q.offset, [q.status.value] if q.status else None))

    @bp.post("/admin/events")
    @admin
    def create_event():
        body = parse_body(EventBody).check()
        return jsonify(organizer.create_event(c, me(), body.event_fields(), body.grid(), body.publish,
                                              idempotency_key())), 201

    @bp.post("/admin/events/<event_id>/publish")
    @admin
    def publish(event_id: str):
        return jsonify(organizer.publish(c, me(), required_uuid("event_id", event_id)))

    @bp.post("/admin/events/<event_id>/cancel")
    @admin
    def cancel(event_id: str):
        event_id = required_uuid("event_id", event_id)
        body = parse_body(CancelEventBody)
        return jsonify(organizer.cancel(c, me(), event_id, body.reason))

    @bp.post("/admin/events/<event_id>/prices")
    @admin
    def prices(event_id: str):
        event_id = required_uuid("event_id", event_id)
        body = parse_body(PricesBody)
        return jsonify(organizer.update_prices(c, me(), event_id, body.price, body.section, body.seat_ids))

    @bp.get("/admin/events/<event_id>/sales")
    @admin
    def sales(event_id: str):
        return jsonify(organizer.sales_report(c, required_uuid("event_id", event_id)))

    @bp.get("/admin/events/<event_id>/gate")
    @admin
    def gate(event_id: str):
        event_id = required_uuid("event_id", event_id)
        q = parse_query(GateQuery)
        return jsonify(organizer.gate_report(c, event_id, q.bucket_seconds, q.limit, q.offset))

    # --- accounts -------------------------------------------------------------------------------------------------

    @bp.get("/admin/users")
    @admin
    def find_user():
        return jsonify(accounts.find(c, parse_query(EmailQuery).email))

    @bp.get("/admin/users/<user_id>")
    @admin
    def get_user(user_id: str):
        return jsonify(accounts.get(c, required_uuid("user_id", user_id)))

    @bp.post("/admin/users/<user_id>/flag")
    @admin
    def flag(user_id: str):
        user_id = required_uuid("user_id", user_id)
        return jsonify(accounts.set_flag(c, me(), user_id, parse_body(FlagBody).flagged))

    @bp.post("/admin/users/<user_id>/credits")
    @admin
    def grant(user_id: str):
        user_id = required_uuid("user_id", user_id)
        body = parse_body(GrantBody)
        return jsonify(accounts.grant(c, me(), user_id, body.amount, body.reason, idempotency_key(required=True)))

    @bp.get("/admin/users/<user_id>/ledger")
    @admin
    def ledger(user_id: str):
        user_id = required_uuid("user_id", user_id)
        page = parse_query(Page)
        return jsonify(accounts.ledger(c, user_id, page.limit, page.offset))

    @bp.get("/admin/audit")
    @admin
    def audit_trail():
        q = parse_query(AuditQuery)
        return jsonify(accounts.audit_trail(c, limit=q.limit, offset=q.offset, **q.filters()))

    return bp


def fan_notification_routes(c: Container) -> Blueprint:
    bp = Blueprint("notifications", __name__)

    @bp.get("/me/notifications")
    @require_auth(c.tokens)
    def my_notifications():
        page = parse_query(Page)
        return jsonify(accounts.notifications(c, current_principal().user_id, page.limit, page.offset))

    return bp
