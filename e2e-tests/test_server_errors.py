"""Requests the public edge's HTTP server refuses before any route runs still get the error format."""
import collections
import json
import socket
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from e2e_support import LOG_DIR, log_entries, wait_until


def raw_request(base_url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library would send these) and read the whole answer."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(data)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /events HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),                 # malformed request line
    (b"G\x01T /events HTTP/1.1\r\nHost: x\r\n\r\n", 400),                    # a method that is no token
    (b"GET /events HTTP/9.9\r\nHost: x\r\n\r\n", 400),                       # no such HTTP version
    (b"GET /events HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),      # a space in a header name
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),         # request line over 4094 bytes
    (b"GET /events HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431),
])
def test_a_request_the_server_cannot_parse_is_answered_in_the_error_format(stack, request_bytes, status):
    got, headers, body = raw_request(stack.base_url, request_bytes)
    assert got == status
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] and error["message"]
    assert set(error) <= {"code", "message", "details"}
    if status == 400:
        assert error["code"] == "INVALID_INPUT"


@pytest.mark.parametrize("path, status", [("/reserve", 401), ("/auth/login", 413)])
def test_an_answer_given_before_the_body_is_read_reaches_the_client(api, path, status):
    """A 401 (no token) or a 413 (over MAX_BODY_BYTES) is answered without reading the body; the rest of the body
    is read after it, so the client gets the answer, not a connection reset."""
    answers = collections.Counter()
    for size in (70_000, 1_000_000):
        for _ in range(15):
            try:
                r = api.post(path, data=b"{" + b" " * size + b"}", headers={"Content-Type": "application/json"})
                answers[(r.status_code, r.headers.get("Content-Type"))] += 1
            except requests.ConnectionError:
                answers["reset"] += 1
    assert answers == {(status, "application/json"): 30}


def test_a_refused_request_is_one_json_warning_in_the_edges_log_never_a_logging_traceback(stack):
    marker = uuid.uuid4().hex
    got, _, _ = raw_request(stack.base_url, f"GET /events HTTP/1.1 {marker}\r\nHost: x\r\n\r\n".encode())
    assert got == 400
    log_file = LOG_DIR / "orchestrator-service.log"
    warning = wait_until(lambda: [e for e in log_entries("orchestrator-service")
                                  if e.get("logger") == "gunicorn.error" and marker in str(e.get("message"))],
                         10, what="the refusal's log line")
    assert warning[0]["level"] == "WARNING" and warning[0]["service"] == "orchestrator-service"
    assert "Logging error" not in log_file.read_text(errors="replace")
