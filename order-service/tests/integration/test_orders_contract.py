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
from trcontracts.orders import OrderStatus, PaymentState, TransferStatus, TransferStep


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


def test_a_typed_client_drives_a_transfer_from_offer_to_released_proceeds(orders_client):
    expires_at = datetime.now(timezone.utc) + timedelta(minutes=15)
    body = {"transfer_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()),
            "seller_user_id": str(uuid.uuid4()), "buyer_user_id": str(uuid.uuid4()), "amount": 0, "face_value": 100,
            "expires_at": expires_at.isoformat()}
    offered = orders_client.call(orders.CREATE_TRANSFER, body)
    assert (offered.status, offered.step, offered.expires_at) == (TransferStatus.PENDING_OTP, TransferStep.INITIATED,
                                                                  expires_at)
    assert orders_client.call(orders.CREATE_TRANSFER, body) == offered        # a keyed retry: the same transfer
    path = {"transfer_id": offered.transfer_id}
    confirming = orders_client.call(orders.BEGIN_CONFIRM, {"user_id": offered.buyer_user_id}, path=path)
    assert confirming.step is TransferStep.CONFIRMING
    release_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    done = orders_client.call(orders.TRANSFER_TRANSITION,
                              {"to": TransferStatus.COMPLETED, "release_at": release_at.isoformat()}, path=path)
    assert (done.status, done.release_at) == (TransferStatus.COMPLETED, release_at) and done.completed_at
    assert offered.transfer_id in {t.transfer_id for t in orders_client.call(orders.STALE_TRANSFERS).transfers}
    released = orders_client.call(orders.MARK_RELEASED, path=path)
    assert released.released_at is not None
    assert orders_client.call(orders.GET_TRANSFER, path=path) == released
    listed = orders_client.call(orders.LIST_TRANSFERS, query={"user_id": offered.seller_user_id})
    assert listed.transfers == [released]
    with pytest.raises(AppError) as err:
        orders_client.call(orders.BEGIN_REVERSE, path=path)
    assert (err.value.status, err.value.code) == (409, orders.OrderError.INVALID_TRANSITION)


def test_the_services_error_codes_reach_the_client(orders_client):
    with pytest.raises(AppError) as err:
        orders_client.call(orders.GET_ORDER, path={"order_id": str(uuid.uuid4())})
    assert (err.value.status, err.value.code) == (404, orders.OrderError.ORDER_NOT_FOUND)
    with pytest.raises(AppError) as err:
        orders_client.call(orders.GET_TRANSFER, path={"transfer_id": str(uuid.uuid4())})
    assert (err.value.status, err.value.code) == (404, orders.OrderError.TRANSFER_NOT_FOUND)


# The client escapes every path parameter as one segment; the server (granian, like werkzeug's here) decodes `%2F`
# before routing, so an id with path syntax is a different path: no route (404/405) or an unknown order, never
# another order's change. A value equal to a sibling route's literal segment (`stale`) is that route: the edge
# checks that ids are UUIDs before any internal call.
@pytest.mark.parametrize("suffix", ["/../y?z=1", "/transition", "?status=PENDING", "50%2F", "é/ü", "/begin-payment"])
def test_an_id_with_path_syntax_changes_no_order(orders_client, suffix):
    held_until = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    real = orders_client.call(orders.CREATE_ORDER, {
        "order_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()), "amount": 40, "held_until": held_until})
    for order_id in (real.order_id + suffix, "x" + suffix):
        for call in (lambda: orders_client.call(orders.GET_ORDER, path={"order_id": order_id}),
                     lambda: orders_client.call(orders.TRANSITION, {"to": "FAILED"}, path={"order_id": order_id}),
                     lambda: orders_client.call(orders.BEGIN_PAYMENT, {"user_id": real.user_id},
                                                path={"order_id": order_id})):
            with pytest.raises(AppError) as err:
                call()
            assert (err.value.status, err.value.code) in {
                (404, orders.OrderError.ORDER_NOT_FOUND), (404, "NOT_FOUND"), (405, "METHOD_NOT_ALLOWED")}, (
                order_id, err.value.status, err.value.code)
    after = orders_client.call(orders.GET_ORDER, path={"order_id": real.order_id})
    assert (after.status, after.payment_state) == (OrderStatus.PENDING, real.payment_state)


def test_the_orchestrators_client_reads_an_events_records_and_writes_its_cancellation_notices(orders_client):
    from orchestrator_service.adapters.services import OrderService

    client, event = OrderService(orders_client), str(uuid.uuid4())
    held_until = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    made = [client.create({"order_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()),
                           "event_id": event, "amount": 40, "held_until": held_until}) for _ in range(3)]
    client.transition(made[0].order_id, OrderStatus.CONFIRMED)
    client.transition(made[1].order_id, OrderStatus.FAILED)
    offer = client.create_transfer({
        "transfer_id": str(uuid.uuid4()), "seat_id": made[0].seat_id, "event_id": event,
        "seller_user_id": made[0].user_id, "buyer_user_id": str(uuid.uuid4()), "amount": 10, "face_value": 40,
        "expires_at": held_until})

    assert [o.order_id for o in client.event_orders(event)] == [o.order_id for o in made]
    assert [o.order_id for o in client.event_orders(event, ["CONFIRMED", "PENDING"])] == [
        made[0].order_id, made[2].order_id]
    assert [o.order_id for o in client.event_orders(event, None, limit=1, offset=1)] == [made[1].order_id]
    assert [t.transfer_id for t in client.event_transfers(event, ["PENDING_OTP"])] == [offer.transfer_id]
    assert client.event_transfers(event, ["COMPLETED"]) == []
    sales = client.event_sales(event)
    assert isinstance(sales, orders.EventSales)
    assert (sales.orders_by_status["CONFIRMED"], sales.revenue, sales.seats_sold) == (1, 40, 1)
    assert sales.transfers_by_status["PENDING_OTP"] == 1
    # The buyer of the confirmed order, the pending one's and the offer's buyer: three fans, once each.
    assert client.cancellation_notices(event, "event cancelled", event_name="Gala") == 3
    assert client.cancellation_notices(event, "event cancelled") == 3
    with pytest.raises(AppError) as refused:
        client.cancellation_notices(event, "")
    assert refused.value.status == 400
