import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from trcommon.auth import Principal, TokenService
from user_service.adapters.tables import users as users_table

REGISTER, LOGIN, REFRESH = "/internal/auth/register", "/internal/auth/login", "/internal/auth/refresh"


def _tokens(settings, **ttl):
    return TokenService(settings.jwt_secret, settings.jwt_issuer, **ttl)


def test_register_then_login_issues_a_token_pair_for_a_fan_with_no_credits(client, users, settings):
    email = users.email()
    resp = client.post(REGISTER, json={"email": email, "password": "correct horse", "phone": "+6591234567"})
    assert resp.status_code == 201
    user_id = resp.get_json()["user_id"]
    assert uuid.UUID(user_id)

    resp = client.post(LOGIN, json={"email": email, "password": "correct horse"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == settings.access_token_ttl_seconds
    tokens = _tokens(settings)
    assert tokens.verify(body["access_token"]) == Principal(user_id, "fan")
    assert tokens.verify(body["refresh_token"], typ="refresh") == Principal(user_id, "fan")

    profile = client.get(f"/internal/users/{user_id}").get_json()
    assert profile == {"user_id": user_id, "email": email, "phone": "+6591234567", "role": "fan",
                       "credit_balance": 0, "pending_credits": 0, "is_flagged": False,
                       "created_at": profile["created_at"]}


def test_the_email_is_stored_lower_cased_and_login_accepts_any_case(client, users):
    email = users.email()
    resp = client.post(REGISTER, json={"email": email.upper(), "password": "correct horse", "phone": users.phone()})
    user_id = resp.get_json()["user_id"]
    assert client.get(f"/internal/users/{user_id}").get_json()["email"] == email
    assert client.post(LOGIN, json={"email": email.title(), "password": "correct horse"}).status_code == 200


def test_passwords_are_stored_as_argon2id_hashes(users):
    user = users.new(password="correct horse battery")
    (stored,), = users.sql(sa.select(users_table.c.password_hash).where(users_table.c.user_id == user["user_id"]))
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


def test_a_wrong_password_or_an_unknown_email_is_401_invalid_credentials(client, users):
    user = users.new()
    for body in ({"email": user["email"], "password": "wrong password"},
                 {"email": users.email(), "password": user["password"]}):
        resp = client.post(LOGIN, json=body)
        assert resp.status_code == 401
        assert resp.get_json()["error"]["code"] == "INVALID_CREDENTIALS"


def test_a_taken_email_is_409_also_in_another_case(client, users):
    user = users.new()
    for email in (user["email"], user["email"].upper()):
        resp = client.post(REGISTER, json={"email": email, "password": "another password", "phone": users.phone()})
        assert resp.status_code == 409
        assert resp.get_json()["error"]["code"] == "EMAIL_TAKEN"


def test_concurrent_sign_ups_with_one_email_create_exactly_one_account(client, users):
    email = users.email()

    def sign_up(i):
        body = {"email": email if i % 2 else email.upper(), "password": f"password {i}", "phone": users.phone()}
        return users.clone(client).post(REGISTER, json=body).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(sign_up, range(10)))
    assert sorted(statuses) == [201] + [409] * 9
    assert users.sql("SELECT count(*) FROM users WHERE email = :e", {"e": email})[0][0] == 1


@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email", "password": "correct horse", "phone": "+6591234567"}, "email"),
    ({"email": "a@demo.test", "password": "correct horse", "phone": "+6591234567"}, "email"),
    ({"email": "ok@example.com", "password": "short", "phone": "+6591234567"}, "password"),
    ({"email": "ok@example.com", "password": "x" * 129, "phone": "+6591234567"}, "password"),
    ({"email": "long.enough@example.com", "password": "Long.Enough@example.com", "phone": "+6591234567"},
     "password"),
    ({"email": "ok@example.com", "password": "correct horse", "phone": "91234567"}, "phone"),
    ({"email": "ok@example.com", "password": "correct horse"}, "phone"),
    ({"email": "ok@example.com", "password": 12345678, "phone": "+6591234567"}, "password"),
])
def test_invalid_registrations_are_400_with_the_field_in_the_details(client, body, field):
    resp = client.post(REGISTER, json=body)
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "INVALID_INPUT"
    assert field in [d["field"] for d in error["details"]]


def test_a_body_that_is_not_a_json_object_is_400(client):
    for kwargs in ({"data": "email=a", "content_type": "application/x-www-form-urlencoded"}, {"json": [1, 2]}):
        resp = client.post(REGISTER, **kwargs)
        assert resp.status_code == 400
        assert resp.get_json()["error"]["code"] == "INVALID_INPUT"


def test_the_role_cannot_be_chosen_at_sign_up(client, users):
    resp = client.post(REGISTER, json={"email": users.email(), "password": "correct horse", "phone": users.phone(),
                                       "role": "admin", "credit_balance": 10**6, "is_flagged": False})
    profile = client.get(f"/internal/users/{resp.get_json()['user_id']}").get_json()
    assert profile["role"] == "fan" and profile["credit_balance"] == 0


def test_refresh_issues_an_access_token_with_the_users_current_role(client, users, settings):
    user = users.new()
    refresh_token = client.post(LOGIN, json={"email": user["email"], "password": user["password"]}) \
        .get_json()["refresh_token"]
    users.sql(sa.update(users_table).where(users_table.c.user_id == user["user_id"]).values(role="scanner"))
    resp = client.post(REFRESH, json={"refresh_token": refresh_token})
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert _tokens(settings).verify(body["access_token"]) == Principal(user["user_id"], "scanner")


def test_refresh_refuses_access_tokens_garbage_and_tokens_of_unknown_users(client, users, settings):
    user = users.new()
    access_token = client.post(LOGIN, json={"email": user["email"], "password": user["password"]}) \
        .get_json()["access_token"]
    ghost = _tokens(settings).issue_pair(Principal(str(uuid.uuid4()), "fan"))["refresh_token"]
    forged = TokenService("x" * 40, settings.jwt_issuer).issue_pair(Principal(user["user_id"], "fan"))["refresh_token"]
    for token in (access_token, "not.a.token", ghost, forged):
        resp = client.post(REFRESH, json={"refresh_token": token})
        assert resp.status_code == 401
        assert resp.get_json()["error"]["code"] == "INVALID_TOKEN"


def test_an_expired_refresh_token_is_401_token_expired(client, users, settings):
    user = users.new()
    expired = _tokens(settings, refresh_ttl_seconds=-1).issue_pair(Principal(user["user_id"], "fan"))["refresh_token"]
    resp = client.post(REFRESH, json={"refresh_token": expired})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "TOKEN_EXPIRED"


def test_login_upgrades_a_hash_made_with_weaker_parameters(make_client, users):
    user = users.new()
    stronger = make_client(argon2_time_cost=2)
    assert stronger.post(LOGIN, json={"email": user["email"], "password": user["password"]}).status_code == 200
    (stored,), = users.sql(sa.select(users_table.c.password_hash).where(users_table.c.user_id == user["user_id"]))
    assert ",t=2," in stored
    assert stronger.post(LOGIN, json={"email": user["email"], "password": user["password"]}).status_code == 200


def test_a_user_is_found_by_id_and_by_email_in_any_case(client, users):
    user = users.new()
    by_id = client.get(f"/internal/users/{user['user_id']}")
    by_email = client.get("/internal/users/by-email", query_string={"email": user["email"].upper()})
    assert by_id.status_code == by_email.status_code == 200
    assert by_id.get_json() == by_email.get_json()
    assert by_id.get_json()["phone"] == user["phone"]


def test_unknown_or_malformed_users_are_404_user_not_found(client, users):
    for path in (f"/internal/users/{uuid.uuid4()}", "/internal/users/not-a-uuid",
                 f"/internal/users/by-email?email={users.email()}"):
        resp = client.get(path)
        assert resp.status_code == 404
        assert resp.get_json()["error"]["code"] == "USER_NOT_FOUND"
