"""The internal HTTP client against real local HTTP servers: one whose first answer is lost, one that records the
raw request target of every call (what really went over the wire)."""
import json
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest
from pydantic import BaseModel

from trcommon.devstack import free_port
from trcommon.errors import AppError, DependencyUnavailable, InvalidInput
from trcommon.http_client import ServiceClient
from trcommon.testing import StandIn
from trcontracts import orders, users
from trcontracts.base import CommonError, Route


class Key(BaseModel):
    key: str


class Applied(BaseModel):
    key: str
    request_id: str | None
    token: str | None


KEYED_WRITE = Route("POST", "/x", Applied, body=Key, idempotent=True)
UNKEYED_WRITE = Route("POST", "/x", Applied, body=Key, idempotent=False)


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


class Recorder:
    """Records each request as it went over the wire and answers with `answer`."""

    def __init__(self):
        self.answer = (404, {"error": {"code": "ORDER_NOT_FOUND", "message": "no such order"}})
        self.server = StandIn(lambda *_: self.answer)
        self.client = ServiceClient("recorder", self.server.url, "t", timeout=2)

    @property
    def seen(self) -> list:
        return [(r["method"], r["path"], json.loads(r["body"]) if r["body"] else None) for r in self.server.requests]


@pytest.fixture
def recorder():
    recorder = Recorder()
    yield recorder
    recorder.server.close()


def test_a_reply_lost_after_the_commit_is_retried_and_applied_once(server):
    client = ServiceClient("flaky", server, "secret-token", timeout=2)
    assert client.call(KEYED_WRITE, {"key": "k1"}).key == "k1"
    assert Flaky.calls == 2 and len(Flaky.applied) == 1
    assert Flaky.applied["k1"]["token"] == "secret-token"


def test_without_retries_a_lost_reply_is_a_clean_503(server):
    client = ServiceClient("flaky", server, "t", timeout=2, attempts=1)
    with pytest.raises(DependencyUnavailable) as exc:
        client.call(KEYED_WRITE, {"key": "k2"})
    assert exc.value.status == 503


def test_an_unreachable_service_is_503_after_the_retry():
    with pytest.raises(DependencyUnavailable) as exc:
        ServiceClient("gone", f"http://127.0.0.1:{free_port()}", "t", timeout=1).health()
    assert exc.value.code == CommonError.SERVICE_UNAVAILABLE     # refused at once: down, not slow


def test_a_write_not_marked_idempotent_is_not_repeated(server):
    client = ServiceClient("flaky", server, "t", timeout=2)
    with pytest.raises(DependencyUnavailable):
        client.call(UNKEYED_WRITE, {"key": "k3"})          # e.g. register: a repeat would answer EMAIL_TAKEN
    assert Flaky.calls == 1


class KeptAlive(Flaky):
    """Flaky over HTTP/1.1 keep-alive: a connection that answered once is reused by the client."""

    protocol_version = "HTTP/1.1"


@pytest.fixture
def kept_alive_server():
    KeptAlive.applied, KeptAlive.calls = {}, 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), KeptAlive)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_a_write_not_marked_idempotent_is_not_repeated_on_a_reused_connection(kept_alive_server):
    """A kept-alive connection that dies after the server applied the request looks, to an HTTP client, like a
    stale connection; some clients then send the request again by themselves. An unkeyed write must not be."""
    client = ServiceClient("flaky", kept_alive_server, "t", timeout=2)
    assert client.call(KEYED_WRITE, {"key": "warm-up"}).key == "warm-up"      # leaves a kept-alive connection
    calls = KeptAlive.calls
    with pytest.raises(DependencyUnavailable):
        client.call(UNKEYED_WRITE, {"key": "k5"})
    assert KeptAlive.calls == calls + 1 and "k5" in KeptAlive.applied
    # and a keyed write on a kept-alive connection is repeated once, applied once
    assert client.call(KEYED_WRITE, {"key": "k6"}).key == "k6"
    assert KeptAlive.calls == calls + 3 and len(KeptAlive.applied) == 3


def test_calls_from_many_threads_each_get_their_own_answer(kept_alive_server):
    client = ServiceClient("flaky", kept_alive_server, "t", timeout=5)
    for i in range(40):
        KeptAlive.applied[f"t{i}"] = {"key": f"t{i}", "request_id": None, "token": "t"}   # answered at once

    def one(i):
        return client.call(KEYED_WRITE, {"key": f"t{i}"}).key

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(40))) == [f"t{i}" for i in range(40)]
    client.close()


@pytest.mark.parametrize("order_id", ["x/../y?z=1", "..", "a#b", "50%", "é/ü"])
def test_a_path_parameter_reaches_the_server_as_one_segment(recorder, order_id):
    with pytest.raises(AppError) as err:
        recorder.client.call(orders.BEGIN_PAYMENT, {"user_id": str(uuid.uuid4())}, path={"order_id": order_id})
    assert err.value.code == orders.OrderError.ORDER_NOT_FOUND
    [(method, target, body)] = recorder.seen
    parts = urlsplit(target)
    assert method == "POST" and parts.query == "" and parts.fragment == ""
    assert parts.path.split("/")[:3] == ["", "internal", "orders"] and parts.path.endswith("/begin-payment")
    segments = parts.path.split("/")
    assert len(segments) == 5 and unquote(segments[3]) == order_id
    assert set(body) == {"user_id"}


@pytest.mark.parametrize("user_id", ["9a88645d-0000-4000-8000-000000000001?x=1", "../by-email", "%3F", "a#b"])
def test_a_user_id_in_the_internal_user_path_is_one_escaped_segment(recorder, user_id):
    """A token's subject is what fills GET /internal/users/{user_id}: whatever it holds, one segment, no query."""
    recorder.answer = (404, {"error": {"code": "USER_NOT_FOUND", "message": "no such user"}})
    with pytest.raises(AppError):
        recorder.client.call(users.GET_USER, path={"user_id": user_id})
    [(method, target, _)] = recorder.seen
    parts = urlsplit(target)
    assert method == "GET" and parts.query == "" and parts.fragment == ""
    segments = parts.path.split("/")
    assert segments[:3] == ["", "internal", "users"] and len(segments) == 4
    assert "/" not in segments[3] and unquote(segments[3]) == user_id


def test_a_query_is_sent_as_the_routes_model_dumps_it(recorder):
    user_id = str(uuid.uuid4()).upper()
    recorder.answer = (200, {"orders": []})
    assert recorder.client.call(orders.LIST_ORDERS, query={"user_id": user_id, "status": "PENDING"}).orders == []
    [(method, target, _)] = recorder.seen
    assert method == "GET" and urlsplit(target).path == "/internal/orders"
    assert urlsplit(target).query == f"user_id={user_id.lower()}&limit=50&offset=0&status=PENDING"


def test_an_invalid_body_is_refused_before_any_call_with_the_servers_400(recorder):
    with pytest.raises(InvalidInput) as err:
        recorder.client.call(users.DEBIT, {"user_id": str(uuid.uuid4()), "amount": "50", "reference": "r", "reason": "x"})
    assert err.value.status == 400 and [d["field"] for d in err.value.details] == ["amount"]
    assert recorder.seen == []


def test_a_model_of_another_route_is_a_programming_error(recorder):
    with pytest.raises(TypeError):
        recorder.client.call(orders.TRANSITION, orders.BeginPaymentBody(user_id=uuid.uuid4()), path={"order_id": "o"})
    with pytest.raises(TypeError):
        recorder.client.call(orders.GET_ORDER, path={"order": "o"})
    assert recorder.seen == []


def test_an_answer_that_is_not_the_routes_model_is_a_502(recorder):
    recorder.answer = (200, {"order_id": "o1"})
    with pytest.raises(AppError) as err:
        recorder.client.call(orders.GET_ORDER, path={"order_id": "o1"})
    assert (err.value.status, err.value.code) == (502, "BAD_GATEWAY")


@pytest.fixture
def silent_server():
    """Accepts connections and reads requests but never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for conn in accepted:
        conn.close()


@pytest.mark.parametrize("route, attempts", [(UNKEYED_WRITE, 1), (KEYED_WRITE, 2)])
def test_a_service_that_never_answers_is_a_503_timeout_at_the_deadline_of_each_attempt(silent_server, route,
                                                                                        attempts):
    client = ServiceClient("silent", silent_server, "t", timeout=5)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as exc:
        client.call(route, {"key": "k4"}, timeout=0.3)
    elapsed = time.monotonic() - started
    assert (exc.value.status, exc.value.code) == (503, CommonError.DEPENDENCY_TIMEOUT)
    assert 0.3 * attempts <= elapsed < 0.3 * attempts + 1.0
