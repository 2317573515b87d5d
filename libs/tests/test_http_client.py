"""The internal HTTP client against a real local HTTP server whose first answer is lost."""
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trcommon.devstack import free_port
from trcommon.errors import DependencyUnavailable
from trcommon.http_client import ServiceClient


class Flaky(BaseHTTPRequestHandler):
    """Applies each POST (counting it by its key, like our idempotent routes) and drops the first reply."""

    applied: dict = {}
    calls = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        first = body["key"] not in self.applied
        self.applied.setdefault(body["key"], {"key": body["key"], "request_id": self.headers.get("X-Request-ID"),
                                              "token": self.headers.get("X-Internal-Token")})
        if first:   # committed, then the connection dies before the answer
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = json.dumps(self.applied[body["key"]]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Flaky.applied, Flaky.calls = {}, 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_a_reply_lost_after_the_commit_is_retried_and_applied_once(server):
    client = ServiceClient("flaky", server, "secret-token", timeout=2)
    assert client.post("/x", {"key": "k1"}, idempotent=True)["key"] == "k1"
    assert Flaky.calls == 2 and len(Flaky.applied) == 1
    assert Flaky.applied["k1"]["token"] == "secret-token"


def test_without_retries_a_lost_reply_is_a_clean_503(server):
    client = ServiceClient("flaky", server, "t", timeout=2, attempts=1)
    with pytest.raises(DependencyUnavailable) as exc:
        client.post("/x", {"key": "k2"}, idempotent=True)
    assert exc.value.status == 503


def test_an_unreachable_service_is_503_after_the_retry():
    with pytest.raises(DependencyUnavailable):
        ServiceClient("gone", f"http://127.0.0.1:{free_port()}", "t", timeout=1).get("/health")


def test_a_write_not_marked_idempotent_is_not_repeated(server):
    client = ServiceClient("flaky", server, "t", timeout=2)
    with pytest.raises(DependencyUnavailable):
        client.post("/x", {"key": "k3"})          # e.g. register: a repeat would answer EMAIL_TAKEN
    assert Flaky.calls == 1
