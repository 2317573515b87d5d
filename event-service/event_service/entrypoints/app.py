"""HTTP entrypoint: translates requests to service-layer calls and results to JSON."""
from __future__ import annotations

from flask import Flask, jsonify
from pydantic import BaseModel, Field

from trcommon.web import database_service_app, internal_blueprint, parse_query

from ..bootstrap import Container, bootstrap
from ..service_layer import services
from ..settings import EventSettings


class Page(BaseModel):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


def create_app(settings: EventSettings | None = None, container: Container | None = None) -> Flask:
    app, settings, c = database_service_app(EventSettings, bootstrap, settings, container)

    api = internal_blueprint("events", __name__, settings)

    @api.get("/events")
    def list_events():
        page = parse_query(Page)
        return jsonify({"events": [e.to_dict() for e in services.list_events(c.uow, page.limit, page.offset)]})

    @api.get("/events/<event_id>")
    def get_event(event_id: str):
        return jsonify(services.get_event(c.uow, event_id).to_dict())

    app.register_blueprint(api)
    return app
