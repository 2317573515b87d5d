"""GET /scanner serves the built gate page from STATIC_DIR/scanner, and says how to build it when it is missing."""
from __future__ import annotations

import pytest

from orchestrator_service.entrypoints.scanner_page import scanner_blueprint
from orchestrator_service.settings import ROOT, OrchestratorSettings
from trcommon.web import create_flask_app


def client_for(static_dir):
    app = create_flask_app("orchestrator-service", OrchestratorSettings())
    app.register_blueprint(scanner_blueprint(static_dir))
    return app.test_client()


@pytest.fixture
def built(tmp_path):
    page = tmp_path / "scanner"
    page.mkdir()
    (page / "index.html").write_text('<!doctype html><script src="/scanner/static/scanner.js"></script>')
    (page / "scanner.js").write_text("console.log('gate')")
    return tmp_path


def test_the_page_is_found_under_build_static_of_the_repository_by_default():
    assert OrchestratorSettings().static_dir == ROOT / "build" / "static"
    assert (ROOT / "web" / "scanner" / "package-lock.json").is_file()


def test_without_a_build_the_page_answers_503_in_the_error_format_saying_to_run_make_static(tmp_path):
    for path in ("/scanner", "/scanner/static/scanner.js"):
        r = client_for(tmp_path / "nothing-here").get(path)
        assert r.status_code == 503, path
        assert r.get_json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert "make static" in r.get_json()["error"]["message"]


def test_the_built_page_and_its_script_are_served_with_a_same_origin_policy(built):
    client = client_for(built)
    page = client.get("/scanner")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b"/scanner/static/scanner.js" in page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-cache"
    script = client.get("/scanner/static/scanner.js")
    assert script.status_code == 200 and script.data == b"console.log('gate')"
    assert script.mimetype in ("text/javascript", "application/javascript")


def test_unknown_assets_and_paths_outside_the_page_folder_are_404(built):
    (built / "secret.txt").write_text("not part of the page")
    client = client_for(built)
    for path in ("/scanner/static/nope.js", "/scanner/static/../secret.txt", "/scanner/static/%2e%2e/secret.txt"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.get_json()["error"]["code"]
