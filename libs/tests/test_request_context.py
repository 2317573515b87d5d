"""The one request-id context: every unit of work runs under an id, and the previous id comes back after it."""
import pytest
from flask import jsonify

from trcommon.logs import REQUEST_ID_HEADER, current_request_id, request_context
from trcommon.settings import CommonSettings
from trcommon.web import create_flask_app


def test_a_given_id_is_current_inside_and_the_previous_one_is_restored_after():
    assert current_request_id() == "-"
    with request_context("abc-123") as rid:
        assert rid == current_request_id() == "abc-123"
        with request_context("inner") as inner:
            assert current_request_id() == inner == "inner"
        assert current_request_id() == "abc-123"
    assert current_request_id() == "-"


@pytest.mark.parametrize("given", [None, "", "x" * 129, "bad\nid", "naïve"])
def test_no_id_or_an_unusable_one_starts_a_new_id(given):
    with request_context(given) as rid:
        assert rid == current_request_id() and len(rid) == 32 and rid != given
    with request_context(given) as other:
        assert other != rid


def test_the_previous_id_is_restored_when_the_work_raises():
    with request_context("outer"):
        with pytest.raises(RuntimeError):
            with request_context("failing"):
                raise RuntimeError("boom")
        assert current_request_id() == "outer"


def test_a_flask_request_runs_under_the_callers_id_from_first_hook_to_teardown():
    app = create_flask_app("test-service", CommonSettings())
    seen = {}

    @app.get("/work")
    def work():
        seen["view"] = current_request_id()
        return jsonify({})

    @app.teardown_request
    def _teardown(_exc):
        seen["teardown"] = current_request_id()

    client = app.test_client()
    resp = client.get("/work", headers={REQUEST_ID_HEADER: "trace-me-1"})
    assert resp.headers[REQUEST_ID_HEADER] == "trace-me-1"
    assert seen == {"view": "trace-me-1", "teardown": "trace-me-1"}
    assert current_request_id() == "-"

    fresh = client.get("/work", headers={REQUEST_ID_HEADER: "bad\tid"}).headers[REQUEST_ID_HEADER]
    assert fresh != "bad\tid" and len(fresh) == 32 and seen["view"] == fresh
