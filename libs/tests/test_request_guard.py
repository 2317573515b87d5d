"""The request guard every service's JSON routes go through: bad bodies are a 400 (413 when too long) in the
error format, never a 500 and never a row written; ordinary bodies pass untouched."""
import pytest
from pydantic import BaseModel

from trcommon.settings import CommonSettings
from trcommon.web import MAX_JSON_DEPTH, create_flask_app, parse_body


class Body(BaseModel):
    name: str = ""
    amount: int = 0
    tags: list = []
    extra: dict = {}


@pytest.fixture
def client():
    app = create_flask_app("guard-test", CommonSettings(max_body_bytes=4096))
    seen = []

    @app.post("/things")
    def things():
        seen.append(parse_body(Body))
        return {"ok": True}

    c = app.test_client()
    c.seen = seen
    return c


def post(client, raw: bytes | str, content_type="application/json"):
    return client.post("/things", data=raw, content_type=content_type)


def refused(resp, status=400):
    body = resp.get_json()
    return resp.status_code == status and set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]


def test_an_ordinary_body_passes(client):
    r = post(client, '{"name": "Ann\\tLee\\n", "amount": 9223372036854775807, "tags": [1, 2.5], "extra": {"a": [[]]}}')
    assert r.status_code == 200
    assert client.seen[0].amount == 2**63 - 1 and client.seen[0].name == "Ann\tLee\n"


def test_json_nested_thousands_deep_is_a_400_not_a_recursion_error(client):
    for depth in (MAX_JSON_DEPTH + 1, 3000, 100_000 // 2):
        raw = '{"extra": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
        if len(raw) > 4096:
            client.application.config["MAX_CONTENT_LENGTH"] = len(raw) + 10
        r = post(client, raw)
        assert refused(r), (depth, r.status_code, r.data[:200])
        assert "nested" in r.get_json()["error"]["message"]
    raw = "[" * 5000 + "]" * 5000
    assert refused(post(client, raw))
    assert client.seen == []


def test_a_nul_or_control_character_in_text_is_a_400(client):
    for text in ("a\\u0000b", "\\u0007bell", "esc\\u001b[0m", "del\\u007f"):
        r = post(client, '{"name": "%s"}' % text)
        assert refused(r) and r.get_json()["error"]["details"] == [
            {"field": "name", "message": "text must not hold control characters"}], text
    assert refused(post(client, '{"extra": {"k\\u0000": 1}}'))
    assert client.seen == []


def test_integers_beyond_64_bits_and_non_json_numbers_are_a_400(client):
    for raw in ('{"amount": 9223372036854775808}', '{"amount": -99999999999999999999999}',
                '{"amount": ' + "9" * 3000 + "}", '{"amount": NaN}', '{"amount": Infinity}', '{"tags": [1e999]}'):
        r = post(client, raw)
        assert refused(r) and r.get_json()["error"]["details"][0]["field"] in ("amount", "tags.0"), raw[:60]
    assert client.seen == []


def test_a_body_over_the_limit_is_a_413_in_the_error_format(client):
    r = post(client, '{"name": "' + "x" * 5000 + '"}')
    assert refused(r, 413), r.data[:200]
    assert client.seen == []


def test_not_json_or_not_an_object_is_a_400(client):
    for raw, ctype in (("name=x", "application/x-www-form-urlencoded"), ("{", "application/json"),
                       ("", "application/json"), ("[1]", "application/json"), (b"\xff\xfe{}", "application/json")):
        assert refused(post(client, raw, ctype)), raw
    assert client.seen == []
