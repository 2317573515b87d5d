"""Requests the public edge's HTTP server refuses before any route runs, and answers given before a body is read."""
import collections
import socket
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from e2e_support import log_entries, wait_until


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
    (b"GET /events/%s HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),                    # malformed request line
    (b"G\x01T /events/%s HTTP/1.1\r\nHost: x\r\n\r\n", 400),                       # a method that is no token
    (b"GET /events/%s HTTP/9.9\r\nHost: x\r\n\r\n", 400),                          # no such HTTP version
    (b"GET /events/%s HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),         # a space in a header name
    (b"GET /events/%s?" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),   # a request line over 16 KB
    (b"GET /events/%s HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n", 431),  # a head over 16 KB
])
def test_a_request_the_server_cannot_parse_is_refused_before_any_route_and_the_edge_keeps_serving(
        stack, api, request_bytes, status):
    """The edge's HTTP server (granian) refuses these itself with a bare 4xx and closes the connection; no route
    and no service behind the edge sees them (README, Architecture: the error format is the API's, and these never
    reach it)."""
    marker = str(uuid.uuid4())
    got, headers, body = raw_request(stack.base_url, request_bytes.replace(b"%s", marker.encode(), 1))
    assert got == status
    assert headers.get("connection") == "close" and body == b""
    # The edge keeps serving, and a request that does reach it is in its log (so the refused one would be too).
    control = str(uuid.uuid4())
    assert api.get(f"/events/{control}").status_code == 404
    wait_until(lambda: [e for e in log_entries("orchestrator-service") if control in str(e)], 10,
               what="the control request's log line")
    for service in ("orchestrator-service", "event-service"):
        assert [e for e in log_entries(service) if marker in str(e)] == [], service


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
