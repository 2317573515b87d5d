import pytest

from order_service.entrypoints.app import create_app
from trcommon.testing import internal_client, service_fixtures


database_url, settings, container = service_fixtures("order-service")


@pytest.fixture
def app(settings, container):
    return create_app(settings, container)


@pytest.fixture
def client(settings, app):
    return internal_client(app, settings)
