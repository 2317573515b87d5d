"""Routes that machines poll log their access line at DEBUG; every other request logs at INFO."""
import logging

from flask import jsonify

from trcommon.settings import CommonSettings
from trcommon.web import create_flask_app, health_blueprint, internal_blueprint


def _app():
    settings = CommonSettings()
    app = create_flask_app("test-service", settings)
    bp = internal_blueprint("things", __name__, settings, url_prefix="/internal")

    @bp.get("/things/stale")
    @bp.polled
    def stale():
        return jsonify({"things": []})

    @bp.get("/things")
    def things():
        return jsonify({"things": []})

    app.register_blueprint(bp)
    app.register_blueprint(health_blueprint({"nothing": lambda: None}))
    client = app.test_client()
    client.environ_base["HTTP_X_INTERNAL_TOKEN"] = settings.internal_service_token
    return client


def _access_lines(caplog):
    return [(r.levelno, r.path) for r in caplog.records if r.name == "access"]


def test_a_polled_route_and_the_health_check_log_at_debug_and_other_routes_at_info(caplog):
    client = _app()
    with caplog.at_level(logging.DEBUG, logger="access"):
        for path in ("/internal/things/stale", "/health", "/internal/things"):
            assert client.get(path).status_code == 200
    assert _access_lines(caplog) == [(logging.DEBUG, "/internal/things/stale"), (logging.DEBUG, "/health"),
                                     (logging.INFO, "/internal/things")]


def test_at_info_a_polled_route_logs_nothing(caplog):
    client = _app()
    with caplog.at_level(logging.INFO, logger="access"):
        client.get("/internal/things/stale")
        client.get("/health")
        client.get("/internal/things")
    assert _access_lines(caplog) == [(logging.INFO, "/internal/things")]
