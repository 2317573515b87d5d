import uuid
from datetime import datetime, timedelta, timezone

from event_service.adapters.tables import metadata
from trcommon.testing import schema_differences, served_routes
from trcommon.web import flask_rule
from trcontracts import events
from trcontracts.base import HEALTH


def _new_event(container, name="Test Gig", hall_name="Main"):
    venue, hall, event = (str(uuid.uuid4()) for _ in range(3))
    with container.uow() as uow:
        uow.events.add_venue(venue, f"Venue {venue[:6]}")
        uow.events.add_hall(hall, venue, hall_name)
        uow.events.add_event(event, name, venue, hall, datetime.now(timezone.utc) + timedelta(days=3))
        uow.commit()
    return venue, hall, event


def test_migrations_create_exactly_the_declared_tables(database_url):
    assert schema_differences(database_url, metadata) == []


def test_get_event_includes_hall_and_venue(client, container):
    venue, hall, event = _new_event(container, hall_name="Hall Z")
    resp = client.get(f"/events/{event}")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["event_id"] == event
    assert body["hall_id"] == hall and body["venue_id"] == venue
    assert body["hall_name"] == "Hall Z"


def test_list_events_contains_a_new_event(client, container):
    _, _, event = _new_event(container)
    resp = client.get("/events?limit=200")
    assert resp.status_code == 200
    assert event in [e["event_id"] for e in resp.get_json()["events"]]


def test_venues_list_their_halls_by_name_and_page(client, container):
    venue = str(uuid.uuid4())
    halls = {"Hall B": str(uuid.uuid4()), "Hall A": str(uuid.uuid4())}
    with container.uow() as uow:
        uow.events.add_venue(venue, f"Arena {venue}", "1 Main St")
        for name, hall in halls.items():
            uow.events.add_hall(hall, venue, name)
        uow.commit()
    resp = client.get("/venues?limit=200")
    assert resp.status_code == 200
    listed = resp.get_json()["venues"]
    assert {"venue_id": venue, "name": f"Arena {venue}", "address": "1 Main St", "halls": [
        {"hall_id": halls["Hall A"], "name": "Hall A"}, {"hall_id": halls["Hall B"], "name": "Hall B"}]} in listed
    # Pages are slices of one order: page by page gives the same list as one long page.
    paged = [v for offset in range(len(listed))
             for v in client.get(f"/venues?limit=1&offset={offset}").get_json()["venues"]]
    assert [v["venue_id"] for v in paged] == [v["venue_id"] for v in listed]


def test_unknown_or_malformed_event_id_is_404(client):
    for event_id in (str(uuid.uuid4()), "not-a-uuid"):
        resp = client.get(f"/events/{event_id}")
        assert resp.status_code == 404
        assert resp.get_json()["error"]["code"] == "EVENT_NOT_FOUND"


def test_bad_paging_is_400_in_the_error_format(client):
    resp = client.get("/events?limit=abc")
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "INVALID_INPUT"


def test_events_refuse_callers_without_the_internal_credential(settings, container):
    from event_service.entrypoints.app import create_app

    client = create_app(settings, container).test_client()
    resp = client.get("/events")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "INTERNAL_CREDENTIAL_REQUIRED"
    resp = client.get("/events", headers={"X-Internal-Token": "wrong"})
    assert resp.status_code == 401


def test_health_reports_the_database(client):
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.get_json()["checks"]["database"] == "up"


def test_after_the_database_drops_our_connections_requests_recover_without_500s(client, container, database_url):
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    assert client.get("/events").status_code == 200          # the pool now holds a connection
    admin = sa.create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": make_url(database_url).database})
    admin.dispose()
    codes = [client.get("/events").status_code for _ in range(3)]
    assert 500 not in codes
    assert codes[-1] == 200 and codes.count(503) <= 1, codes


def test_the_service_serves_exactly_the_routes_of_its_contract(client):
    assert served_routes(client.application) == {(r.method, flask_rule(r)) for r in (*events.ROUTES, HEALTH)}
