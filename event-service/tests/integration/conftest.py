import pytest

from event_service.bootstrap import bootstrap
from event_service.entrypoints.app import create_app
from event_service.settings import EventSettings
from trcommon.testing import migrated_database


@pytest.fixture(scope="session")
def database_url(pg_server_url):
    yield from migrated_database(pg_server_url, "event-service")


@pytest.fixture(scope="session")
def settings(database_url):
    return EventSettings(database_url=database_url, environment="test")


@pytest.fixture(scope="session")
def container(settings):
    c = bootstrap(settings)
    yield c
    c.engine.dispose()


@pytest.fixture
def client(settings, container):
    app = create_app(settings, container)
    client = app.test_client()
    client.environ_base["HTTP_X_INTERNAL_TOKEN"] = settings.internal_service_token
    return client
