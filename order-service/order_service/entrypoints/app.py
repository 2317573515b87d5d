"""HTTP entrypoint: translates requests to service-layer calls and results to JSON."""
from __future__ import annotations

import uuid
from typing import Annotated

from flask import Flask, jsonify
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field, model_validator

from trcommon.web import database_service_app, internal_blueprint, parse_body, parse_query

from ..bootstrap import Container, bootstrap
from ..domain.model import CreateOrder, OrderStatus
from ..service_layer import services
from ..settings import OrderSettings

BIGINT_MAX = 2**63 - 1


def _timestamp_string(value: object) -> object:
    # Without this, pydantic would also take a bare number of seconds for a time.
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp with a time zone, e.g. 2030-01-02T20:00:00Z")
    return value


Credits = Annotated[int, Field(strict=True, ge=0, le=BIGINT_MAX)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp_string)]


class CreateOrderBody(BaseModel):
    order_id: uuid.UUID
    user_id: uuid.UUID
    seat_id: uuid.UUID
    event_id: uuid.UUID
    amount: Credits
    held_until: Timestamp


class BeginPaymentBody(BaseModel):
    user_id: uuid.UUID


class TransitionBody(BaseModel):
    to: OrderStatus
    reason: str | None = Field(None, max_length=500)


class OrderQuery(BaseModel):
    user_id: uuid.UUID | None = None
    seat_id: uuid.UUID | None = None
    status: OrderStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _needs_user_or_seat(self):
        if self.user_id is None and self.seat_id is None:
            raise ValueError("give user_id, seat_id or both")
        return self


class StaleQuery(BaseModel):
    grace_seconds: int = Field(0, ge=0, le=366 * 24 * 3600)
    limit: int = Field(100, ge=1, le=1000)


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def create_app(settings: OrderSettings | None = None, container: Container | None = None) -> Flask:
    app, settings, c = database_service_app(OrderSettings, bootstrap, settings, container)

    api = internal_blueprint("orders", __name__, settings, url_prefix="/internal")

    @api.post("/orders")
    def create_order():
        body = parse_body(CreateOrderBody)
        order, created = services.create_order(c.uow, CreateOrder(
            order_id=str(body.order_id), user_id=str(body.user_id), seat_id=str(body.seat_id),
            event_id=str(body.event_id), amount=body.amount, held_until=body.held_until))
        return jsonify(order.to_dict()), (201 if created else 200)

    @api.get("/orders")
    def list_orders():
        q = parse_query(OrderQuery)
        found = services.list_orders(c.uow, _id(q.user_id), _id(q.seat_id), q.status, q.limit, q.offset)
        return jsonify({"orders": [o.to_dict() for o in found]})

    @api.get("/orders/stale")
    @api.polled
    def stale_orders():
        q = parse_query(StaleQuery)
        return jsonify({"orders": [o.to_dict() for o in services.stale_orders(c.uow, q.grace_seconds, q.limit)]})

    @api.get("/orders/<order_id>")
    def get_order(order_id: str):
        return jsonify(services.get_order(c.uow, order_id).to_dict())

    @api.post("/orders/<order_id>/begin-payment")
    def begin_payment(order_id: str):
        body = parse_body(BeginPaymentBody)
        return jsonify(services.begin_payment(c.uow, order_id, str(body.user_id)).to_dict())

    @api.post("/orders/<order_id>/transition")
    def transition(order_id: str):
        body = parse_body(TransitionBody)
        return jsonify(services.transition_order(c.uow, order_id, body.to, body.reason).to_dict())

    app.register_blueprint(api)
    return app
