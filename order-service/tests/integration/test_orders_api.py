import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from order_service.adapters.tables import metadata
from order_service.domain.model import OrderStatus, PaymentState, TransferStatus, TransferStep
from trcommon.testing import schema_differences


def iso(dt: datetime) -> str:
    return dt.isoformat()


def in_minutes(minutes: float) -> str:
    return iso(datetime.now(timezone.utc) + timedelta(minutes=minutes))


def order_body(**overrides) -> dict:
    body = {"order_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()), "amount": 50, "held_until": in_minutes(5)}
    body.update(overrides)
    return body


def new_order(client, **overrides) -> dict:
    resp = client.post("/internal/orders", json=order_body(**overrides))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def transition(client, order_id, to, reason=None):
    body = {"to": to} if reason is None else {"to": to, "reason": reason}
    return client.post(f"/internal/orders/{order_id}/transition", json=body)


def begin_payment(client, order_id, user_id):
    return client.post(f"/internal/orders/{order_id}/begin-payment", json={"user_id": user_id})


def error_code(resp) -> str:
    return resp.get_json()["error"]["code"]


def test_migrations_create_exactly_the_declared_tables(database_url):
    assert schema_differences(database_url, metadata) == []


@pytest.mark.parametrize("constraint,states", [
    ("ck_orders_status", OrderStatus),
    ("ck_orders_payment_state", PaymentState),
    ("ck_transfers_status", TransferStatus),
    ("ck_transfers_step", TransferStep),
])
def test_the_database_accepts_exactly_the_states_the_domain_knows(container, constraint, states):
    with container.engine.connect() as conn:
        definition = conn.execute(sa.text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :n"),
                                  {"n": constraint}).scalar_one()
    assert set(re.findall(r"'(\w+)'", definition)) == {s.value for s in states}


def test_create_order_returns_a_pending_order_with_201(client):
    body = order_body(amount=0)
    resp = client.post("/internal/orders", json=body)
    assert resp.status_code == 201
    order = resp.get_json()
    assert {k: order[k] for k in ("order_id", "user_id", "seat_id", "event_id", "amount")} == {
        k: body[k] for k in ("order_id", "user_id", "seat_id", "event_id", "amount")}
    assert order["status"] == "PENDING" and order["payment_state"] == "NONE"
    assert datetime.fromisoformat(order["held_until"]) == datetime.fromisoformat(body["held_until"])
    assert order["held_until"].endswith("+00:00")


def test_creating_the_same_order_again_returns_the_existing_order_with_200(client):
    body = order_body()
    first = client.post("/internal/orders", json=body)
    # The same instant written in another time zone is the same order.
    again = dict(body, held_until=iso(datetime.fromisoformat(body["held_until"])
                                      .astimezone(timezone(timedelta(hours=8)))))
    second = client.post("/internal/orders", json=again)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.get_json() == first.get_json()


@pytest.mark.parametrize("field,value", [
    ("user_id", str(uuid.uuid4())), ("seat_id", str(uuid.uuid4())), ("event_id", str(uuid.uuid4())),
    ("amount", 51), ("held_until", in_minutes(7)),
])
def test_creating_an_existing_order_id_with_other_details_is_409_and_changes_nothing(client, field, value):
    body = order_body()
    original = client.post("/internal/orders", json=body).get_json()
    resp = client.post("/internal/orders", json=dict(body, **{field: value}))
    assert resp.status_code == 409 and error_code(resp) == "ORDER_CONFLICT"
    assert client.get(f"/internal/orders/{body['order_id']}").get_json() == original


def test_get_order_returns_the_order(client):
    order = new_order(client)
    resp = client.get(f"/internal/orders/{order['order_id']}")
    assert resp.status_code == 200 and resp.get_json() == order


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid", "1; DROP TABLE orders"])
def test_unknown_or_malformed_order_ids_are_404(client, order_id):
    for resp in (client.get(f"/internal/orders/{order_id}"),
                 begin_payment(client, order_id, str(uuid.uuid4())),
                 transition(client, order_id, "FAILED")):
        assert resp.status_code == 404 and error_code(resp) == "ORDER_NOT_FOUND"


def test_listing_by_user_shows_only_that_users_orders_newest_first(client):
    alice, bob, seat = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    alices = [new_order(client, user_id=alice, seat_id=seat)["order_id"] for _ in range(3)]
    new_order(client, user_id=bob, seat_id=seat)
    resp = client.get(f"/internal/orders?user_id={alice}")
    assert resp.status_code == 200
    orders = resp.get_json()["orders"]
    assert [o["order_id"] for o in orders] == list(reversed(alices))
    assert {o["user_id"] for o in orders} == {alice}


def test_listing_filters_by_seat_and_status_and_pages(client):
    seat = str(uuid.uuid4())
    first, second, third = (new_order(client, seat_id=seat)["order_id"] for _ in range(3))
    assert transition(client, second, "FAILED").status_code == 200

    def ids(query):
        resp = client.get(f"/internal/orders?{query}")
        assert resp.status_code == 200
        return [o["order_id"] for o in resp.get_json()["orders"]]

    assert ids(f"seat_id={seat}") == [third, second, first]
    assert ids(f"seat_id={seat}&status=PENDING") == [third, first]
    assert ids(f"seat_id={seat}&limit=1&offset=1") == [second]
    assert ids(f"seat_id={seat}&user_id={uuid.uuid4()}") == []


@pytest.mark.parametrize("query", ["", "status=PENDING", f"user_id={uuid.uuid4()}&limit=0",
                                   f"user_id={uuid.uuid4()}&limit=201", f"seat_id={uuid.uuid4()}&offset=-1",
                                   "user_id=not-a-uuid", f"user_id={uuid.uuid4()}&status=SHIPPED"])
def test_listing_with_missing_or_bad_filters_is_400(client, query):
    resp = client.get(f"/internal/orders?{query}")
    assert resp.status_code == 400 and error_code(resp) == "INVALID_INPUT"


def test_begin_payment_marks_a_live_pending_order_charging(client):
    order = new_order(client)
    resp = begin_payment(client, order["order_id"], order["user_id"])
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "PENDING" and resp.get_json()["payment_state"] == "CHARGING"
    again = begin_payment(client, order["order_id"], order["user_id"])
    assert again.status_code == 200 and again.get_json() == resp.get_json()


def test_begin_payment_on_a_lapsed_order_expires_it_and_is_410(client):
    order = new_order(client, held_until=in_minutes(-0.1))
    resp = begin_payment(client, order["order_id"], order["user_id"])
    assert resp.status_code == 410 and error_code(resp) == "HOLD_EXPIRED"
    stored = client.get(f"/internal/orders/{order['order_id']}").get_json()
    assert stored["status"] == "EXPIRED" and stored["payment_state"] == "NONE"
    again = begin_payment(client, order["order_id"], order["user_id"])
    assert again.status_code == 410 and error_code(again) == "HOLD_EXPIRED"


def test_begin_payment_on_a_failed_order_is_410(client):
    order = new_order(client)
    transition(client, order["order_id"], "FAILED")
    resp = begin_payment(client, order["order_id"], order["user_id"])
    assert resp.status_code == 410 and error_code(resp) == "HOLD_EXPIRED"


def test_begin_payment_for_another_users_order_is_404_and_changes_nothing(client):
    order = new_order(client)
    resp = begin_payment(client, order["order_id"], str(uuid.uuid4()))
    assert resp.status_code == 404 and error_code(resp) == "ORDER_NOT_FOUND"
    missing = begin_payment(client, str(uuid.uuid4()), order["user_id"]).get_json()["error"]["message"]
    assert resp.get_json()["error"]["message"] == f"no order {order['order_id']}"
    assert missing.startswith("no order ")
    assert client.get(f"/internal/orders/{order['order_id']}").get_json() == order


def test_begin_payment_on_a_confirmed_order_returns_it_unchanged_even_after_the_hold(client):
    order = new_order(client, held_until=in_minutes(-1))
    confirmed = transition(client, order["order_id"], "CONFIRMED").get_json()
    resp = begin_payment(client, order["order_id"], order["user_id"])
    assert resp.status_code == 200 and resp.get_json() == confirmed
    assert confirmed["status"] == "CONFIRMED" and confirmed["confirmed_at"] is not None


def test_allowed_transitions_move_the_order_and_keep_the_reason(client):
    order = new_order(client)
    begin_payment(client, order["order_id"], order["user_id"])
    confirmed = transition(client, order["order_id"], "CONFIRMED")
    assert confirmed.status_code == 200 and confirmed.get_json()["status"] == "CONFIRMED"
    refunded = transition(client, order["order_id"], "REFUNDED", "event cancelled")
    assert refunded.status_code == 200
    assert refunded.get_json()["status"] == "REFUNDED" and refunded.get_json()["failure_reason"] == "event cancelled"

    failed = new_order(client)
    resp = transition(client, failed["order_id"], "FAILED", "insufficient credits")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "FAILED" and resp.get_json()["failure_reason"] == "insufficient credits"

    lapsed = new_order(client, held_until=in_minutes(-1))
    resp = transition(client, lapsed["order_id"], "EXPIRED")
    assert resp.status_code == 200 and resp.get_json()["status"] == "EXPIRED"


def test_repeating_a_transition_returns_the_order_unchanged(client):
    order = new_order(client)
    first = transition(client, order["order_id"], "CONFIRMED").get_json()
    second = transition(client, order["order_id"], "CONFIRMED")
    assert second.status_code == 200 and second.get_json() == first


@pytest.mark.parametrize("path,to", [
    (["FAILED"], "CONFIRMED"), (["CONFIRMED"], "FAILED"), (["CONFIRMED"], "EXPIRED"), (["CONFIRMED"], "PENDING"),
    (["CONFIRMED", "REFUNDED"], "CONFIRMED"), ([], "REFUNDED"),
])
def test_refused_transitions_are_409_naming_the_current_status(client, path, to):
    order = new_order(client, held_until=in_minutes(-1)) if to == "EXPIRED" else new_order(client)
    for step in path:
        assert transition(client, order["order_id"], step).status_code == 200
    current = path[-1] if path else "PENDING"
    resp = transition(client, order["order_id"], to)
    assert resp.status_code == 409 and error_code(resp) == "INVALID_TRANSITION"
    assert current in resp.get_json()["error"]["message"]
    assert client.get(f"/internal/orders/{order['order_id']}").get_json()["status"] == current


def test_expiring_a_live_order_or_one_being_charged_is_refused(client, container):
    live = new_order(client)
    resp = transition(client, live["order_id"], "EXPIRED")
    assert resp.status_code == 409 and error_code(resp) == "INVALID_TRANSITION"

    charging = new_order(client)
    assert begin_payment(client, charging["order_id"], charging["user_id"]).status_code == 200
    with container.engine.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET held_until = now() - interval '1 minute' WHERE order_id = :id"),
                     {"id": charging["order_id"]})
    resp = transition(client, charging["order_id"], "EXPIRED")
    assert resp.status_code == 409 and error_code(resp) == "INVALID_TRANSITION"
    assert client.get(f"/internal/orders/{charging['order_id']}").get_json()["status"] == "PENDING"


def test_a_second_confirmed_order_for_the_same_seat_is_409_not_500(client):
    seat = str(uuid.uuid4())
    first, second = new_order(client, seat_id=seat), new_order(client, seat_id=seat)
    assert transition(client, first["order_id"], "CONFIRMED").status_code == 200
    resp = transition(client, second["order_id"], "CONFIRMED")
    assert resp.status_code == 409 and error_code(resp) == "SEAT_ALREADY_CONFIRMED"
    assert client.get(f"/internal/orders/{second['order_id']}").get_json()["status"] == "PENDING"
    # Once the first is refunded, the seat may be sold again.
    assert transition(client, first["order_id"], "REFUNDED").status_code == 200
    assert transition(client, second["order_id"], "CONFIRMED").status_code == 200


def test_stale_query_returns_exactly_the_stale_pending_orders(client, container):
    def backdate(order_id, minutes):
        with container.engine.begin() as conn:
            conn.execute(sa.text("UPDATE orders SET updated_at = now() - make_interval(mins => :m) "
                                 "WHERE order_id = :id"), {"m": minutes, "id": order_id})

    def lapse(order_id, minutes):
        with container.engine.begin() as conn:
            conn.execute(sa.text("UPDATE orders SET held_until = now() - make_interval(secs => :s) "
                                 "WHERE order_id = :id"), {"s": minutes * 60, "id": order_id})

    lapsed_long_ago = new_order(client, held_until=in_minutes(-10))["order_id"]
    lapsed_within_grace = new_order(client, held_until=in_minutes(-0.5))["order_id"]
    charging_lapsed_within_grace = new_order(client)
    begin_payment(client, charging_lapsed_within_grace["order_id"], charging_lapsed_within_grace["user_id"])
    lapse(charging_lapsed_within_grace["order_id"], 0.5)
    live = new_order(client)["order_id"]
    stuck_charging = new_order(client)
    begin_payment(client, stuck_charging["order_id"], stuck_charging["user_id"])
    backdate(stuck_charging["order_id"], 10)
    fresh_charging = new_order(client)
    begin_payment(client, fresh_charging["order_id"], fresh_charging["user_id"])
    confirmed_long_ago = new_order(client, held_until=in_minutes(-10))["order_id"]
    transition(client, confirmed_long_ago, "CONFIRMED")
    expired_long_ago = new_order(client, held_until=in_minutes(-10))["order_id"]
    transition(client, expired_long_ago, "EXPIRED")
    mine = {lapsed_long_ago, lapsed_within_grace, live, stuck_charging["order_id"], fresh_charging["order_id"],
            confirmed_long_ago, expired_long_ago, charging_lapsed_within_grace["order_id"]}

    resp = client.get("/internal/orders/stale?grace_seconds=120&limit=1000")
    assert resp.status_code == 200
    found = [o for o in resp.get_json()["orders"] if o["order_id"] in mine]
    # Unpaid holds are stale as soon as they lapse; a charge under way is left alone for the grace period.
    assert {o["order_id"] for o in found} == {lapsed_long_ago, lapsed_within_grace, stuck_charging["order_id"]}
    assert all(o["status"] in ("PENDING", "REFUNDING") for o in resp.get_json()["orders"])
    assert len(client.get("/internal/orders/stale?grace_seconds=0&limit=1").get_json()["orders"]) == 1


@pytest.mark.parametrize("query", ["grace_seconds=-1", "grace_seconds=abc", "limit=0", "limit=1001"])
def test_stale_query_with_bad_parameters_is_400(client, query):
    resp = client.get(f"/internal/orders/stale?{query}")
    assert resp.status_code == 400 and error_code(resp) == "INVALID_INPUT"


def test_every_route_refuses_callers_without_the_internal_credential(app):
    order_id = str(uuid.uuid4())
    calls = [("post", "/internal/orders", order_body()), ("get", f"/internal/orders/{order_id}", None),
             ("get", f"/internal/orders?user_id={order_id}", None), ("get", "/internal/orders/stale", None),
             ("post", f"/internal/orders/{order_id}/begin-payment", {"user_id": order_id}),
             ("post", f"/internal/orders/{order_id}/transition", {"to": "FAILED"})]
    client = app.test_client()
    for headers in ({}, {"X-Internal-Token": "wrong"}):
        for method, path, body in calls:
            resp = getattr(client, method)(path, json=body, headers=headers)
            assert resp.status_code == 401, (method, path)
            assert error_code(resp) == "INTERNAL_CREDENTIAL_REQUIRED"


@pytest.mark.parametrize("change", [
    {"order_id": "not-a-uuid"}, {"user_id": 42}, {"seat_id": "A-1-1"}, {"event_id": ""},
    {"amount": -1}, {"amount": 50.5}, {"amount": "50"}, {"amount": True}, {"amount": 2**63},
    {"held_until": "2030-01-02T20:00:00"}, {"held_until": 1893614400}, {"held_until": "tomorrow"},
])
def test_malformed_create_bodies_are_400_in_the_error_format(client, change):
    resp = client.post("/internal/orders", json=order_body(**change))
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "INVALID_INPUT" and error["message"]
    assert error["details"][0]["field"] == next(iter(change))


def test_a_party_order_keeps_every_seat_and_is_found_by_any_of_them(client):
    seats = sorted(str(uuid.uuid4()) for _ in range(4))
    created = new_order(client, seat_id=None, seat_ids=[seats[2], seats[0], seats[3], seats[1]], amount=200)
    assert (created["seat_id"], created["seat_ids"], created["amount"]) == (seats[0], seats, 200)
    for seat in seats:
        found = client.get(f"/internal/orders?seat_id={seat}").get_json()["orders"]
        assert [o["order_id"] for o in found] == [created["order_id"]]
    again = client.post("/internal/orders", json=order_body(**{k: created[k] for k in (
        "order_id", "user_id", "event_id", "amount", "held_until")}, seat_id=None, seat_ids=seats))
    assert again.status_code == 200                                    # the same order again: a retry
    other = client.post("/internal/orders", json=order_body(**{k: created[k] for k in (
        "order_id", "user_id", "event_id", "amount", "held_until")}, seat_id=None, seat_ids=seats[:3]))
    assert (other.status_code, error_code(other)) == (409, "ORDER_CONFLICT")


@pytest.mark.parametrize("seats", [
    {"seat_id": None},                                                  # no seat at all
    {"seat_id": None, "seat_ids": []},
    {"seat_id": None, "seat_ids": ["7eff1b59-bb1a-5e39-9907-da92a3edd548"] * 2},   # a seat twice
    {"seat_id": None, "seat_ids": [str(uuid.uuid4()) for _ in range(9)]},         # more than 8
    {"seat_id": "ffffffff-ffff-4fff-bfff-ffffffffffff",                 # seat_id not the first of seat_ids
     "seat_ids": ["00000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff"]},
])
def test_an_order_needs_one_to_eight_distinct_seats_and_nothing_is_written_otherwise(client, seats):
    body = order_body(**seats)
    resp = client.post("/internal/orders", json=body)
    assert (resp.status_code, error_code(resp)) == (400, "INVALID_INPUT")
    assert client.get(f"/internal/orders/{body['order_id']}").status_code == 404


def test_bodies_that_are_not_json_objects_or_lack_fields_are_400(client):
    order = new_order(client)
    for path, kwargs in [("/internal/orders", {"data": "nope", "content_type": "text/plain"}),
                         ("/internal/orders", {"json": [order_body()]}),
                         ("/internal/orders", {"json": {"order_id": str(uuid.uuid4())}}),
                         (f"/internal/orders/{order['order_id']}/begin-payment", {"json": {}}),
                         (f"/internal/orders/{order['order_id']}/begin-payment", {"json": {"user_id": "x"}}),
                         (f"/internal/orders/{order['order_id']}/transition", {"json": {"to": "SHIPPED"}}),
                         (f"/internal/orders/{order['order_id']}/transition",
                          {"json": {"to": "FAILED", "reason": "x" * 501}})]:
        resp = client.post(path, **kwargs)
        assert resp.status_code == 400, (path, kwargs)
        assert error_code(resp) == "INVALID_INPUT"
    assert client.get(f"/internal/orders/{order['order_id']}").get_json() == order


def test_health_reports_the_database_without_the_internal_credential(app):
    resp = app.test_client().get("/health")
    assert resp.status_code == 200
    assert resp.get_json()["checks"]["database"] == "up"


def begin_refund(client, order_id):
    return client.post(f"/internal/orders/{order_id}/begin-refund")


def test_a_refund_begins_once_on_a_confirmed_order_and_a_quiet_one_is_stale(client, container):
    order = new_order(client)["order_id"]
    assert error_code(begin_refund(client, order)) == "INVALID_TRANSITION"          # PENDING
    transition(client, order, "CONFIRMED")
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: begin_refund(client, order), range(10)))
    assert {(a.status_code, a.get_json()["status"]) for a in answers} == {(200, "REFUNDING")}
    assert begin_refund(client, str(uuid.uuid4())).status_code == 404

    def stale_ids():
        return {o["order_id"] for o in client.get("/internal/orders/stale?grace_seconds=60&limit=1000")
                .get_json()["orders"]}

    assert order not in stale_ids()                         # a refund under way is not overtaken
    with container.engine.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET updated_at = now() - interval '5 minutes' WHERE order_id = :o"),
                     {"o": order})
    assert order in stale_ids()
    refused = transition(client, order, "CONFIRMED")
    assert refused.status_code == 200 and refused.get_json()["status"] == "CONFIRMED"
    begin_refund(client, order)
    done = transition(client, order, "REFUNDED")
    assert done.status_code == 200 and done.get_json()["status"] == "REFUNDED"
    assert begin_refund(client, order).get_json()["status"] == "REFUNDED"              # returned unchanged
    assert order not in stale_ids()
