"""Events, seat maps, health and the API description."""
import uuid

from trcommon import demo


def test_the_demo_event_is_listed_with_its_hall_and_venue(api):
    r = api.get("/events")
    assert r.status_code == 200
    events = {e["event_id"]: e for e in r.json()["events"]}
    demo_event = events[demo.EVENT_ID]
    assert demo_event["name"] == "Demo Concert"
    assert demo_event["hall_id"] == demo.HALL_A_ID and demo_event["venue_id"] == demo.VENUE_ID


def test_one_event_has_hall_id_and_venue_id(api):
    r = api.get(f"/events/{demo.EVENT_ID}")
    assert r.status_code == 200
    assert r.json()["hall_id"] == demo.HALL_A_ID and r.json()["venue_id"] == demo.VENUE_ID


def test_a_gate_finds_the_demo_arena_and_its_two_halls(api):
    r = api.get("/venues")
    assert r.status_code == 200
    arena = next(v for v in r.json()["venues"] if v["venue_id"] == demo.VENUE_ID)
    assert arena["name"] == "Demo Arena"
    assert arena["halls"] == [{"hall_id": demo.HALL_A_ID, "name": "Hall A"},
                              {"hall_id": demo.HALL_B_ID, "name": "Hall B"}]
    assert api.get("/venues?limit=0").status_code == 400


def test_the_demo_seat_map_has_200_seats_at_50_credits(api):
    r = api.get(f"/events/{demo.EVENT_ID}/seats")
    assert r.status_code == 200
    seats = r.json()["seats"]
    assert len(seats) == 200
    assert {s["price"] for s in seats} == {demo.SEAT_PRICE}
    assert set(seats[0]) == {"seat_id", "section", "row", "number", "price", "status"}
    assert {s["status"] for s in seats} <= {"AVAILABLE", "HELD", "SOLD", "CHECKED_IN"}


def test_a_fresh_event_shows_its_own_seats_all_available(api, fresh_event):
    ev = fresh_event(seats=5, price=70)
    seats = api.get(f"/events/{ev.event_id}/seats").json()["seats"]
    assert sorted(s["seat_id"] for s in seats) == sorted(ev.seat_ids)
    assert {s["status"] for s in seats} == {"AVAILABLE"} and {s["price"] for s in seats} == {70}


def test_unknown_events_are_404_and_ids_that_are_no_uuid_400(api):
    for path in (f"/events/{uuid.uuid4()}", f"/events/{uuid.uuid4()}/seats"):
        r = api.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "EVENT_NOT_FOUND"
    r = api.get("/events/not-a-uuid/seats")
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "event_id"


def test_health_is_200_when_everything_is_up(api):
    r = api.get("/health")
    assert r.status_code == 200
    assert set(r.json()["checks"].values()) == {"up"}


def test_the_openapi_document_describes_every_public_route(api):
    doc = api.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in ("/auth/register", "/auth/login", "/auth/refresh", "/me", "/events", "/events/{event_id}/seats",
                 "/reserve", "/pay", "/health"):
        assert path in doc["paths"], path
    page = api.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert api.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_unknown_routes_are_404_in_the_error_format(api):
    r = api.get("/no/such/route")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NOT_FOUND"
