"""Real PostgreSQL, a real gRPC server process (`python -m inventory_service.entrypoints.grpc_server`) on a free
127.0.0.1 port, and the real broker vhost of trcommon.testing's `amqp_url`."""
from __future__ import annotations

import threading
import time
import uuid

import grpc
import pytest
from inventory_service.bootstrap import bootstrap
from inventory_service.domain.model import Seat
from inventory_service.entrypoints.release_consumer import ReleaseConsumer
from trcommon import testing
from trcommon.grpc_support import app_error_from_rpc, client_channel
from trcommon.testing import grpc_server_fixtures, service_fixtures
from trproto import inventory_pb2_grpc

database_url, settings, container = service_fixtures("inventory-service")
start_server, grpc_server = grpc_server_fixtures("inventory-service")


@pytest.fixture(scope="session")
def inventory(grpc_server, settings):
    """A stub on a channel that carries the internal credential and a deadline, as the orchestrator's does."""
    channel = client_channel(grpc_server.target, settings.internal_service_token, timeout=10)
    yield inventory_pb2_grpc.InventoryStub(channel)
    channel.close()


@pytest.fixture
def new_seat(container):
    """Make a fresh AVAILABLE seat (fresh event unless given); returns its id."""

    def make(event_id: str | None = None, section: str = "A", row: str = "1", number: int | None = None,
             price: int = 50) -> str:
        seat_id = str(uuid.uuid4())
        with container.uow() as uow:
            uow.seats.add([Seat(seat_id, event_id or str(uuid.uuid4()), section, row,
                                number if number is not None else 1, price)])
            uow.commit()
        return seat_id

    return make


@pytest.fixture
def stored_seat(container):
    """The seat row as stored (no lapsed-hold view), read straight from the database."""

    def read(seat_id: str) -> Seat:
        with container.uow() as uow:
            seat, _ = uow.seats.get(seat_id)
        return seat

    return read


@pytest.fixture
def rpc_error():
    """Call and return the RpcError it must raise, after checking the gRPC status and the AppError it carries."""

    def check(call, request, status: grpc.StatusCode, code: str, http_status: int) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            call(request)
        exc = caught.value
        err = app_error_from_rpc(exc)
        assert (exc.code(), err.code, err.status) == (status, code, http_status), exc.details()
        return exc

    return check


# --- broker --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def broker(amqp_url):
    return testing.Broker(amqp_url)


@pytest.fixture
def consumer_settings(settings, amqp_url):
    return settings.model_copy(update={"amqp_url": amqp_url})


@pytest.fixture
def run_consumer(consumer_settings):
    """Start release consumers in threads (on the test's settings unless a container is given); stopped after."""
    running: list[tuple[ReleaseConsumer, threading.Thread, object]] = []

    def start(container=None) -> ReleaseConsumer:
        own = container is None
        container = container or bootstrap(consumer_settings)
        consumer = ReleaseConsumer(container)
        thread = threading.Thread(target=consumer.run, name="release-consumer", daemon=True)
        thread.start()
        running.append((consumer, thread, container if own else None))
        assert consumer.consuming.wait(10), "the release consumer did not attach to the queue"
        return consumer

    yield start
    for consumer, thread, own_container in running:
        consumer.stop()
        thread.join(10)
        if own_container is not None:
            own_container.engine.dispose()


def wait_until(predicate, seconds: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.fixture
def eventually():
    return wait_until
