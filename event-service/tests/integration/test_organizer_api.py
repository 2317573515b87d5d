"""The organizer's routes of event-service against real PostgreSQL: venues, halls, events and an event's life
(publish, cancel, its progress and end), with every refusal."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from event_service.adapters.tables import events as events_table
from trcommon.testing import run_together


def _id() -> str:
    return str(uuid.uuid4())


def _future(days=10) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0).isoformat()


def _code(resp) -> str:
    return resp.get_json()["error"]["code"]


@pytest.fixture
def hall(client):
    """A fresh venue with one hall: (venue_id, hall_id)."""
    venue, hall_id = _id(), _id()
    assert client.post("/internal/venues", json={"venue_id": venue, "name": f"V {venue}"}).status_code == 201
    assert client.post(f"/internal/venues/{venue}/halls", json={"hall_id": hall_id, "name": "Main"}).status_code == 201
    return venue, hall_id


@pytest.fixture
def new_event(client, hall):
    def make(**overrides) -> dict:
        body = {"event_id": _id(), "name": "Gig", "hall_id": hall[1], "starts_at": _future(), **overrides}
        resp = client.post("/internal/events", json=body)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    return make


# --- venues and halls ---------------------------------------------------------------------------------------------

def test_a_venue_is_created_once_and_the_same_create_again_is_200(client):
    venue = _id()
    body = {"venue_id": venue, "name": "Arena", "address": "1 Main St"}
    first = client.post("/internal/venues", json=body)
    assert first.status_code == 201
    assert first.get_json() == {"venue_id": venue, "name": "Arena", "address": "1 Main St", "halls": []}
    again = client.post("/internal/venues", json=body)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert client.get(f"/internal/venues/{venue}").get_json() == first.get_json()
    assert client.post("/internal/venues", json={"venue_id": venue, "name": "Arena"}).get_json()["error"][
        "code"] == "VENUE_CONFLICT"      # the address defaults to "": other details
    conflict = client.post("/internal/venues", json={**body, "name": "Other"})
    assert conflict.status_code == 409 and _code(conflict) == "VENUE_CONFLICT"
    assert client.get(f"/internal/venues/{venue}").get_json()["name"] == "Arena"


@pytest.mark.parametrize("body", [
    {"name": "x"}, {"venue_id": "nope", "name": "x"}, {"venue_id": str(uuid.uuid4())},
    {"venue_id": str(uuid.uuid4()), "name": ""}, {"venue_id": str(uuid.uuid4()), "name": "x" * 201},
    {"venue_id": str(uuid.uuid4()), "name": " padded"}, {"venue_id": str(uuid.uuid4()), "name": "bell\x07"},
    {"venue_id": str(uuid.uuid4()), "name": "x", "address": "a" * 501},
    {"venue_id": str(uuid.uuid4()), "name": 5},
])
def test_a_malformed_venue_is_400_and_creates_nothing(client, body):
    resp = client.post("/internal/venues", json=body)
    assert resp.status_code == 400 and _code(resp) == "INVALID_INPUT"
    if "venue_id" in body and len(body["venue_id"]) == 36:
        assert client.get(f"/internal/venues/{body['venue_id']}").status_code == 404


def test_an_unknown_or_malformed_venue_is_404(client):
    for venue in (_id(), "nope"):
        resp = client.get(f"/internal/venues/{venue}")
        assert resp.status_code == 404 and _code(resp) == "VENUE_NOT_FOUND"


def test_halls_are_created_once_per_id_with_names_unique_within_a_venue(client, hall):
    venue, main = hall
    other = _id()
    second = client.post(f"/internal/venues/{venue}/halls", json={"hall_id": other, "name": "Annex"})
    assert second.status_code == 201 and second.get_json() == {"hall_id": other, "name": "Annex", "venue_id": venue}
    again = client.post(f"/internal/venues/{venue}/halls", json={"hall_id": other, "name": "Annex"})
    assert again.status_code == 200 and again.get_json() == second.get_json()
    taken = client.post(f"/internal/venues/{venue}/halls", json={"hall_id": _id(), "name": "Main"})
    assert taken.status_code == 409 and _code(taken) == "HALL_NAME_TAKEN"
    renamed = client.post(f"/internal/venues/{venue}/halls", json={"hall_id": other, "name": "Annex 2"})
    assert renamed.status_code == 409 and _code(renamed) == "HALL_CONFLICT"
    elsewhere = _id()
    client.post("/internal/venues", json={"venue_id": elsewhere, "name": "Elsewhere"})
    moved = client.post(f"/internal/venues/{elsewhere}/halls", json={"hall_id": other, "name": "Annex"})
    assert moved.status_code == 409 and _code(moved) == "HALL_CONFLICT"
    # Another venue may have a hall of the same name.
    assert client.post(f"/internal/venues/{elsewhere}/halls", json={"hall_id": _id(), "name": "Main"}).status_code == 201
    halls = client.get(f"/internal/venues/{venue}").get_json()["halls"]
    assert halls == [{"hall_id": other, "name": "Annex"}, {"hall_id": main, "name": "Main"}]


def test_a_hall_of_an_unknown_venue_is_404_and_a_malformed_one_400(client):
    for venue in (_id(), "nope"):
        resp = client.post(f"/internal/venues/{venue}/halls", json={"hall_id": _id(), "name": "Main"})
        assert resp.status_code == 404 and _code(resp) == "VENUE_NOT_FOUND"
    venue = _id()
    client.post("/internal/venues", json={"venue_id": venue, "name": "V"})
    for body in ({"hall_id": "x", "name": "Main"}, {"hall_id": _id(), "name": ""}, {"name": "Main"},
                 {"hall_id": _id(), "name": "x" * 201}):
        resp = client.post(f"/internal/venues/{venue}/halls", json=body)
        assert resp.status_code == 400 and _code(resp) == "INVALID_INPUT", body
    assert client.get(f"/internal/venues/{venue}").get_json()["halls"] == []


def test_two_concurrent_halls_of_one_name_make_one_hall(client, settings, container):
    from event_service.entrypoints.app import create_app
    from trcommon.testing import internal_client

    venue = _id()
    client.post("/internal/venues", json={"venue_id": venue, "name": "V"})
    clients = [internal_client(create_app(settings, container), settings) for _ in range(4)]
    results = run_together([lambda c=c: c.post(f"/internal/venues/{venue}/halls",
                                                json={"hall_id": _id(), "name": "Same"}) for c in clients])
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
    assert {_code(r) for r in results if r.status_code == 409} == {"HALL_NAME_TAKEN"}


# --- events -------------------------------------------------------------------------------------------------------

def test_an_event_starts_as_a_draft_at_its_halls_venue_and_a_repeat_is_200(client, hall):
    venue, hall_id = hall
    body = {"event_id": _id(), "name": "Gig", "hall_id": hall_id, "starts_at": _future(), "description": "Loud"}
    first = client.post("/internal/events", json=body)
    assert first.status_code == 201
    event = first.get_json()
    assert (event["status"], event["venue_id"], event["hall_name"], event["cancel_step"], event["cancel_reason"]) == (
        "DRAFT", venue, "Main", 0, None)
    assert event["starts_at"] == body["starts_at"] and event["description"] == "Loud"
    again = client.post("/internal/events", json=body)
    assert again.status_code == 200 and again.get_json() == event
    for other in ({"name": "Other"}, {"description": ""}, {"starts_at": _future(11)}):
        resp = client.post("/internal/events", json={**body, **other})
        assert resp.status_code == 409 and _code(resp) == "EVENT_CONFLICT", other
    assert client.get(f"/events/{body['event_id']}").get_json() == event


def test_an_event_in_an_unknown_hall_is_404(client):
    resp = client.post("/internal/events", json={"event_id": _id(), "name": "Gig", "hall_id": _id(),
                                                 "starts_at": _future()})
    assert resp.status_code == 404 and _code(resp) == "HALL_NOT_FOUND"


@pytest.mark.parametrize("change", [
    {"starts_at": (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()},
    {"starts_at": "2030-01-02T20:00:00"}, {"starts_at": 1893600000}, {"starts_at": "tomorrow"},
    {"name": ""}, {"name": "x" * 201}, {"description": "d" * 2001}, {"event_id": "nope"}, {"hall_id": "nope"},
])
def test_a_malformed_event_is_400_and_creates_nothing(client, hall, change):
    body = {"event_id": _id(), "name": "Gig", "hall_id": hall[1], "starts_at": _future(), **change}
    resp = client.post("/internal/events", json=body)
    assert resp.status_code == 400 and _code(resp) == "INVALID_INPUT"
    if "event_id" not in change:
        assert client.get(f"/events/{body['event_id']}").status_code == 404


def test_publishing_puts_a_draft_on_sale_once(client, new_event):
    event = new_event()
    published = client.post(f"/internal/events/{event['event_id']}/publish")
    assert published.status_code == 200 and published.get_json()["status"] == "ON_SALE"
    again = client.post(f"/internal/events/{event['event_id']}/publish")
    assert again.status_code == 200 and again.get_json() == published.get_json()
    for missing in (_id(), "nope"):
        resp = client.post(f"/internal/events/{missing}/publish")
        assert resp.status_code == 404 and _code(resp) == "EVENT_NOT_FOUND"


def test_an_event_is_cancelled_through_cancelling_with_its_progress(client, new_event):
    event_id = new_event()["event_id"]
    client.post(f"/internal/events/{event_id}/publish")
    url = f"/internal/events/{event_id}"
    begun = client.post(f"{url}/cancel", json={"reason": "Storm"})
    assert begun.status_code == 200
    assert (begun.get_json()["status"], begun.get_json()["cancel_reason"], begun.get_json()["cancel_step"]) == (
        "CANCELLING", "Storm", 0)
    again = client.post(f"{url}/cancel", json={"reason": "Another reason"})
    assert again.get_json() == begun.get_json()        # the first reason kept
    assert client.post(f"{url}/cancel-progress", json={"done": 3}).get_json()["cancel_step"] == 3
    assert client.post(f"{url}/cancel-progress", json={"done": 2}).get_json()["cancel_step"] == 3
    assert client.post(f"{url}/cancel-progress", json={"done": 3}).get_json()["cancel_step"] == 3
    refused = client.post(f"{url}/publish")
    assert refused.status_code == 409 and _code(refused) == "EVENT_CANCELLED"
    finished = client.post(f"{url}/cancel-finish")
    assert finished.status_code == 200
    assert (finished.get_json()["status"], finished.get_json()["cancel_step"]) == ("CANCELLED", 3)
    assert client.post(f"{url}/cancel-finish").get_json() == finished.get_json()
    assert client.post(f"{url}/cancel", json={"reason": "x"}).get_json() == finished.get_json()
    late = client.post(f"{url}/cancel-progress", json={"done": 4})
    assert late.status_code == 409 and _code(late) == "INVALID_TRANSITION"
    refused = client.post(f"{url}/publish")
    assert refused.status_code == 409 and _code(refused) == "EVENT_CANCELLED"


def test_a_draft_can_be_cancelled_but_not_finished_or_progressed_before(client, new_event):
    event_id = new_event()["event_id"]
    url = f"/internal/events/{event_id}"
    for path, body in (("cancel-progress", {"done": 1}), ("cancel-finish", None)):
        resp = client.post(f"{url}/{path}", json=body) if body else client.post(f"{url}/{path}")
        assert resp.status_code == 409 and _code(resp) == "INVALID_TRANSITION", path
    assert client.post(f"{url}/cancel", json={"reason": "No sales"}).get_json()["status"] == "CANCELLING"


@pytest.mark.parametrize("path, body", [
    ("cancel", {}), ("cancel", {"reason": ""}), ("cancel", {"reason": "r" * 501}), ("cancel", {"reason": 3}),
    ("cancel-progress", {}), ("cancel-progress", {"done": -1}), ("cancel-progress", {"done": "3"}),
    ("cancel-progress", {"done": 1.5}), ("cancel-progress", {"done": 2**31}),
])
def test_malformed_cancel_bodies_are_400_and_change_nothing(client, new_event, path, body):
    event = new_event()
    resp = client.post(f"/internal/events/{event['event_id']}/{path}", json=body)
    assert resp.status_code == 400 and _code(resp) == "INVALID_INPUT"
    assert client.get(f"/events/{event['event_id']}").get_json() == event


def test_cancelling_an_unknown_event_is_404(client):
    for path, body in (("cancel", {"reason": "x"}), ("cancel-progress", {"done": 1}), ("cancel-finish", None)):
        resp = client.post(f"/internal/events/{_id()}/{path}", json=body) if body else \
            client.post(f"/internal/events/{_id()}/{path}")
        assert resp.status_code == 404 and _code(resp) == "EVENT_NOT_FOUND"


def test_stale_cancellations_are_cancelling_events_not_updated_for_the_grace(client, container, new_event):
    stale, fresh, finished = (new_event()["event_id"] for _ in range(3))
    for event_id in (stale, fresh, finished):
        client.post(f"/internal/events/{event_id}/cancel", json={"reason": "x"})
    client.post(f"/internal/events/{finished}/cancel-finish")
    with container.engine.begin() as conn:
        conn.execute(events_table.update().where(events_table.c.event_id.in_([stale, finished]))
                     .values(updated_at=sa.func.now() - sa.text("interval '10 minutes'")))
    listed = [e["event_id"] for e in client.get(
        "/internal/events/stale-cancellations?grace_seconds=300&limit=1000").get_json()["events"]]
    assert stale in listed and fresh not in listed and finished not in listed
    every = [e["event_id"] for e in client.get(
        "/internal/events/stale-cancellations?limit=1000").get_json()["events"]]
    assert {stale, fresh} <= set(every) and finished not in every
    # A progress report moves updated_at: the event is no longer stale.
    client.post(f"/internal/events/{stale}/cancel-progress", json={"done": 1})
    listed = [e["event_id"] for e in client.get(
        "/internal/events/stale-cancellations?grace_seconds=300&limit=1000").get_json()["events"]]
    assert stale not in listed
    for query in ("grace_seconds=-1", "limit=0", "limit=1001", "grace_seconds=x"):
        assert client.get(f"/internal/events/stale-cancellations?{query}").status_code == 400, query


def test_events_are_listed_by_status_with_a_comma_list(client, new_event):
    draft, on_sale, cancelling = (new_event(starts_at=_future(400))["event_id"] for _ in range(3))
    client.post(f"/internal/events/{on_sale}/publish")
    client.post(f"/internal/events/{cancelling}/cancel", json={"reason": "x"})

    def listed(query=""):
        ids, offset = [], 0
        while True:
            page = client.get(f"/events?limit=200&offset={offset}{query}").get_json()["events"]
            ids += [e["event_id"] for e in page]
            if len(page) < 200:
                return ids
            offset += 200

    everything = listed()
    assert {draft, on_sale, cancelling} <= set(everything)
    assert set(listed("&status=ON_SALE")) & {draft, on_sale, cancelling} == {on_sale}
    assert set(listed("&status=DRAFT,CANCELLING")) & {draft, on_sale, cancelling} == {draft, cancelling}
    bad = client.get("/events?status=OPEN")
    assert bad.status_code == 400 and _code(bad) == "INVALID_INPUT"


def test_the_new_routes_refuse_callers_without_the_internal_credential(settings, container):
    from event_service.entrypoints.app import create_app

    raw = create_app(settings, container).test_client()
    venue = _id()
    for resp in (raw.post("/internal/venues", json={"venue_id": venue, "name": "x"}),
                 raw.get(f"/internal/venues/{venue}"),
                 raw.post(f"/internal/events/{_id()}/cancel", json={"reason": "x"}),
                 raw.get("/internal/events/stale-cancellations")):
        assert resp.status_code == 401 and _code(resp) == "INTERNAL_CREDENTIAL_REQUIRED"
