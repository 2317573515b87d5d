"""Accounts, tokens and the edge rules the gateway enforces (the orchestrator enforces them itself too)."""
import base64
import json
import time

import jwt
import requests

from trcommon import demo
from trcommon.settings import DEV_JWT_SECRET

from e2e_support import login, register_and_login


def test_a_new_fan_can_register_log_in_and_see_their_profile(api):
    fan = register_and_login(api)
    r = api.get("/me", fan.token)
    assert r.status_code == 200
    me = r.json()
    assert me["user_id"] == fan.user_id and me["email"] == fan.email
    assert me["role"] == "fan" and me["credit_balance"] == 0 and me["is_flagged"] is False


def test_the_access_token_carries_the_required_claims(api, fan):
    claims = jwt.decode(fan.token, options={"verify_signature": False})
    assert {"exp", "iat", "iss", "sub", "role"} <= set(claims)
    assert claims["sub"] == fan.user_id and claims["role"] == "fan" and claims["iss"] == "ticketremaster"
    assert jwt.get_unverified_header(fan.token)["alg"] == "HS256"


def test_refresh_gives_a_working_access_token(api, fan):
    r = api.post("/auth/refresh", json={"refresh_token": fan.refresh_token})
    assert r.status_code == 200, r.text
    assert api.get("/me", r.json()["access_token"]).status_code == 200


def test_a_refresh_token_is_not_accepted_as_an_access_token(api, fan):
    r = api.get("/me", fan.refresh_token)
    assert r.status_code == 401


def test_an_access_token_is_not_accepted_for_refresh(api, fan):
    r = api.post("/auth/refresh", json={"refresh_token": fan.token})
    assert r.status_code == 401


def test_demo_accounts_log_in_with_their_roles(api):
    for email, role, flagged, credits, _phone in demo.USERS:
        me = api.get("/me", login(api, email)).json()
        assert (me["role"], me["is_flagged"], me["credit_balance"]) == (role, flagged, credits)


def test_wrong_password_and_unknown_email_get_the_same_401(api, fan):
    wrong = api.post("/auth/login", json={"email": fan.email, "password": "not-the-password"})
    unknown = api.post("/auth/login", json={"email": "nobody@example.com", "password": "whatever-pass"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["code"] == unknown.json()["error"]["code"] == "INVALID_CREDENTIALS"


def test_registering_the_same_email_twice_is_a_conflict(api, fan):
    r = api.post("/auth/register", json={"email": fan.email.upper(), "password": "another-password",
                                         "phone": "+6591112222"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "EMAIL_TAKEN"


def test_registration_rules_give_400_with_details(api):
    for body in ({"email": "not-an-email", "password": "long-enough-pw", "phone": "+6591234567"},
                 {"email": "ok@example.com", "password": "short", "phone": "+6591234567"},
                 {"email": "ok@example.com", "password": "long-enough-pw", "phone": "12345"},
                 {"email": "ok@example.com"}):
        r = api.post("/auth/register", json=body)
        assert r.status_code == 400, body
        assert r.json()["error"]["code"] == "INVALID_INPUT"


def test_malformed_json_bodies_are_400_in_the_error_format(api, fan):
    for path, token in (("/auth/login", None), ("/reserve", fan.token)):
        r = api.post(path, token, data="{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "INVALID_INPUT"
        r = api.post(path, token, json=["a", "list"])
        assert r.status_code == 400


def _forge(claims: dict, secret: str = DEV_JWT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def _claims(user_id: str, **over) -> dict:
    now = int(time.time())
    return {"iss": "ticketremaster", "sub": user_id, "role": "fan", "typ": "access", "iat": now,
            "exp": now + 600, **over}


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_protected_routes_refuse_missing_expired_tampered_and_unsigned_tokens(api, fan):
    now = int(time.time())
    header, payload, signature = fan.token.split(".")
    tampered_claims = jwt.decode(fan.token, options={"verify_signature": False})
    tampered_claims["role"] = "admin"
    bad_tokens = {
        "expired": _forge(_claims(fan.user_id, iat=now - 3600, exp=now - 60)),
        "tampered": f"{header}.{_b64(tampered_claims)}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(fan.user_id))}.",
        "wrong secret": _forge(_claims(fan.user_id), secret="x" * 40),
        "unknown issuer": _forge(_claims(fan.user_id, iss="someone-else")),
        "no exp": _forge({k: v for k, v in _claims(fan.user_id).items() if k != "exp"}),
        "garbage": "not.a.jwt",
    }
    for path, method in (("/me", "GET"), ("/reserve", "POST"), ("/pay", "POST"), ("/me/orders", "GET")):
        r = api.call(method, path, json={})
        assert r.status_code == 401, (path, "missing")
        assert r.json()["error"]["code"] == "AUTH_REQUIRED"
        for name, token in bad_tokens.items():
            r = api.call(method, path, token, json={})
            assert r.status_code == 401, (path, name, r.text)
            assert r.json()["error"]["code"] in ("INVALID_TOKEN", "TOKEN_EXPIRED"), (path, name)


def test_a_token_in_the_query_string_is_ignored(api, fan):
    r = requests.get(f"{api.base}/me", params={"jwt": fan.token}, timeout=10)
    assert r.status_code == 401


def test_internal_endpoints_refuse_calls_without_the_service_credential(stack, fan):
    base = f"http://127.0.0.1:{stack.ports.user}"
    r = requests.get(f"{base}/internal/users/{fan.user_id}", timeout=10)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "INTERNAL_CREDENTIAL_REQUIRED"
    forged = requests.post(f"{base}/internal/credits/credit", timeout=10,
                           headers={"X-User-Id": fan.user_id, "X-Consumer-Username": "admin"},
                           json={"user_id": fan.user_id, "amount": 1000, "reference": "forged", "reason": "x"})
    assert forged.status_code == 401
    for port in (stack.ports.order, stack.ports.event):
        assert requests.get(f"http://127.0.0.1:{port}/events", timeout=10).status_code in (401, 404)
    assert requests.get(f"http://127.0.0.1:{stack.ports.order}/internal/orders?user_id={fan.user_id}",
                        timeout=10).status_code == 401


def test_identity_comes_from_the_token_not_the_body(api, fan):
    r = api.get("/me", fan.token, json={"user_id": "00000000-0000-0000-0000-000000000000"})
    assert r.json()["user_id"] == fan.user_id
