"""HTTP entrypoint: serves the routes of trcontracts.events, translating them to service-layer calls."""
from __future__ import annotations

from flask import Flask

from trcommon.web import database_service_app, internal_blueprint, serve
from trcontracts import events

from ..bootstrap import Container, bootstrap
from ..service_layer import services
from ..settings import EventSettings


def create_app(settings: EventSettings | None = None, container: Container | None = None) -> Flask:
    app, settings, c = database_service_app(EventSettings, bootstrap, settings, container)

    api = internal_blueprint("events", __name__, settings)

    @serve(api, events.LIST_EVENTS)
    def list_events(query: events.Page):
        found = services.list_events(c.uow, query.limit, query.offset)
        return events.EventList(events=[events.Event.model_validate(e, from_attributes=True) for e in found])

    @serve(api, events.GET_EVENT)
    def get_event(event_id: str):
        return events.Event.model_validate(services.get_event(c.uow, event_id), from_attributes=True)

    @serve(api, events.LIST_VENUES)
    def list_venues(query: events.Page):
        found = services.list_venues(c.uow, query.limit, query.offset)
        return events.VenueList(venues=[events.Venue.model_validate(v, from_attributes=True) for v in found])

    app.register_blueprint(api)
    return app
