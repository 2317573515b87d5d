"""HTTP entrypoint: serves the routes of trcontracts.events, translating them to service-layer calls."""
from __future__ import annotations

from flask import Flask

from trcommon.web import database_service_app, internal_blueprint, serve
from trcontracts import events

from ..bootstrap import Container, bootstrap
from ..service_layer import services
from ..settings import EventSettings


def _event(event) -> events.Event:
    return events.Event.model_validate(event, from_attributes=True)


def _events(found) -> events.EventList:
    return events.EventList(events=[_event(e) for e in found])


def _venue(venue) -> events.Venue:
    return events.Venue.model_validate(venue, from_attributes=True)


def _created(route, model, created: bool):
    return model, (route.status if created else 200)


def create_app(settings: EventSettings | None = None, container: Container | None = None) -> Flask:
    app, settings, c = database_service_app(EventSettings, bootstrap, settings, container)

    api = internal_blueprint("events", __name__, settings)

    @serve(api, events.LIST_EVENTS)
    def list_events(query: events.EventQuery):
        return _events(services.list_events(c.uow, query.limit, query.offset, query.status))

    @serve(api, events.GET_EVENT)
    def get_event(event_id: str):
        return _event(services.get_event(c.uow, event_id))

    @serve(api, events.LIST_VENUES)
    def list_venues(query: events.Page):
        found = services.list_venues(c.uow, query.limit, query.offset)
        return events.VenueList(venues=[_venue(v) for v in found])

    @serve(api, events.CREATE_VENUE)
    def create_venue(body: events.CreateVenueBody):
        venue, created = services.create_venue(c.uow, str(body.venue_id), body.name, body.address)
        return _created(events.CREATE_VENUE, _venue(venue), created)

    @serve(api, events.GET_VENUE)
    def get_venue(venue_id: str):
        return _venue(services.get_venue(c.uow, venue_id))

    @serve(api, events.CREATE_HALL)
    def create_hall(venue_id: str, body: events.CreateHallBody):
        hall, created = services.create_hall(c.uow, venue_id, str(body.hall_id), body.name)
        return _created(events.CREATE_HALL, events.Hall.model_validate(hall, from_attributes=True), created)

    @serve(api, events.CREATE_EVENT)
    def create_event(body: events.CreateEventBody):
        event, created = services.create_event(c.uow, str(body.event_id), body.name, str(body.hall_id),
                                               body.starts_at, body.description)
        return _created(events.CREATE_EVENT, _event(event), created)

    @serve(api, events.PUBLISH_EVENT)
    def publish_event(event_id: str):
        return _event(services.publish(c.uow, event_id))

    @serve(api, events.BEGIN_CANCEL)
    def begin_cancel(event_id: str, body: events.BeginCancelBody):
        return _event(services.begin_cancel(c.uow, event_id, body.reason))

    @serve(api, events.CANCEL_PROGRESS)
    def cancel_progress(event_id: str, body: events.CancelProgressBody):
        return _event(services.cancel_progress(c.uow, event_id, body.done))

    @serve(api, events.FINISH_CANCEL)
    def finish_cancel(event_id: str):
        return _event(services.finish_cancel(c.uow, event_id))

    @serve(api, events.STALE_CANCELLATIONS)
    @api.polled
    def stale_cancellations(query: events.StaleCancellationsQuery):
        return _events(services.stale_cancellations(c.uow, query.grace_seconds, query.limit))

    app.register_blueprint(api)
    return app
