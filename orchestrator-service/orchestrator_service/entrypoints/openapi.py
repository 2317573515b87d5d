"""The OpenAPI 3.1 document of the public API (`/openapi.json`) and a browsable page (`/docs`).

Request schemas come from the same pydantic models the routes validate with, so the document cannot drift
from what the API accepts."""
from __future__ import annotations

from flask import Blueprint, jsonify, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from trcommon.web import CONTROL_CHARACTERS, MAX_JSON_DEPTH, MAX_JSON_INT
from trcontracts import users
from trcontracts.base import Page
from trcontracts.events import VenueList

from ..domain.ids import UUID_PATTERN
from .admin_schemas import (AdminEventQuery, AuditQuery, CancelEventBody, EmailQuery, EventBody, FlagBody, GateQuery,
                            GrantBody, HallBody, PricesBody, VenueBody)
from .schemas import (ConfirmTransferBody, DisputeBody, InitiateTransferBody, LoginBody, PayBody, Profile,
                      PublicKeys, QrCode, RefreshBody, RegisterBody, ReserveBody, ResolveBody, ScanVerdict, TicketList,
                      TopupBody, TransferIdBody, TransferList, TransferView, VerifyBody)

ERROR = {"$ref": "#/components/schemas/Error"}
# Every route but the health check is rate-limited (trcommon.ratelimit): 429 with Retry-After.
NOT_RATE_LIMITED = {"/health"}
RATE_LIMITED = {"description": "too many requests (rate limits, or a route's own cap); retry after Retry-After "
                               "seconds", "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                "content": {"application/json": {"schema": ERROR}}}
BEARER = [{"bearerAuth": []}]
# Every route that calls another service answers 503 while it is down (retry later; nothing is half-done).
NO_DEPENDENCY = {"/verify/keys"}
DEPENDENCY_DOWN = {"description": "a service or the broker this request needs is down; retry later",
                   "content": {"application/json": {"schema": ERROR}}}
TOO_LARGE = {"description": "the body is larger than MAX_BODY_BYTES",
             "content": {"application/json": {"schema": ERROR}}}

# What every admin route may answer besides its own errors.
ADMIN_ERRORS = [400, 401, 403]

# (method, path, summary, request model, success status, auth, error statuses[, answer model])
ROUTES = [
    ("post", "/auth/register", "Create a fan account", RegisterBody, 201, False, [400, 409]),
    ("post", "/auth/login", "Log in; returns access and refresh tokens", LoginBody, 200, False, [400, 401]),
    ("post", "/auth/refresh", "Exchange a refresh token for a new access token", RefreshBody, 200, False, [400, 401]),
    ("get", "/me", "The caller's profile: spendable and pending credits, role and flag", None, 200, True, [401],
     Profile),
    ("get", "/events", "List events", None, 200, False, []),
    ("get", "/events/{event_id}", "One event, with hall_id and venue_id", None, 200, False, [404]),
    ("get", "/venues", "Venues with their halls, by name (a gate picks its hall here)", None, 200, False, [400],
     VenueList),
    ("get", "/events/{event_id}/seats", "The seat map of an event", None, 200, False, [404, 503]),
    ("post", "/reserve", "Hold a seat, or 1-8 seats of one event all or none, for HOLD_TTL_SECONDS; creates one "
     "PENDING order (409 SEAT_UNAVAILABLE names the seats in details.seat_ids)", ReserveBody, 201, True,
     [400, 401, 403, 404, 409, 429, 503]),
    ("post", "/pay", "Pay a held order with credits (flagged fans need an OTP)", PayBody, 200, True,
     [400, 401, 402, 403, 404, 410, 428, 429, 503]),
    ("get", "/orders/{order_id}", "One of the caller's orders", None, 200, True, [401, 404]),
    ("post", "/orders/{order_id}/cancel", "Call off a PENDING order nobody has begun paying: every seat is "
     "AVAILABLE at once, the order CANCELLED (again: the same answer, nothing changes). 409 "
     "PAYMENT_IN_PROGRESS once /pay has begun, ORDER_NOT_CANCELLABLE when CONFIRMED or ended", None, 200, True,
     [400, 401, 404, 409]),
    ("post", "/orders/{order_id}/refund", "The owner of a CONFIRMED order (until REFUND_CUTOFF_SECONDS before the "
     "event; admins: any order, any time) gets its amount back once and every seat goes back on sale, every code "
     "of those tickets INVALID at the gate; the order ends REFUNDED (again: the same answer). 409 "
     "TICKET_NOT_REFUNDABLE when a seat was checked in or transferred away (details.reason), REFUND_CUTOFF_PASSED, "
     "ORDER_NOT_REFUNDABLE when not CONFIRMED", None, 200, True, [400, 401, 404, 409, 503]),
    ("get", "/me/orders", "The caller's orders, newest first", None, 200, True, [401]),
    ("get", "/me/tickets", "The seats the caller owns or holds, with their event and any pending transfer", None,
     200, True, [401], TicketList),
    ("get", "/tickets/{seat_id}/qr", "A fresh signed gate code for the caller's ticket (owner) or held seat; lives "
     "QR_TTL_SECONDS. `Accept: image/png` answers a PNG of the same code", None, 200, True, [401, 404, 503], QrCode),
    ("post", "/verify", "Scanner or admin: check a scanned code at a hall; checks the ticket in on its first valid "
     "entry. Every scan is logged", VerifyBody, 200, True, [400, 401, 403, 503], ScanVerdict),
    ("get", "/verify/keys", "The public keys (JWKS) that gate codes are signed with, for offline checks", None, 200,
     False, [], PublicKeys),
    ("get", "/scanner", "The gate page for venue staff (HTML): sign in as a scanner, pick the hall, scan with the "
     "camera or type a code. 503 until `make static` has built it", None, 200, False, [503]),
    ("post", "/transfer/initiate", "Offer an owned ticket to another fan for 0..face value credits; sends both "
     "parties a code", InitiateTransferBody, 201, True, [400, 401, 403, 404, 409], TransferView),
    ("post", "/transfer/confirm", "Complete a transfer with both parties' codes: the buyer pays, the ticket moves "
     "(every earlier QR dies), the seller's proceeds stay pending through the dispute window", ConfirmTransferBody,
     200, True, [400, 401, 402, 403, 404, 409, 410, 429, 503], TransferView),
    ("post", "/transfer/codes", "A party asks for a new code for a transfer still waiting for its codes (codes live "
     "OTP_TTL_SECONDS; sends are capped per hour)", TransferIdBody, 202, True, [400, 401, 403, 404, 409, 429, 503]),
    ("post", "/transfer/cancel", "The seller withdraws a transfer still waiting for its codes", TransferIdBody, 200,
     True, [400, 401, 403, 404, 409], TransferView),
    ("post", "/transfer/dispute", "Seller or buyer disputes a completed transfer while the window is open",
     DisputeBody, 200, True, [400, 401, 404, 409, 410], TransferView),
    ("post", "/transfer/reverse", "Admin: give a disputed ticket back and refund the buyer from the pending proceeds",
     TransferIdBody, 200, True, [400, 401, 403, 404, 409, 503], TransferView),
    ("post", "/transfer/resolve", "Admin: close a dispute without reversal (the transfer stays COMPLETED)",
     ResolveBody, 200, True, [400, 401, 403, 404, 409], TransferView),
    ("get", "/transfers/{transfer_id}", "A transfer the caller is a party to (admins: any)", None, 200, True,
     [401, 404], TransferView),
    ("get", "/me/transfers", "The caller's transfers, as seller or buyer, newest first", None, 200, True, [401],
     TransferList),
    ("post", "/credits/topup", "Start a Stripe top-up; returns the PaymentIntent client_secret", TopupBody, 201,
     True, [400, 401, 503]),
    ("post", "/webhooks/stripe", "Stripe webhook (signature-verified)", None, 200, False, [400, 503]),
    ("get", "/health", "200 when this service and what it needs are up", None, 200, False, [503]),
    ("get", "/me/notifications", "What the platform told the caller (order confirmed, hold expired, transfers, "
     "refunds, event cancelled), newest first; each was also sent by SMS and e-mail", None, 200, True, [400, 401]),
    # --- the admin API: role admin (403 WRONG_ROLE for everyone else, before anything is read or written) ---
    ("post", "/admin/venues", "Admin: create a venue (Idempotency-Key: a retry creates it once)", VenueBody, 201,
     True, ADMIN_ERRORS + [409]),
    ("post", "/admin/venues/{venue_id}/halls", "Admin: add a hall to a venue (hall names are unique in a venue)",
     HallBody, 201, True, ADMIN_ERRORS + [404, 409]),
    ("get", "/admin/events", "Admin: every event, drafts and cancelled ones included, by start time", None, 200, True,
     ADMIN_ERRORS),
    ("post", "/admin/events", "Admin: create an event in a hall with its whole seat grid (sections × rows × seats per "
     "row, a price per section, up to 20,000 seats) in one call; DRAFT (not listed, not on sale) unless `publish`. "
     "Idempotency-Key: a retry completes what a failed request began, never a second event", EventBody, 201, True,
     ADMIN_ERRORS + [404, 409]),
    ("post", "/admin/events/{event_id}/publish", "Admin: put a DRAFT event on sale (listed, its seats can be held)",
     None, 200, True, ADMIN_ERRORS + [404, 409]),
    ("post", "/admin/events/{event_id}/cancel", "Admin: call an event off: sales closed, every hold ended, every "
     "waiting transfer cancelled, every confirmed order refunded once (tickets checked in or transferred away are "
     "named in `not_refunded`), every fan notified; again: the same answer. 503: it goes on by itself",
     CancelEventBody, 200, True, ADMIN_ERRORS + [404]),
    ("post", "/admin/events/{event_id}/prices", "Admin: new price for the event's unsold seats (all, a section, or "
     "listed seats); seats held, sold or checked in keep theirs (counted as skipped)", PricesBody, 200, True,
     ADMIN_ERRORS + [404, 409]),
    ("get", "/admin/events/{event_id}/sales", "Admin: the sales report: seats by status and section, face value "
     "sold, orders by status, revenue, refunds, transfers", None, 200, True, ADMIN_ERRORS + [404]),
    ("get", "/admin/events/{event_id}/gate", "Admin: the gate report: scans by result and by hall, check-ins over "
     "time (paged buckets)", None, 200, True, ADMIN_ERRORS + [404]),
    ("get", "/admin/users", "Admin: find an account by e-mail", None, 200, True, ADMIN_ERRORS + [404]),
    ("get", "/admin/users/{user_id}", "Admin: one account", None, 200, True, ADMIN_ERRORS + [404]),
    ("post", "/admin/users/{user_id}/flag", "Admin: flag (the fan then needs an OTP to pay) or unflag an account",
     FlagBody, 200, True, ADMIN_ERRORS + [404]),
    ("post", "/admin/users/{user_id}/credits", "Admin: grant credits: one ledger row naming the admin and the reason, "
     "once per Idempotency-Key (required)", GrantBody, 200, True, ADMIN_ERRORS + [404]),
    ("get", "/admin/users/{user_id}/ledger", "Admin: an account's ledger, newest first", None, 200, True,
     ADMIN_ERRORS + [404]),
    ("get", "/admin/audit", "Admin: the admins' audit trail (who, what, when, before/after, outcome), newest first",
     None, 200, True, ADMIN_ERRORS),
]

# Routes with a query other than a plain page, and their query models.
QUERIES = {("get", "/admin/events"): AdminEventQuery, ("get", "/admin/events/{event_id}/gate"): GateQuery,
           ("get", "/admin/users"): EmailQuery, ("get", "/admin/audit"): AuditQuery}
# Routes that take an Idempotency-Key header (True: required).
IDEMPOTENT = {("post", "/admin/venues"): False, ("post", "/admin/venues/{venue_id}/halls"): False,
              ("post", "/admin/events"): False, ("post", "/admin/users/{user_id}/credits"): True}

# Answers in media types other than JSON: the code's PNG when the request's Accept header asks for it; the gate
# page is HTML.
ALSO_ANSWERS = {("get", "/tickets/{seat_id}/qr"): {"image/png": {"schema": {
    "type": "string", "contentMediaType": "image/png", "description": "a QR code of the same `qr` string"}}},
                ("get", "/scanner"): {"text/html": {"schema": {"type": "string", "contentMediaType": "text/html"}}}}


# The Stripe webhook's body is Stripe's event, passed on as raw bytes and verified against its signature.
WEBHOOK = ("post", "/webhooks/stripe")
STRIPE_EVENT = {"type": "object", "description": "a Stripe event; anything not signed with STRIPE_WEBHOOK_SECRET is "
                                                "a 400"}
WEBHOOK_BODY = {"required": True, "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/StripeEvent"}}}}
WEBHOOK_SIGNATURE = {"name": users.STRIPE_SIGNATURE_HEADER, "in": "header", "required": True,
                     "schema": {"type": "string"}}

# Every JSON body passes the edge's request guard (trcommon.web.load_json_body) before its route sees it: text
# without control characters (field names included), integers within 64 bits, at most MAX_JSON_DEPTH levels of
# nesting; fields the route does not know are ignored, but under the same rules.
TEXT_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"
JSON_VALUE = {"description": f"any JSON value under the request guard's rules (nested at most {MAX_JSON_DEPTH} "
                             "levels)",
              "anyOf": [{"type": "null"}, {"type": "boolean"},
                        {"type": "number", "minimum": -MAX_JSON_INT, "maximum": MAX_JSON_INT},
                        {"type": "string", "pattern": TEXT_PATTERN},
                        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
                        {"type": "object", "propertyNames": {"pattern": TEXT_PATTERN},
                         "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}}]}


def _guarded(schema: dict) -> dict:
    """A request body's schema with the request guard's rules stated: its text fields hold no control character,
    and the fields it does not name (ignored) are JSON values under the same rules."""
    for prop in schema.get("properties", {}).values():
        for option in prop.get("anyOf", [prop]):
            if option.get("type") == "array" and option.get("items", {}).get("type") == "string":
                option = option["items"]            # a list of texts: each under the same rule
            if option.get("type") == "string" and "pattern" not in option:
                option["pattern"] = TEXT_PATTERN
            elif option.get("type") == "string" and not option["pattern"].startswith("^"):
                option["allOf"] = [{"pattern": TEXT_PATTERN}]     # a pattern found anywhere in the text
    schema["propertyNames"] = {"pattern": TEXT_PATTERN}
    schema["additionalProperties"] = {"$ref": "#/components/schemas/JsonValue"}
    return schema


# Routes that read a page of results from the query string (`Page`).
PAGED = {("get", "/events"), ("get", "/venues"), ("get", "/me/orders"), ("get", "/me/transfers"),
         ("get", "/me/notifications"), ("get", "/admin/users/{user_id}/ledger")}


def _page_parameters(model=Page) -> list[dict]:
    schema = model.model_json_schema()
    fields, required = schema["properties"], set(schema.get("required", ()))
    return [{"name": name, "in": "query", "required": name in required,
             "schema": {k: v for k, v in schema.items() if k != "title"}} for name, schema in fields.items()]


def build_document(topup_min: int = 100, topup_max: int = 1_000_000) -> dict:
    """The document; `topup_min` and `topup_max` are the bounds of one top-up that user-service enforces
    (TOPUP_MIN_AMOUNT, TOPUP_MAX_AMOUNT)."""
    schemas = {"JsonValue": JSON_VALUE, "StripeEvent": STRIPE_EVENT,
               "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {},
                       # Errors that end by themselves (429s) say when to try again, as the Retry-After header does.
                       "retry_after": {"type": "integer", "minimum": 0}}}}}}
    paths: dict = {}
    for method, path, summary, model, ok, auth, errors, *answer in ROUTES:
        op: dict = {"summary": summary, "responses": {str(ok): {"description": "success"}}}
        if answer:
            schemas.update(answer[0].model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs", {}))
            schemas[answer[0].__name__] = answer[0].model_json_schema(ref_template="#/components/schemas/{model}")
            schemas[answer[0].__name__].pop("$defs", None)
            op["responses"][str(ok)]["content"] = {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{answer[0].__name__}"}}}
        if (method, path) in ALSO_ANSWERS:
            op["responses"][str(ok)].setdefault("content", {}).update(ALSO_ANSWERS[(method, path)])
        for status in errors:
            op["responses"][str(status)] = {"description": "error",
                                            "content": {"application/json": {"schema": ERROR}}}
        if path not in NOT_RATE_LIMITED:
            op["responses"]["429"] = RATE_LIMITED
        if path not in NO_DEPENDENCY:
            op["responses"].setdefault("503", DEPENDENCY_DOWN)
        if model is not None:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, nested in schema.pop("$defs", {}).items():      # e.g. an event's GridSection
                schemas[name] = _guarded(nested)
            schemas[model.__name__] = _guarded(schema)
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
        if auth:
            op["security"] = BEARER
        params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        if params:
            # Every path parameter is an identifier, refused with a 400 naming it unless it is a UUID.
            op["parameters"] = [{"name": p, "in": "path", "required": True,
                                 "schema": {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}}
                                for p in params]
        if (method, path) in PAGED:
            op.setdefault("parameters", []).extend(_page_parameters())
        if (method, path) in QUERIES:
            op.setdefault("parameters", []).extend(_page_parameters(QUERIES[(method, path)]))
        if (method, path) in IDEMPOTENT:
            op.setdefault("parameters", []).append({
                "name": "Idempotency-Key", "in": "header", "required": IDEMPOTENT[(method, path)],
                "description": "1-200 visible ASCII characters; a request repeated with the same key does its work "
                               "once", "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"}})
        if (method, path) == WEBHOOK:
            op["requestBody"], op["parameters"] = WEBHOOK_BODY, [WEBHOOK_SIGNATURE]
        if "requestBody" in op:
            op["responses"]["413"] = TOO_LARGE
        if params or (method, path) in PAGED or (method, path) in QUERIES:
            op["responses"].setdefault("400", {"description": "error",
                                               "content": {"application/json": {"schema": ERROR}}})
        paths.setdefault(path, {})[method] = op
    amount = schemas["TopupBody"]["properties"]["amount"]
    amount["minimum"], amount["maximum"] = topup_min, topup_max
    return {"openapi": "3.1.0",
            "info": {"title": "TicketRemaster public API", "version": "1.0.0",
                     "description": "Errors are {\"error\": {\"code\", \"message\"}} with a fitting HTTP status."},
            "servers": [{"url": "http://localhost:8000"}], "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}}}


DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>TicketRemaster API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>"""


def docs_blueprint(topup_min: int, topup_max: int) -> Blueprint:
    bp = Blueprint("docs", __name__)
    document = build_document(topup_min, topup_max)

    @bp.get("/openapi.json")
    def openapi_json():
        return jsonify(document)

    @bp.get("/docs")
    def docs():
        return DOCS_PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}

    @bp.get("/docs/static/<path:filename>")
    def docs_static(filename: str):
        return send_from_directory(swagger_ui_path, filename)

    return bp
