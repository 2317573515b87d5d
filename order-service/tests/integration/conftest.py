import pytest

from order_service.bootstrap import bootstrap
from order_service.entrypoints.app import create_app
from order_service.settings import OrderSettings
from trcommon.testing import migrated_database


@pytest.fixture(scope="session")
def database_url(pg_server_url):
    yield from migrated_database(pg_server_url, "order-service")


@pytest.fixture(scope="session")
def settings(database_url):
    return OrderSettings(database_url=database_url, environment="test")


@pytest.fixture(scope="session")
def container(settings):
    c = bootstrap(settings)
    yield c
    c.engine.dispose()


@pytest.fixture
def app(settings, container):
    return create_app(settings, container)


@pytest.fixture
def client(settings, app):
    client = app.test_client()
    client.environ_base["HTTP_X_INTERNAL_TOKEN"] = settings.internal_service_token
    return client
