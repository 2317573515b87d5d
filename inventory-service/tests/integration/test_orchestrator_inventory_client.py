"""The orchestrator's InventoryClient (adapters/inventory.py) against the real server: the organizer methods and
their plain answers, and the seat map cache across a grid creation, a closed sale and a new price."""
import uuid

import pytest
from orchestrator_service.adapters.inventory import InventoryClient
from trcommon.errors import AppError


def _id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def client(grpc_server, settings):
    c = InventoryClient(grpc_server.target, settings.internal_service_token, 10, seat_map_seconds=300)
    yield c
    c.close()


def test_a_new_grid_shows_at_once_in_a_cached_seat_map(client):
    event = _id()
    assert client.list_seats(event) == ()                     # an empty map, now cached for 300 s
    sections = [{"section": "A", "price": 40, "rows": ["1", "2"], "seats_per_row": 5},
                {"section": "B", "price": 60, "rows": ("X",), "seats_per_row": 2}]
    assert client.create_seat_grid(event, sections, on_sale=True) == (12, 12)
    assert client.create_seat_grid(event, sections, on_sale=True) == (0, 12)
    seat_map = client.list_seats(event)
    assert len(seat_map) == 12 and {s.price for s in seat_map} == {40, 60}
    with pytest.raises(AppError) as refused:
        client.create_seat_grid(event, sections[:1], on_sale=True)
    assert (refused.value.status, refused.value.code) == (409, "GRID_EXISTS")


def test_sale_prices_and_reports_through_the_client(client):
    event = _id()
    client.create_seat_grid(event, [{"section": "A", "price": 40, "rows": ["1"], "seats_per_row": 3}], on_sale=False)
    seat_ids = sorted(s.seat_id for s in client.list_seats(event))
    with pytest.raises(AppError) as refused:
        client.reserve(seat_ids[:1], _id(), _id(), 60)
    assert (refused.value.status, refused.value.code) == (409, "EVENT_NOT_ON_SALE")
    assert client.set_event_sale(event, True) == (3, 0)
    user, hold = _id(), _id()
    client.reserve(seat_ids[:1], user, hold, 60)
    client.confirm(seat_ids[:1], user, hold)
    assert client.update_prices(event, 55) == (2, 1)
    assert client.update_prices(event, 70, section="A", seat_ids=seat_ids[1:2]) == (1, 0)
    assert sorted(s.price for s in client.list_seats(event)) == [40, 55, 70]    # the cached map was dropped
    report = client.sales_report(event)
    assert report == {"available": 2, "held": 0, "sold": 1, "checked_in": 0, "total": 3, "face_value_sold": 40,
                      "sections": [{"section": "A", "total": 3, "sold": 1, "checked_in": 0, "price_min": 40,
                                    "price_max": 70, "face_value_sold": 40}]}
    hall = _id()
    client.mark_checked_in(seat_ids[0], hall, _id(), user, 1)
    gate = client.gate_report(event, 300, 10, 0)
    assert gate["by_result"] == {"CHECKED_IN": 1}
    assert gate["by_hall"] == [{"hall_id": hall, "result": "CHECKED_IN", "count": 1}]
    assert [b["count"] for b in gate["check_ins"]] == [1] and gate["total_buckets"] == 1
    assert client.set_event_sale(event, False) == (3, 0)
    with pytest.raises(AppError) as bad:
        client.gate_report(event, 10, 10, 0)
    assert (bad.value.status, bad.value.code) == (400, "INVALID_INPUT")
