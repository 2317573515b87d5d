import re
import uuid

import pytest
import sqlalchemy as sa

from trcommon.testing import StandIn, internal_client, service_fixtures
from user_service.adapters.tables import users as users_table
from user_service.bootstrap import bootstrap
from user_service.entrypoints.app import create_app
from user_service.settings import UserSettings

# argon2 at its cheapest: these tests are about behaviour, not hashing cost.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost": 8, "argon2_parallelism": 1}
CODE = re.compile(r"code (\d{6}) ")


database_url, settings, container = service_fixtures("user-service", **FAST_ARGON2)


@pytest.fixture
def make_client(settings, container):
    """A test client of an app built with some settings changed (sharing the session's database pool)."""

    def make(**overrides):
        s = UserSettings(**{**settings.model_dump(), **overrides}) if overrides else settings
        c = bootstrap(s, engine=container.engine) if overrides else container
        client = internal_client(create_app(s, c), s)
        return client

    return make


@pytest.fixture
def client(make_client):
    return make_client()


class Users:
    """Builds fresh users through the API and reads what the tests check straight from the database."""

    def __init__(self, client, container):
        self.client, self.container = client, container

    @staticmethod
    def email() -> str:
        return f"u{uuid.uuid4().hex[:12]}@example.com"

    @staticmethod
    def phone() -> str:
        return "+1" + str(uuid.uuid4().int)[:11]

    @staticmethod
    def clone(client):
        """Another client of the same app, for use in another thread."""
        other = client.application.test_client()
        other.environ_base.update(client.environ_base)
        return other

    def new(self, credits: int = 0, flagged: bool = False, password: str = "correct horse battery") -> dict:
        email, phone = self.email(), self.phone()
        resp = self.client.post("/internal/auth/register", json={"email": email, "password": password,
                                                                  "phone": phone})
        assert resp.status_code == 201, resp.get_json()
        user = {"user_id": resp.get_json()["user_id"], "email": email, "phone": phone, "password": password}
        if credits:
            resp = self.client.post("/internal/credits/credit", json={
                "user_id": user["user_id"], "amount": credits, "reference": f"test-setup:{uuid.uuid4()}",
                "reason": "test setup"})
            assert resp.status_code == 200, resp.get_json()
        if flagged:
            self.sql(sa.update(users_table).where(users_table.c.user_id == user["user_id"]).values(is_flagged=True))
        return user

    def sql(self, statement, params=None):
        with self.container.engine.begin() as conn:
            result = conn.execute(statement if not isinstance(statement, str) else sa.text(statement), params or {})
            return result.all() if result.returns_rows else None

    def balance(self, user_id: str) -> int:
        return self.sql("SELECT credit_balance FROM users WHERE user_id = :u", {"u": user_id})[0][0]

    def pending(self, user_id: str) -> int:
        return self.sql("SELECT pending_credits FROM users WHERE user_id = :u", {"u": user_id})[0][0]

    def ledger_sum(self, user_id: str, account: str = "spendable") -> int:
        return self.sql("SELECT coalesce(sum(amount), 0) FROM credit_ledger WHERE user_id = :u AND account = :a",
                        {"u": user_id, "a": account})[0][0]

    def outbox(self, phone: str) -> list[str]:
        with self.container.uow() as uow:
            return uow.sms_outbox.latest_for(phone, limit=100)

    def latest_code(self, phone: str) -> str:
        bodies = self.outbox(phone)
        assert bodies, f"no SMS was sent to {phone}"
        return CODE.search(bodies[0]).group(1)


@pytest.fixture
def users(client, container):
    return Users(client, container)


@pytest.fixture
def stand_in():
    servers = []

    def start(handle) -> StandIn:
        servers.append(StandIn(handle))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def closed_port_url():
    """A local URL where nothing listens."""
    from trcommon.devstack import free_port

    return f"http://127.0.0.1:{free_port()}"
