"""The shared library's own rules: tokens, settings, error mapping."""
import time

import grpc
import jwt
import pytest

from trcommon.auth import Principal, TokenService
from trcommon.errors import AppError, Unauthorized, error_from_body
from trcommon.grpc_support import grpc_status_for
from trcommon.settings import DEV_JWT_SECRET, CommonSettings

SECRET = "s" * 40
U1 = "9a88645d-0000-4000-8000-000000000001"


def test_issued_tokens_verify_and_carry_identity():
    tokens = TokenService(SECRET, "ticketremaster")
    pair = tokens.issue_pair(Principal(U1, "fan"))
    assert tokens.verify(pair["access_token"]) == Principal(U1, "fan")
    assert tokens.verify(pair["refresh_token"], typ="refresh") == Principal(U1, "fan")


def test_a_refresh_token_is_not_an_access_token():
    tokens = TokenService(SECRET, "ticketremaster")
    with pytest.raises(Unauthorized):
        tokens.verify(tokens.issue_pair(Principal(U1, "fan"))["refresh_token"])


def test_a_token_meant_to_live_longer_than_configured_is_refused():
    tokens = TokenService(SECRET, "ticketremaster", access_ttl_seconds=900, refresh_ttl_seconds=3600)
    now = int(time.time())
    claims = {"iss": "ticketremaster", "sub": U1, "role": "fan", "typ": "access", "iat": now}
    for exp, typ, ok in ((now + 900, "access", True), (now + 100 * 365 * 86400, "access", False),
                         (now + 3600, "access", False), (now + 3600, "refresh", True),
                         (now + 7200, "refresh", False)):
        token = jwt.encode({**claims, "exp": exp, "typ": typ}, SECRET, algorithm="HS256")
        if ok:
            assert tokens.verify(token, typ).user_id == U1
        else:
            with pytest.raises(Unauthorized) as err:
                tokens.verify(token, typ)
            assert err.value.code == "INVALID_TOKEN", (exp - now, typ)


def test_expired_tokens_are_refused_with_their_own_code():
    tokens = TokenService(SECRET, "ticketremaster", access_ttl_seconds=-1)
    with pytest.raises(Unauthorized) as exc:
        tokens.verify(tokens.issue_access(Principal(U1, "fan"))["access_token"])
    assert exc.value.code == "TOKEN_EXPIRED"


def test_a_cached_token_is_refused_once_its_exp_has_passed(monkeypatch):
    import trcommon.auth as auth

    tokens = TokenService(SECRET, "ticketremaster")
    exp = int(time.time()) + 60
    token = jwt.encode({"iss": "ticketremaster", "sub": U1, "role": "fan", "typ": "access",
                        "iat": int(time.time()), "exp": exp}, SECRET, algorithm="HS256")
    assert tokens.verify(token) == Principal(U1, "fan")

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached token is not decoded again")

    monkeypatch.setattr(auth.jwt, "decode", no_decoding)
    assert tokens.verify(token) == Principal(U1, "fan")
    with pytest.raises(Unauthorized):
        tokens.verify(token, typ="refresh")          # the cached claims still answer for the token's type
    monkeypatch.setattr(auth.time, "time", lambda: exp + 0.001)
    with pytest.raises(Unauthorized) as exc:
        tokens.verify(token)
    assert exc.value.code == "TOKEN_EXPIRED"


def test_a_cache_entry_never_outlives_its_token():
    from trcommon.auth import _until_expiry, _Verified

    entry = _Verified(Principal(U1, "fan"), "access", exp=1000, nbf=None)
    assert _until_expiry("t", entry, now=990.0) == 1000.0


def test_unsigned_and_foreign_tokens_are_refused():
    tokens = TokenService(SECRET, "ticketremaster")
    claims = {"iss": "ticketremaster", "sub": U1, "role": "admin", "typ": "access",
              "iat": int(time.time()), "exp": int(time.time()) + 60}
    for token in (jwt.encode(claims, None, algorithm="none"), jwt.encode(claims, "t" * 40, algorithm="HS256"),
                  jwt.encode({**claims, "iss": "other"}, SECRET, algorithm="HS256"),
                  jwt.encode({**claims, "role": "root"}, SECRET, algorithm="HS256")):
        with pytest.raises(Unauthorized):
            tokens.verify(token)


def test_a_token_whose_subject_is_not_a_user_id_is_refused():
    """A subject is pasted into internal paths (GET /internal/users/{user_id}): only a UUID names a user."""
    tokens = TokenService(SECRET, "ticketremaster")
    now = int(time.time())
    claims = {"iss": "ticketremaster", "role": "fan", "typ": "access", "iat": now, "exp": now + 60}
    for sub in (f"{U1}?x=1", "x/../y", "..", U1.replace("-", ""), f"{{{U1}}}", f"urn:uuid:{U1}", "u1"):
        with pytest.raises(Unauthorized) as err:
            tokens.verify(jwt.encode({**claims, "sub": sub}, SECRET, algorithm="HS256"))
        assert err.value.code == "INVALID_TOKEN", sub
    assert tokens.verify(jwt.encode({**claims, "sub": U1.upper()}, SECRET, algorithm="HS256")).user_id == U1


def test_production_refuses_development_secrets():
    with pytest.raises(ValueError):
        CommonSettings(environment="production")
    ok = CommonSettings(environment="production", jwt_secret="p" * 40, internal_service_token="q" * 40)
    assert ok.jwt_secret != DEV_JWT_SECRET


def test_short_jwt_secrets_are_refused():
    with pytest.raises(ValueError):
        CommonSettings(jwt_secret="short")


def test_error_bodies_from_other_services_keep_status_and_code():
    err = error_from_body(402, {"error": {"code": "INSUFFICIENT_CREDITS", "message": "no"}})
    assert (err.status, err.code, err.message) == (402, "INSUFFICIENT_CREDITS", "no")
    assert error_from_body(500, "<html>").code == "BAD_GATEWAY"



def test_a_retry_after_crosses_an_internal_hop_in_the_body_and_becomes_the_header_at_each_service():
    from trcommon.settings import CommonSettings
    from trcommon.web import create_flask_app, error_response

    origin = AppError("too many codes", code="OTP_SEND_LIMIT", status=429, retry_after=1234)
    assert origin.body() == {"error": {"code": "OTP_SEND_LIMIT", "message": "too many codes", "retry_after": 1234}}
    rebuilt = error_from_body(429, origin.body())
    assert (rebuilt.status, rebuilt.code, rebuilt.retry_after) == (429, "OTP_SEND_LIMIT", 1234)
    with create_flask_app("edge", CommonSettings()).test_request_context():
        reply = error_response(rebuilt)
    assert reply.status_code == 429 and reply.headers["Retry-After"] == "1234"
    assert reply.get_json()["error"]["retry_after"] == 1234
    # Only a non-negative whole number of seconds is taken from another service's body.
    for odd in ("soon", -5, 1.5, True, None):
        assert error_from_body(429, {"error": {"code": "X", "message": "", "retry_after": odd}}).retry_after is None

def test_lock_contention_maps_to_aborted_and_conflicts_to_failed_precondition():
    class Busy(AppError):
        status, code, contention = 409, "SEAT_UNAVAILABLE", True

    assert grpc_status_for(Busy("seat busy")) == grpc.StatusCode.ABORTED
    assert grpc_status_for(AppError("x", code="SEAT_UNAVAILABLE", status=409)) == grpc.StatusCode.FAILED_PRECONDITION
    assert grpc_status_for(AppError("x", code="SEAT_NOT_FOUND", status=404)) == grpc.StatusCode.NOT_FOUND


def test_database_errors_that_mean_unreachable_are_told_apart_from_bugs():
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    from trcommon.db import database_unavailable

    class Orig(Exception):
        """Stands in for the driver's exception: what matters is the SQLSTATE it carries."""

        def __init__(self, state):
            super().__init__("x")
            self.sqlstate = state

    assert database_unavailable(OperationalError("SELECT 1", {}, Orig(None)))          # connection refused
    assert database_unavailable(OperationalError("SELECT 1", {}, Orig("57P01")))       # admin shutdown
    assert database_unavailable(OperationalError("SELECT 1", {}, Orig("08006")))       # connection failure
    assert database_unavailable(OperationalError("SELECT 1", {}, Orig("53300")))       # too many clients
    assert not database_unavailable(OperationalError("SELECT 1", {}, Orig("55P03")))   # lock not available
    assert not database_unavailable(IntegrityError("INSERT", {}, Orig("23505")))
    assert not database_unavailable(ProgrammingError("SELECT", {}, Orig("42P01")))
    assert not database_unavailable(ValueError("not a database error"))
