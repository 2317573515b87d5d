import pytest

from order_service.entrypoints.app import create_app
from trcommon.testing import internal_client, run_together, service_fixtures


database_url, settings, container = service_fixtures("order-service")


@pytest.fixture
def app(settings, container):
    return create_app(settings, container)


@pytest.fixture
def client(settings, app):
    return internal_client(app, settings)


@pytest.fixture
def together(app, settings):
    """`together(calls)`: each `call(client)` in its own thread with its own test client, all released at once,
    so the requests really overlap in the database (the pool has more connections than there are threads)."""
    def run(calls):
        clients = [internal_client(app, settings) for _ in calls]
        return run_together([lambda call=call, c=c: call(c) for call, c in zip(calls, clients)])
    return run
