import uuid

import pytest

from trcommon import demo
from trcommon.testing import schema_differences, served_routes
from trcommon.web import flask_rule
from trcontracts import users as contract
from trcontracts.base import HEALTH
from user_service.adapters.tables import metadata
from user_service.seed import seed_demo

INTERNAL_ROUTES = [(r.method, r.url(**{p: str(uuid.uuid4()) for p in r.path_params})) for r in contract.ROUTES]


def test_migrations_create_exactly_the_declared_tables(database_url):
    assert schema_differences(database_url, metadata) == []


@pytest.mark.parametrize("method, path", INTERNAL_ROUTES)
def test_internal_routes_refuse_callers_without_the_internal_credential(client, method, path):
    bare = client.application.test_client()
    for headers in ({}, {"X-Internal-Token": "wrong"}):
        resp = bare.open(path, method=method, json={}, headers=headers)
        assert resp.status_code == 401
        assert resp.get_json()["error"]["code"] == "INTERNAL_CREDENTIAL_REQUIRED"


def test_health_reports_the_database_without_a_credential(client):
    resp = client.application.test_client().get("/health")
    assert resp.status_code == 200
    assert resp.get_json()["checks"]["database"] == "up"


def test_the_demo_seed_creates_the_five_demo_users_once(client, settings, users):
    seed_demo(settings)
    seed_demo(settings)
    for email, role, flagged, credits, phone in demo.USERS:
        profile = client.get(f"/internal/users/{demo.user_id(email)}").get_json()
        assert (profile["email"], profile["role"], profile["is_flagged"], profile["credit_balance"],
                profile["phone"]) == (email, role, flagged, credits, phone)
        assert users.ledger_sum(demo.user_id(email)) == credits
    login = client.post("/internal/auth/login", json={"email": "FAN1@demo.test", "password": demo.PASSWORD})
    assert login.status_code == 200


def test_the_service_serves_exactly_the_routes_of_its_contract(client):
    assert served_routes(client.application) == {(r.method, flask_rule(r)) for r in (*contract.ROUTES, HEALTH)}
