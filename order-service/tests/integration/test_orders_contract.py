"""order-service through its contract: the typed client (trcommon's ServiceClient) against the real app over HTTP."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from trcommon.errors import AppError
from trcommon.http_client import ServiceClient
from trcommon.testing import served_over_http, served_routes
from trcommon.web import flask_rule
from trcontracts import orders
from trcontracts.base import HEALTH
from trcontracts.orders import OrderStatus, PaymentState


@pytest.fixture
def orders_client(app, settings):
    with served_over_http(app) as url:
        client = ServiceClient("order-service", url, settings.internal_service_token, timeout=5)
        yield client
        client.close()


def test_the_service_serves_exactly_the_routes_of_its_contract(app):
    assert served_routes(app) == {(r.method, flask_rule(r)) for r in (*orders.ROUTES, HEALTH)}


def test_a_typed_client_drives_an_order_from_pending_to_confirmed(orders_client):
    held_until = datetime.now(timezone.utc) + timedelta(minutes=5)
    body = {"order_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()), "amount": 50, "held_until": held_until.isoformat()}
    created = orders_client.call(orders.CREATE_ORDER, body)
    assert (created.status, created.payment_state, created.held_until) == (OrderStatus.PENDING, PaymentState.NONE,
                                                                          held_until)
    assert orders_client.call(orders.CREATE_ORDER, body) == created           # a keyed retry: the same order
    path = {"order_id": created.order_id}
    charging = orders_client.call(orders.BEGIN_PAYMENT, {"user_id": created.user_id}, path=path)
    assert charging.payment_state is PaymentState.CHARGING
    confirmed = orders_client.call(orders.TRANSITION, {"to": OrderStatus.CONFIRMED}, path=path)
    assert confirmed.status is OrderStatus.CONFIRMED and confirmed.confirmed_at is not None
    assert orders_client.call(orders.GET_ORDER, path=path) == confirmed
    listed = orders_client.call(orders.LIST_ORDERS, query={"seat_id": created.seat_id, "status": "CONFIRMED"})
    assert listed.orders == [confirmed]


def test_the_services_error_codes_reach_the_client(orders_client):
    with pytest.raises(AppError) as err:
        orders_client.call(orders.GET_ORDER, path={"order_id": str(uuid.uuid4())})
    assert (err.value.status, err.value.code) == (404, orders.OrderError.ORDER_NOT_FOUND)


# A value equal to a sibling route's literal segment (`stale`) is that route: the edge checks that ids are UUIDs.
@pytest.mark.parametrize("order_id", ["x/../y?z=1", "..", "x/transition", "?status=PENDING", "50%2F", "é/ü"])
def test_an_id_with_path_syntax_reaches_its_route_as_one_segment(orders_client, order_id):
    for call in (lambda: orders_client.call(orders.GET_ORDER, path={"order_id": order_id}),
                 lambda: orders_client.call(orders.TRANSITION, {"to": "FAILED"}, path={"order_id": order_id})):
        with pytest.raises(AppError) as err:
            call()
        # The order route itself answered, naming the id it was given.
        assert (err.value.code, err.value.message) == (orders.OrderError.ORDER_NOT_FOUND, f"no order {order_id}")
