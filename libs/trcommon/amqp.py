"""AMQP helpers: apply rabbitmq/definitions.json to a broker, wait for it, and carry the request id."""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from pathlib import Path

import pika
import pika.exceptions

from .logs import REQUEST_ID_METADATA, current_request_id

log = logging.getLogger("trcommon.amqp")

DEFINITIONS = Path(__file__).resolve().parents[2] / "rabbitmq" / "definitions.json"


# On every broker connection: the kernel probes a connection that has been silent for a minute, so a peer that
# vanished without closing it (a dead host, a dropped NAT entry) is noticed even when neither side speaks.
TCP_KEEPALIVE = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 3}


def connect(url: str, name: str = "ticketremaster", heartbeat: int = 30) -> pika.BlockingConnection:
    """A blocking connection; `heartbeat` seconds (0: none) must suit how often its owner calls into pika, since
    a BlockingConnection answers heartbeats only inside a blocking call."""
    return pika.BlockingConnection(_parameters(url, name, heartbeat))


def wait_for_broker(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            connect(url, "startup-probe").close()
            return
        except pika.exceptions.AMQPError as exc:
            if time.monotonic() >= deadline:
                raise SystemExit(f"RabbitMQ at {pika.URLParameters(url).host} is unreachable: {exc!r}") from None
            log.info("waiting for RabbitMQ")
            time.sleep(1)


def load_definitions(path: Path = DEFINITIONS) -> dict:
    return json.loads(Path(path).read_text())


def apply_definitions(url: str, path: Path = DEFINITIONS) -> None:
    """Declare the exchanges, queues and bindings of definitions.json in the vhost of `url`.

    The broker loads the same file at boot in Docker; this applies it to a running broker (local mode, tests).
    Declaring is idempotent; a queue that exists with other arguments is a clear error, not a silent drift.
    """
    defs = load_definitions(path)
    conn = connect(url, "apply-definitions")
    try:
        ch = conn.channel()
        for ex in defs.get("exchanges", []):
            ch.exchange_declare(ex["name"], ex["type"], durable=ex["durable"], auto_delete=ex["auto_delete"],
                                internal=ex.get("internal", False), arguments=ex.get("arguments") or None)
        for q in defs.get("queues", []):
            try:
                ch.queue_declare(q["name"], durable=q["durable"], auto_delete=q["auto_delete"],
                                 arguments=q.get("arguments") or None)
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise SystemExit(f"queue {q['name']} exists with other arguments than rabbitmq/definitions.json "
                                 f"({exc.reply_text}); delete it and run again") from None
        for b in defs.get("bindings", []):
            if b["destination_type"] == "queue":
                ch.queue_bind(b["destination"], b["source"], routing_key=b["routing_key"],
                              arguments=b.get("arguments") or None)
            else:
                ch.exchange_bind(b["destination"], b["source"], routing_key=b["routing_key"],
                                 arguments=b.get("arguments") or None)
    finally:
        conn.close()


def message_headers(**extra) -> dict:
    return {REQUEST_ID_METADATA: current_request_id(), **extra}


class ConfirmedPublisher:
    """Publishes persistent JSON messages with publisher confirms, pipelined.

    One connection and one confirm-mode channel per publisher, driven by its own I/O thread (pika's
    SelectConnection). A request thread hands its message to that thread and waits for the broker's answer to
    it; meanwhile other threads' messages go out on the same channel, so many are in flight at once and the
    broker confirms them in batches (an ack with `multiple`), instead of one round trip and one quorum-queue
    commit per message. `publish` returns only after the broker confirmed its message; a nack (e.g. a quorum
    queue's `x-overflow: reject-publish`), an unroutable message, no answer within `timeout` or a broker that
    cannot be reached raises PublishFailed so the caller can compensate. Since the I/O thread always runs, the
    connection answers heartbeats, idle or not.
    """

    def __init__(self, url: str, exchange: str, routing_key: str, name: str = "publisher", heartbeat: int = 30,
                 timeout: float = 5.0):
        self._params = _parameters(url, name, heartbeat)
        self._exchange = exchange
        self._routing_key = routing_key
        self._timeout = timeout
        self._lock = threading.Lock()
        self._link: _PublishLink | None = None

    def _live_link(self) -> _PublishLink:
        with self._lock:
            if self._link is None or not self._link.usable:
                if self._link is not None:
                    self._link.close()
                self._link = _PublishLink(self._params, self._exchange, self._routing_key, self._timeout)
            return self._link

    def _drop(self, link: _PublishLink) -> None:
        with self._lock:
            if self._link is link:
                self._link = None
        link.close()

    def publish(self, body: dict, *, expiration_ms: int | None = None, message_id: str | None = None,
                routing_key: str | None = None) -> None:
        """`routing_key`: this message's, instead of the publisher's own (an outbox relay publishes each row with
        its own key on one exchange)."""
        props = pika.BasicProperties(
            content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent,
            expiration=str(expiration_ms) if expiration_ms is not None else None,
            message_id=message_id, headers=message_headers())
        payload = json.dumps(body).encode()
        # One retry on a fresh connection: a connection lost before the broker answered is normal after a broker
        # restart, and a duplicate message is harmless because every consumer of ours is idempotent.
        for attempt in (1, 2):
            link = self._live_link()
            try:
                link.publish(payload, props, routing_key)
                return
            except _Refused as exc:
                # A quorum queue that overflowed (x-overflow reject-publish) goes on refusing a channel it has
                # refused once, even after it has room again; a new channel is judged afresh.
                self._drop(link)
                raise PublishFailed(f"broker refused the message: {exc}") from exc
            except _LinkLost as exc:
                self._drop(link)
                if attempt == 2:
                    raise PublishFailed(f"broker unavailable: {exc}") from exc

    def check(self) -> None:
        """Raises PublishFailed when no connection to the broker can be opened now."""
        link = self._live_link()
        try:
            link.wait_open()
        except _LinkLost as exc:
            self._drop(link)
            raise PublishFailed(f"broker unavailable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            link, self._link = self._link, None
        if link is not None:
            link.close()


def _parameters(url: str, name: str, heartbeat: int) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.client_properties = {"connection_name": name}
    params.heartbeat = heartbeat
    params.tcp_options = TCP_KEEPALIVE
    params.blocked_connection_timeout = 30
    params.socket_timeout = 5
    return params


class _LinkLost(Exception):
    """The connection could not be opened or was lost before the broker answered."""


class _Refused(Exception):
    """The broker nacked the message or returned it as unroutable."""


# The header that ties a returned (unroutable) message to its publish; never read by consumers.
_SEQ_HEADER = "x-publish-seq"


class _PublishLink:
    """One SelectConnection with one confirm-mode channel, run by its own daemon thread. Every pika call happens
    on that thread; other threads reach it only through its queue of outgoing messages and their own waiters."""

    def __init__(self, params: pika.URLParameters, exchange: str, routing_key: str, timeout: float):
        self._exchange = exchange
        self._routing_key = routing_key
        self._timeout = timeout
        self._opened = threading.Event()
        self._failure: str | None = None
        self._channel = None
        self._closing = False
        self._next_tag = 1
        self._pending: dict[int, _Waiter] = {}
        self._returned: set[int] = set()
        self._outgoing: deque[tuple[bytes, pika.BasicProperties, str, _Waiter]] = deque()
        self._wake_pending = False
        self._conn = pika.SelectConnection(params, on_open_callback=self._on_open,
                                           on_open_error_callback=self._on_open_error,
                                           on_close_callback=self._on_closed)
        self._thread = threading.Thread(target=self._run, name="amqp-publisher", daemon=True)
        self._thread.start()

    @property
    def usable(self) -> bool:
        return self._failure is None and not self._closing

    # --- request threads ---

    def wait_open(self) -> None:
        if not self._opened.wait(self._timeout):
            raise _LinkLost("no connection to the broker within the deadline")
        if self._failure is not None:
            raise _LinkLost(self._failure)

    def publish(self, payload: bytes, props: pika.BasicProperties, routing_key: str | None = None) -> None:
        self.wait_open()
        done = _Waiter()
        key = self._routing_key if routing_key is None else routing_key
        # Queued for the I/O thread, which is woken once for all that queued meanwhile (under load one wake-up
        # sends many messages; a wake-up per message cost a pipe write, a loop pass and a timer each).
        self._outgoing.append((payload, props, key, done))
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._conn.ioloop.add_callback_threadsafe(self._send_queued)
            except Exception as exc:  # noqa: BLE001 - the loop has stopped: the connection is gone
                raise _LinkLost(repr(exc)) from exc
        if self._failure is not None:
            # The link failed while the message was queued. Answered already: that answer stands (a failure is
            # raised by wait). Not answered: the I/O thread may already have stopped and would never send it, so
            # the caller retries on a fresh link at once.
            if not done.wait(0):
                raise _LinkLost(self._failure)
            return
        if not done.wait(self._timeout):
            raise _LinkLost("the broker did not confirm within the deadline")

    def close(self) -> None:
        self._closing = True
        try:
            self._conn.ioloop.add_callback_threadsafe(self._close_now)
        except Exception:  # noqa: BLE001 - already stopped
            pass

    # --- the I/O thread ---

    def _run(self) -> None:
        try:
            self._conn.ioloop.start()
        except Exception as exc:  # noqa: BLE001 - a dead loop fails what is pending, below
            log.warning("publisher I/O loop stopped", extra={"error": repr(exc)})
        self._failure = self._failure or "the publisher's connection ended"
        self._fail_all(self._failure)

    def _on_open(self, conn) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel) -> None:
        self._channel = channel
        channel.add_on_return_callback(self._on_return)
        channel.add_on_close_callback(self._on_channel_closed)
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._opened.set())

    def _on_open_error(self, _conn, err) -> None:
        self._failure = f"cannot connect: {err!r}"
        self._opened.set()
        self._conn.ioloop.stop()

    def _on_channel_closed(self, _channel, reason) -> None:
        self._failure = self._failure or f"channel closed: {reason!r}"
        self._fail_all(self._failure)
        if self._conn.is_open:
            self._conn.close()

    def _on_closed(self, _conn, reason) -> None:
        self._failure = self._failure or f"connection closed: {reason!r}"
        self._opened.set()
        self._fail_all(self._failure)
        self._conn.ioloop.stop()

    def _close_now(self) -> None:
        self._failure = self._failure or "closed"
        if self._conn.is_open:
            self._conn.close()
        elif not self._conn.is_closing:
            self._conn.ioloop.stop()

    def _send_queued(self) -> None:
        # Cleared before the queue is read: a message queued after the last read below finds it clear and wakes
        # the loop again; one queued before is sent now.
        self._wake_pending = False
        outgoing = self._outgoing
        while outgoing:
            self._send(*outgoing.popleft())

    def _send(self, payload: bytes, props: pika.BasicProperties, routing_key: str, done: _Waiter) -> None:
        if self._failure is not None or self._channel is None or not self._channel.is_open:
            done.fail(_LinkLost(self._failure or "channel not open"))
            return
        tag = self._next_tag
        self._next_tag += 1
        props.headers = {**(props.headers or {}), _SEQ_HEADER: tag}
        self._pending[tag] = done
        try:
            self._channel.basic_publish(self._exchange, routing_key, payload, props, mandatory=True)
        except Exception as exc:  # noqa: BLE001 - the channel or socket is gone
            self._pending.pop(tag, None)
            done.fail(_LinkLost(repr(exc)))

    def _on_return(self, _channel, _method, props, _body) -> None:
        tag = (props.headers or {}).get(_SEQ_HEADER)
        if isinstance(tag, int):
            self._returned.add(tag)      # its ack follows; the publish fails then

    def _on_confirm(self, frame) -> None:
        method = frame.method
        last = method.delivery_tag
        tags = sorted(t for t in self._pending if t <= last) if method.multiple else [last]
        acked = isinstance(method, pika.spec.Basic.Ack)
        for tag in tags:
            done = self._pending.pop(tag, None)
            returned = tag in self._returned
            self._returned.discard(tag)
            if done is None:
                continue
            if not acked:
                done.fail(_Refused("nack"))
            elif returned:
                done.fail(_Refused("unroutable"))
            else:
                done.succeed()

    def _fail_all(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for done in pending.values():
            done.fail(_LinkLost(why))
        while self._outgoing:
            self._outgoing.popleft()[3].fail(_LinkLost(why))


class _Waiter:
    """One publish's answer, awaited by its request thread and given once by the I/O thread: a bare lock held until
    then, with none of a Future's condition variable and callbacks."""

    __slots__ = ("_lock", "_error", "_settled")

    def __init__(self):
        self._lock = threading.Lock()
        self._lock.acquire()
        self._error: Exception | None = None
        self._settled = False

    def succeed(self) -> None:
        if not self._settled:
            self._settled = True
            self._lock.release()

    def fail(self, error: Exception) -> None:
        if not self._settled:
            self._settled = True
            self._error = error
            self._lock.release()

    def wait(self, timeout: float) -> bool:
        """False if no answer came within `timeout`; raises the failure it was given."""
        if not self._lock.acquire(timeout=timeout):
            return False
        if self._error is not None:
            raise self._error
        return True


class PublishFailed(Exception):
    pass
