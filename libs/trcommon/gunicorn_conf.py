"""gunicorn's settings for our HTTP services (`gunicorn -c python:trcommon.gunicorn_conf …`).

A request that gunicorn itself refuses before any application code runs (a malformed request line, method, HTTP
version or header, a request line over 4094 bytes, more than 100 headers, a bad chunk size) is answered in the
project's error format, `{"error": {"code", "message"}}` as JSON, instead of gunicorn's HTML page: clients of the
public API parse one format whatever refused them. gunicorn writes that answer through `gunicorn.util.write_error`
only; it is replaced here, in the arbiter, before any worker is forked. gunicorn's own log messages go to the
process's JSON log lines (`JsonLogs`).
"""
from __future__ import annotations

import orjson
from gunicorn import glogging, util

from trcontracts.base import CommonError

# gunicorn's reason phrases, as codes of our error map where one fits.
_CODES = {400: CommonError.INVALID_INPUT, 403: CommonError.FORBIDDEN, 500: CommonError.INTERNAL_ERROR}


def error_reply(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP/1.1 answer gunicorn sends for a request it refused (the connection is closed after it)."""
    code = _CODES.get(status) or reason.upper().replace(" ", "_")
    body = orjson.dumps({"error": {"code": code, "message": message or reason}}, option=orjson.OPT_APPEND_NEWLINE)
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def _write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, error_reply(status_int, reason, mesg))


util.write_error = _write_error


class JsonLogs(glogging.Logger):
    """gunicorn's own messages (a refused request is a WARNING) through the process's logging, i.e. the JSON lines
    of trcommon.logs that the app configures in each worker, instead of gunicorn's text handlers, whose format
    wants the process id our logging does not look up (each refused request printed a "Logging error" traceback).
    The access log stays off: the app writes its own."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.handlers[:] = []
            log.propagate = True


logger_class = JsonLogs
