import pytest

from event_service.entrypoints.app import create_app
from trcommon.testing import internal_client, service_fixtures


database_url, settings, container = service_fixtures("event-service")


@pytest.fixture
def client(settings, container):
    return internal_client(create_app(settings, container), settings)
