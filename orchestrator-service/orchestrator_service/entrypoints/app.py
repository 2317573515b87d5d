"""The public API (README; /openapi.json). Routes only translate: parse, call one service-layer function, shape the reply.

Every identifier in a path or body is validated as a UUID here, before any remote call (400 naming it otherwise),
and internal URLs are built from escaped segments only (trcontracts Route.url). Identity always comes from a
verified JWT; in local mode this process is the edge, so it enforces the same
token rules Kong enforces in the containerised deployment (and it re-verifies behind Kong too).
"""
from __future__ import annotations

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

from trcommon.auth import current_principal, require_auth
from trcommon.process import start_app
from trcommon.ratelimit import RateLimits
from trcommon.web import (DrainUnreadBody, create_flask_app, health_blueprint, json_reply,
                          parse_body, parse_query)
from trcontracts import users
from trcontracts.base import Page

from ..bootstrap import Container, bootstrap
from ..domain.ids import required_uuid
from ..service_layer import catalog, gate, purchase, refunds, tickets, transfers
from ..service_layer.admin_audit import as_admin_action
from ..settings import OrchestratorSettings
from . import openapi
from .admin import admin_routes, fan_notification_routes
from .scanner_page import scanner_blueprint
from .schemas import (ConfirmTransferBody, DisputeBody, InitiateTransferBody, LoginBody, PayBody, RefreshBody,
                      RegisterBody, ReserveBody, ResolveBody, TopupBody, TransferIdBody, VerifyBody)


# What `/me` shows of the account (users.User has more, e.g. created_at).
PROFILE_FIELDS = {"user_id", "email", "phone", "role", "credit_balance", "pending_credits", "is_flagged"}


def auth_routes(c: Container, limits: RateLimits) -> Blueprint:
    bp = Blueprint("auth", __name__)
    authed = require_auth(c.tokens)

    @bp.post("/auth/register")
    @limits.auth
    def register():
        return json_reply(c.users.register(parse_body(RegisterBody).model_dump()), 201)

    @bp.post("/auth/login")
    @limits.auth
    @limits.login_failures
    def login():
        return json_reply(c.users.login(parse_body(LoginBody).model_dump()))

    @bp.post("/auth/refresh")
    def refresh():
        return json_reply(c.users.refresh(parse_body(RefreshBody).model_dump()))

    @bp.get("/me")
    @authed
    def me():
        user = c.users.get_user(current_principal().user_id)
        return jsonify(user.model_dump(mode="json", include=PROFILE_FIELDS))

    return bp


def event_routes(c: Container) -> Blueprint:
    bp = Blueprint("events", __name__)

    @bp.get("/events")
    def list_events():
        page = parse_query(Page)
        return json_reply(catalog.events(c, page.limit, page.offset))

    @bp.get("/events/<event_id>")
    def get_event(event_id: str):
        return json_reply(catalog.event(c, required_uuid("event_id", event_id)))

    @bp.get("/venues")
    def list_venues():
        page = parse_query(Page)
        return json_reply(c.events.venues(page.limit, page.offset))

    @bp.get("/events/<event_id>/seats")
    def seat_map(event_id: str):
        return jsonify(catalog.seat_map(c, required_uuid("event_id", event_id)))

    return bp


def purchase_routes(c: Container, limits: RateLimits) -> Blueprint:
    bp = Blueprint("purchase", __name__)
    authed = require_auth(c.tokens)

    @bp.post("/reserve")
    @authed
    @limits.holds(lambda: current_principal().user_id)
    def reserve():
        body = parse_body(ReserveBody)
        p = current_principal()
        return jsonify(purchase.reserve(c, p.user_id, p.role, body.seats())), 201

    @bp.post("/pay")
    @authed
    def pay():
        body = parse_body(PayBody)
        return jsonify(purchase.pay(c, current_principal().user_id, body.order_id, body.otp_code))

    @bp.get("/orders/<order_id>")
    @authed
    def get_order(order_id: str):
        return jsonify(purchase.get_order(c, current_principal().user_id, required_uuid("order_id", order_id)))

    @bp.post("/orders/<order_id>/cancel")
    @authed
    def cancel_order(order_id: str):
        return jsonify(purchase.cancel(c, current_principal().user_id, required_uuid("order_id", order_id)))

    @bp.post("/orders/<order_id>/refund")
    @authed
    def refund_order(order_id: str):
        p = current_principal()
        order_id = required_uuid("order_id", order_id)
        return jsonify(as_admin_action(c, p, "order.refund", "order", order_id, {},
                                       lambda: refunds.refund(c, p.user_id, p.role, order_id)))

    @bp.get("/me/orders")
    @authed
    def my_orders():
        page = parse_query(Page)
        return jsonify({"orders": purchase.my_orders(c, current_principal().user_id, page.limit, page.offset)})

    return bp


def transfer_routes(c: Container) -> Blueprint:
    bp = Blueprint("transfers", __name__)
    authed = require_auth(c.tokens)

    @bp.post("/transfer/initiate")
    @authed
    def initiate():
        body, p = parse_body(InitiateTransferBody), current_principal()
        return jsonify(transfers.initiate(c, p.user_id, p.role, body.seat_id, body.buyer_email, body.amount)), 201

    @bp.post("/transfer/confirm")
    @authed
    def confirm():
        body = parse_body(ConfirmTransferBody)
        return jsonify(transfers.confirm(c, current_principal().user_id, body.transfer_id, body.seller_otp,
                                         body.buyer_otp))

    @bp.post("/transfer/codes")
    @authed
    def resend_code():
        body, p = parse_body(TransferIdBody), current_principal()
        return jsonify(transfers.resend_code(c, p.user_id, p.role, body.transfer_id)), 202

    @bp.post("/transfer/cancel")
    @authed
    def cancel():
        body, p = parse_body(TransferIdBody), current_principal()
        return jsonify(transfers.cancel(c, p.user_id, p.role, body.transfer_id))

    @bp.post("/transfer/dispute")
    @authed
    def dispute():
        body, p = parse_body(DisputeBody), current_principal()
        return jsonify(transfers.dispute(c, p.user_id, p.role, body.transfer_id, body.reason))

    @bp.post("/transfer/reverse")
    @authed
    def reverse():
        body, p = parse_body(TransferIdBody), current_principal()
        return jsonify(as_admin_action(c, p, "transfer.reverse", "transfer", body.transfer_id, body.model_dump(),
                                       lambda: transfers.reverse(c, p.role, body.transfer_id)))

    @bp.post("/transfer/resolve")
    @authed
    def resolve():
        body, p = parse_body(ResolveBody), current_principal()
        return jsonify(as_admin_action(c, p, "transfer.resolve", "transfer", body.transfer_id, body.model_dump(),
                                       lambda: transfers.resolve(c, p.role, body.transfer_id, body.resolution)))

    @bp.get("/transfers/<transfer_id>")
    @authed
    def get_transfer(transfer_id: str):
        p = current_principal()
        return jsonify(transfers.get(c, p.user_id, p.role, required_uuid("transfer_id", transfer_id)))

    @bp.get("/me/transfers")
    @authed
    def my_transfers():
        page = parse_query(Page)
        return jsonify({"transfers": transfers.mine(c, current_principal().user_id, page.limit, page.offset)})

    @bp.get("/me/tickets")
    @authed
    def my_tickets():
        return jsonify({"tickets": tickets.my_tickets(c, current_principal().user_id)})

    return bp


def gate_routes(c: Container) -> Blueprint:
    bp = Blueprint("gate", __name__)
    authed = require_auth(c.tokens)

    @bp.get("/tickets/<seat_id>/qr")
    @authed
    def ticket_code(seat_id: str):
        code = gate.issue_code(c, current_principal().user_id, required_uuid("seat_id", seat_id))
        if request.accept_mimetypes.best_match(["application/json", "image/png"]) == "image/png":
            reply = Response(gate.code_png(code["qr"]), mimetype="image/png")
        else:
            reply = jsonify(code)
        reply.headers["Cache-Control"] = "no-store"
        return reply

    @bp.get("/verify/keys")
    def public_keys():
        return jsonify(gate.public_keys(c))

    @bp.post("/verify")
    @require_auth(c.tokens, "scanner", "admin")
    def verify():
        body = parse_body(VerifyBody)
        return jsonify(gate.verify(c, current_principal().user_id, body.qr, body.hall_id))

    return bp


def credit_routes(c: Container) -> Blueprint:
    bp = Blueprint("credits", __name__)

    @bp.post("/credits/topup")
    @require_auth(c.tokens)
    def topup():
        body = parse_body(TopupBody)
        return json_reply(c.users.topup(current_principal().user_id, body.amount), 201)

    @bp.post("/webhooks/stripe")
    def stripe_webhook():
        return json_reply(c.users.stripe_webhook(request.get_data(),
                                                 request.headers.get(users.STRIPE_SIGNATURE_HEADER)))

    return bp


def create_app(settings: OrchestratorSettings | None = None, container: Container | None = None) -> Flask:
    settings, c = start_app(OrchestratorSettings, bootstrap, settings=settings, container=container, broker=True)
    app = create_flask_app(settings.service_name, settings)
    # An answer given before the body was read (401, 413) reaches the client instead of a connection reset.
    app.wsgi_app = DrainUnreadBody(app.wsgi_app)
    if settings.forwarded_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.forwarded_proxies)
    limits = RateLimits(settings.rate_limits)
    for bp in (auth_routes(c, limits), event_routes(c), purchase_routes(c, limits), transfer_routes(c), gate_routes(c),
               credit_routes(c), admin_routes(c), fan_notification_routes(c), openapi.docs_blueprint(settings.topup_min_amount, settings.topup_max_amount),
               scanner_blueprint(settings.static_dir)):
        app.register_blueprint(bp)
    app.register_blueprint(limits.exempt(health_blueprint({
        "user-service": c.users.http.health, "order-service": c.orders.http.health,
        "event-service": c.events.http.health, "inventory-service": c.inventory.health,
        "rabbitmq": c.holds.check,
    })))
    limits.install(app)

    return app
