"""Cases 11 and 12 of the reliability cases (docs/security.md): a dependency slower than the orchestrator's
internal client timeout, and a reply lost after the dependency committed. A small TCP proxy stands between an
extra orchestrator API and order-service or user-service; it only forwards, delays or drops bytes."""
from __future__ import annotations

import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from e2e_support import (Api, balance, order_row, register_and_login, seat_row, topup, wait_until)

# The extra orchestrator's deadline per internal call (INTERNAL_TIMEOUT_SECONDS, trcommon.settings); a retried
# idempotent call may spend it twice.
CLIENT_TIMEOUT = 0.5
SLOW_REPLY = 2.0


class Proxy:
    """A TCP proxy to 127.0.0.1:`upstream`. `delay` holds each reply that long before passing it on (only replies
    to requests containing `delay_match`, when set);
    `reset_after` > 0 makes the next replies to requests containing `reset_match` vanish: the request reaches the
    service, its reply is read and thrown away, and the caller's connection is reset."""

    def __init__(self, upstream: int):
        self.upstream = upstream
        self.delay = 0.0
        self.delay_match = b""
        self.reset_match = b""
        self.reset_after = 0
        self.resets = 0
        self.delayed = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            self._sockets += [client, upstream]
            doomed, slow = threading.Event(), threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, doomed, slow), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client, doomed, slow), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, doomed: threading.Event,
                  slow: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if self.delay and (not self.delay_match or self.delay_match in data):
                    slow.set()
                if self.reset_match and self.reset_match in data:
                    with self._lock:
                        if self.reset_after > 0:
                            self.reset_after -= 1
                            doomed.set()
                upstream.sendall(data)
        except OSError:
            pass
        _close(upstream)

    def _replies(self, upstream: socket.socket, client: socket.socket, doomed: threading.Event,
                 slow: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if doomed.is_set():
                    # The service has answered, so it has committed: the caller never hears it.
                    self.resets += 1
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                if slow.is_set():
                    slow.clear()
                    self.delayed += 1
                    time.sleep(self.delay)
                client.sendall(data)
        except OSError:
            pass
        _close(client)
        _close(upstream)

    def close(self) -> None:
        self._listener.close()
        for s in self._sockets:
            _close(s)


def _close(s: socket.socket) -> None:
    try:
        s.close()
    except OSError:
        pass


@pytest.fixture
def proxied_api(api, extra_process):
    """An extra orchestrator API whose calls to one service go through a Proxy, with a short client timeout."""
    proxies: list[Proxy] = []

    def start(service_url_variable: str, upstream_port: int) -> tuple[Api, Proxy]:
        proxy = Proxy(upstream_port)
        proxies.append(proxy)
        s = extra_process("orchestrator-service", **{service_url_variable: proxy.url,
                                                      "INTERNAL_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT)})
        s.wait_healthy(30)
        return Api(s.base_url, api.users), proxy

    yield start
    for proxy in proxies:
        proxy.close()


def ledger(engines, user_id: str) -> list[tuple[str, int]]:
    with engines["user-service"].connect() as conn:
        return [(r.reference, r.amount) for r in conn.execute(
            sa.text("SELECT reference, amount FROM credit_ledger WHERE user_id = :u AND account = 'spendable' "
                    "ORDER BY created_at"), {"u": user_id})]


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


# Every reply slow: /pay fails before the debit (begin-payment). Only the final transition slow: after it.
@pytest.mark.parametrize("slow_replies", [b"", b"/transition"], ids=["every-reply", "after-the-debit"])
def test_a_slow_order_service_makes_pay_fail_cleanly_in_bounded_time_and_nobody_is_charged_twice(
        api, stack, proxied_api, fresh_event, engines, slow_replies):
    slow_api, proxy = proxied_api("ORDER_SERVICE_URL", stack.ports.order)
    n = 8
    ev = fresh_event(seats=n, price=40)
    fans = [register_and_login(api) for _ in range(n)]
    for fan in fans:
        topup(api, fan.user_id, 100)
    orders = [api.post("/reserve", fan.token, json={"seat_id": seat}).json()["order_id"]
              for fan, seat in zip(fans, ev.seat_ids)]

    proxy.delay, proxy.delay_match = SLOW_REPLY, slow_replies

    def timed_pay(i: int):
        started = time.perf_counter()
        r = slow_api.post("/pay", fans[i].token, json={"order_id": orders[i]})
        return time.perf_counter() - started, r

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(timed_pay, range(n)))
    proxy.delay = 0.0
    latencies = [t for t, _ in results]
    failed = [r for _, r in results if r.status_code != 200]
    clean = [r for r in failed if r.status_code in (503, 504) and r.json().get("error", {}).get("code")]
    share = len(clean) / len(failed) if failed else 1.0
    print(f"\nslow order-service ({SLOW_REPLY:.1f} s replies to {slow_replies.decode() or 'every request'}, "
          f"client timeout {CLIENT_TIMEOUT} s; {proxy.delayed} replies held): /pay p99 "
          f"{p99(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; failed {len(failed)} of {n}, "
          f"of which cleanly with 503/504 {share:.0%}")

    # The fan retries through the healthy path: the same order (the same keys) completes or is given back.
    retried = [api.post("/pay", fan.token, json={"order_id": o}) for fan, o in zip(fans, orders)]
    for o in orders:
        wait_until(lambda o=o: order_row(engines, o)["status"] in ("CONFIRMED", "FAILED", "EXPIRED"), 30)
    duplicate_orders, double_debits = 0, 0
    for fan, seat, order_id, r in zip(fans, ev.seat_ids, orders, retried):
        with engines["order-service"].connect() as conn:
            duplicate_orders += conn.execute(sa.text("SELECT count(*) FROM orders WHERE seat_id = :s"),
                                             {"s": seat}).scalar_one() - 1
        rows = ledger(engines, fan.user_id)
        debits = [ref for ref, amount in rows if amount < 0]
        double_debits += max(0, len(debits) - 1)
        status = order_row(engines, order_id)["status"]
        spent = 100 - balance(api, fan.token)
        assert spent == (40 if status == "CONFIRMED" else 0), (order_id, status, rows, r.text)
        assert (seat_row(engines, seat)["status"] == "SOLD") == (status == "CONFIRMED")
    confirmed = sum(order_row(engines, o)["status"] == "CONFIRMED" for o in orders)
    print(f"after the retries: confirmed {confirmed} of {n}; duplicate orders {duplicate_orders}; "
          f"double debits {double_debits}")
    assert len(failed) == n, "every reply was slower than the client timeout: no /pay could have succeeded"
    assert share == 1.0, [(r.status_code, r.text) for r in failed]
    assert max(latencies) < 2 * CLIENT_TIMEOUT * 3 + 2, latencies
    assert duplicate_orders == 0 and double_debits == 0


@pytest.mark.parametrize("lost_replies", [1, 2])
def test_a_debit_reply_lost_after_the_commit_charges_the_fan_exactly_once(
        api, stack, proxied_api, fresh_event, engines, lost_replies):
    lossy_api, proxy = proxied_api("USER_SERVICE_URL", stack.ports.user)
    ev = fresh_event(seats=1, price=60)
    fan = register_and_login(api)
    topup(api, fan.user_id, 200)
    order_id = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).json()["order_id"]

    proxy.reset_match, proxy.reset_after = b"/internal/credits/debit", lost_replies
    first = lossy_api.post("/pay", fan.token, json={"order_id": order_id})
    answers = [first]
    if first.status_code != 200:
        # The client's own retry was lost too: the fan's retry gets the stored result.
        assert first.status_code in (503, 504) and first.json()["error"]["code"], first.text
        answers.append(lossy_api.post("/pay", fan.token, json={"order_id": order_id}))
    rows = ledger(engines, fan.user_id)
    debits = [(ref, amount) for ref, amount in rows if amount < 0]
    print(f"\ndebit replies lost after the commit {proxy.resets} (of the {lost_replies} planned): answers "
          f"{[a.status_code for a in answers]}, debits {len(debits)} ({sum(a for _, a in debits)} credits), "
          f"order {order_row(engines, order_id)['status']}")
    assert proxy.resets == lost_replies
    assert answers[-1].status_code == 200 and answers[-1].json()["status"] == "CONFIRMED", answers[-1].text
    assert debits == [(f"order:{order_id}:debit", -60)]
    assert balance(api, fan.token) == 140
    assert order_row(engines, order_id)["status"] == "CONFIRMED"
    assert seat_row(engines, ev.seat_ids[0])["status"] == "SOLD"
