"""The gate page (`GET /scanner`) and its bundled script and style (`/scanner/static/<file>`), as `make static`
built them from web/scanner into STATIC_DIR/scanner. Everything the page loads comes from here: no CDN.

A missing build is a 503 in the error format that says how to make it, not a 500."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

from trcommon.errors import DependencyUnavailable

PAGE_FOLDER = "scanner"
PAGE = "index.html"
# The page talks only to this origin; the camera is its own, and nothing may frame it.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                               "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Permissions-Policy": "camera=(self)",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class PageNotBuilt(DependencyUnavailable):
    def __init__(self):
        super().__init__("the scanner page is not built: run `make static`")


def scanner_blueprint(static_dir: Path) -> Blueprint:
    bp = Blueprint("scanner", __name__)
    folder = Path(static_dir) / PAGE_FOLDER

    def built() -> Path:
        if not (folder / PAGE).is_file():
            raise PageNotBuilt()
        return folder

    def serve(filename: str):
        # The file names do not change between builds: the browser asks again each time (a 304 when unchanged).
        reply = send_from_directory(built(), filename, max_age=0)
        reply.headers["Cache-Control"] = "no-cache"
        reply.headers.update(HEADERS)
        return reply

    @bp.get("/scanner")
    def page():
        return serve(PAGE)

    @bp.get("/scanner/static/<path:filename>")
    def asset(filename: str):
        return serve(filename)

    return bp
