"""The transactional outbox against real PostgreSQL (a scratch database) and RabbitMQ (the test vhost): a row is
published once its transaction committed, never when it rolled back; an unreachable broker leaves rows in place
until a relay can reach one; two relays at once publish each row once; a NOTIFY wakes the relay before its poll."""
import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from trcommon.amqp import PublishFailed, connect
from trcommon.db import drop_database, ensure_database, make_engine
from trcommon.devstack import free_port
from trcommon.outbox import TABLE_DDL, TRIGGER_DDL, OutboxRelay, insert_from, outbox_table
from trcommon.testing import test_database_url as database_url_for, wait_until

outbox = outbox_table(sa.MetaData())


@pytest.fixture(scope="module")
def engine(pg_server_url):
    url = database_url_for(pg_server_url, f"outbox_{uuid.uuid4().hex[:8]}")
    ensure_database(url)
    engine = make_engine(url, pool_size=8, max_overflow=4)
    with engine.begin() as conn:
        for statement in TABLE_DDL + TRIGGER_DDL:
            conn.execute(sa.text(statement))
    yield engine
    engine.dispose()
    drop_database(url)


@pytest.fixture(autouse=True)
def empty_outbox(engine):
    """Each test starts with an empty outbox (the scratch database is this module's alone)."""
    with engine.begin() as conn:
        conn.execute(sa.delete(outbox))


@pytest.fixture
def exchange(amqp_url):
    """A topic exchange of this test with one queue bound to every key: (exchange, queue)."""
    name = f"test.outbox.{uuid.uuid4().hex[:8]}"
    conn = connect(amqp_url, "test-outbox-owner")
    ch = conn.channel()
    ch.exchange_declare(name, "topic", durable=True)
    ch.queue_declare(name, durable=True)
    ch.queue_bind(name, name, routing_key="#")
    conn.close()
    yield name, name
    conn = connect(amqp_url, "test-outbox-owner")
    ch = conn.channel()
    ch.queue_delete(name)
    ch.exchange_delete(name)
    conn.close()


def _received(amqp_url: str, queue: str) -> list[tuple[str, str, dict]]:
    """Every message now in the queue: (AMQP message_id, routing key, body), consumed."""
    conn = connect(amqp_url, "test-outbox-reader")
    try:
        ch, found = conn.channel(), []
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append((props.message_id, method.routing_key, json.loads(body)))
    finally:
        conn.close()


def _write(engine, exchange: str, count: int, *, commit: bool = True) -> list[str]:
    """`count` rows in one transaction (rolled back unless `commit`); their message ids."""
    ids = [f"test:{uuid.uuid4()}" for _ in range(count)]
    rows = sa.select(sa.literal_column("v.id"), sa.literal(exchange), sa.literal("notify.test"),
                     sa.func.jsonb_build_object(sa.cast(sa.literal("id"), sa.Text), sa.literal_column("v.id"))) \
        .select_from(sa.text("unnest(CAST(:ids AS text[])) AS v(id)"))
    with engine.connect() as conn:
        tx = conn.begin()
        conn.execute(insert_from(outbox, rows), {"ids": ids})
        (tx.commit if commit else tx.rollback)()
    return ids


def _unpublished(engine, ids: list[str]) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(outbox)
                            .where(outbox.c.message_id.in_(ids), outbox.c.published_at.is_(None))).scalar_one()


def _drain(relay: OutboxRelay) -> int:
    total = 0
    while (n := relay.relay_once()) > 0:
        total += n
    return total


def test_a_committed_row_is_published_once_confirmed_with_its_message_id_and_key_then_marked(
        engine, exchange, amqp_url):
    name, queue = exchange
    ids = _write(engine, name, 3)
    relay = OutboxRelay(engine, amqp_url, batch_size=1000)
    try:
        _drain(relay)
    finally:
        relay.close()
    got = {m for m, _, _ in _received(amqp_url, queue)}
    assert set(ids) <= got
    assert _unpublished(engine, ids) == 0
    assert all(key == "notify.test" and body == {"id": m}
               for m, key, body in _received(amqp_url, queue) if m in ids)  # nothing left: read once


def test_a_row_written_twice_with_one_message_id_is_kept_once(engine, exchange):
    name, _ = exchange
    message_id = f"test:{uuid.uuid4()}"
    row = sa.select(sa.literal(message_id), sa.literal(name), sa.literal("notify.test"),
                    sa.cast(sa.literal('{"n": 1}'), outbox.c.body.type))
    with engine.begin() as conn:
        conn.execute(insert_from(outbox, row))
        conn.execute(insert_from(outbox, row))
        n = conn.execute(sa.select(sa.func.count()).select_from(outbox)
                         .where(outbox.c.message_id == message_id)).scalar_one()
    assert n == 1


def test_a_row_whose_transaction_rolled_back_is_never_published(engine, exchange, amqp_url):
    name, queue = exchange
    rolled_back = _write(engine, name, 2, commit=False)
    committed = _write(engine, name, 1)
    relay = OutboxRelay(engine, amqp_url)
    try:
        _drain(relay)
    finally:
        relay.close()
    got = {m for m, _, _ in _received(amqp_url, queue)}
    assert set(committed) <= got and not set(rolled_back) & got
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)
                            .where(outbox.c.message_id.in_(rolled_back))).scalar_one() == 0


def test_an_unreachable_broker_leaves_the_rows_then_a_relay_that_reaches_one_publishes_them(
        engine, exchange, amqp_url):
    name, queue = exchange
    ids = _write(engine, name, 3)
    dead = OutboxRelay(engine, f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F", publish_timeout=2)
    try:
        with pytest.raises(PublishFailed):
            dead.relay_once()
        # The loop keeps trying, with backoff, and leaves the rows in place.
        stop = threading.Event()
        loop = threading.Thread(target=dead.run, args=(stop,))
        loop.start()
        time.sleep(1.5)
        stop.set()
        loop.join(15)
        assert not loop.is_alive()
        assert dead.stats["publish_failures"] >= 1 and dead.stats["published"] == 0
    finally:
        dead.close()
    assert _unpublished(engine, ids) == 3
    good = OutboxRelay(engine, amqp_url)
    try:
        _drain(good)
    finally:
        good.close()
    assert set(ids) <= {m for m, _, _ in _received(amqp_url, queue)}
    assert _unpublished(engine, ids) == 0


def test_a_refused_message_stays_unpublished_and_the_others_of_its_batch_are_marked(engine, exchange, amqp_url):
    name, queue = exchange
    good = _write(engine, name, 2)
    # An exchange that does not exist: the broker closes the channel; the row stays for a later attempt.
    lost = _write(engine, f"{name}.missing", 1)
    relay = OutboxRelay(engine, amqp_url, publish_timeout=2)
    try:
        with pytest.raises(PublishFailed):
            relay.relay_once()
        _drain_tolerant(relay)
    finally:
        relay.close()
    assert set(good) <= {m for m, _, _ in _received(amqp_url, queue)}
    assert _unpublished(engine, good) == 0 and _unpublished(engine, lost) == 1


def test_two_relays_at_once_publish_each_row_once(engine, exchange, amqp_url):
    name, queue = exchange
    ids = _write(engine, name, 400)
    relays = [OutboxRelay(engine, amqp_url, batch_size=20, name=f"relay-{i}") for i in range(2)]
    stop = threading.Event()
    loops = [threading.Thread(target=r.run, args=(stop,)) for r in relays]
    for loop in loops:
        loop.start()
    try:
        wait_until(lambda: _unpublished(engine, ids) == 0, 30, what="every row published")
    finally:
        stop.set()
        for loop in loops:
            loop.join(15)
    got = [m for m, _, _ in _received(amqp_url, queue) if m in set(ids)]
    assert sorted(got) == sorted(ids)            # each once
    assert all(r.stats["published"] > 0 for r in relays), [r.stats for r in relays]


def test_a_notify_wakes_the_relay_long_before_its_poll(engine, exchange, amqp_url):
    name, queue = exchange
    relay = OutboxRelay(engine, amqp_url, poll_seconds=30)
    stop = threading.Event()
    loop = threading.Thread(target=relay.run, args=(stop,))
    loop.start()
    try:
        wait_until(lambda: relay._listener is not None, 10, what="the relay listening")
        time.sleep(0.3)                          # the relay is now waiting on its 30 s poll
        started = time.monotonic()
        ids = _write(engine, name, 1)
        wait_until(lambda: _unpublished(engine, ids) == 0, 10, what="the row published")
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        loop.join(15)
    assert set(ids) <= {m for m, _, _ in _received(amqp_url, queue)}


def test_commits_that_follow_a_wake_up_are_published_in_one_batch(engine, exchange, amqp_url):
    name, queue = exchange
    relay = OutboxRelay(engine, amqp_url, poll_seconds=30, gather_seconds=1.0)
    stop = threading.Event()
    loop = threading.Thread(target=relay.run, args=(stop,))
    loop.start()
    try:
        wait_until(lambda: relay._listener is not None, 10, what="the relay listening")
        time.sleep(0.3)
        ids = [i for _ in range(5) for i in _write(engine, name, 1)]      # five commits, one row each
        wait_until(lambda: _unpublished(engine, ids) == 0, 10, what="the rows published")
        assert relay.stats["batches"] == 1 and relay.stats["published"] == 5
    finally:
        stop.set()
        loop.join(15)
    assert set(ids) <= {m for m, _, _ in _received(amqp_url, queue)}


def test_published_rows_are_pruned_after_the_retention_and_unpublished_ones_never(engine, exchange, amqp_url):
    name, _ = exchange
    old, fresh, waiting = _write(engine, name, 1), _write(engine, name, 1), _write(engine, name, 1)
    with engine.begin() as conn:
        conn.execute(sa.update(outbox).where(outbox.c.message_id.in_(old))
                     .values(published_at=sa.func.now() - timedelta(days=8)))
        conn.execute(sa.update(outbox).where(outbox.c.message_id.in_(fresh)).values(published_at=sa.func.now()))
        conn.execute(sa.update(outbox).where(outbox.c.message_id.in_(waiting))
                     .values(created_at=sa.func.now() - timedelta(days=30)))
    relay = OutboxRelay(engine, amqp_url, retention=timedelta(days=7))
    try:
        assert relay.prune() >= 1
    finally:
        relay.close()
    with engine.connect() as conn:
        left = set(conn.execute(sa.select(outbox.c.message_id)
                                .where(outbox.c.message_id.in_(old + fresh + waiting))).scalars())
    assert left == set(fresh + waiting)


def _drain_tolerant(relay: OutboxRelay) -> None:
    for _ in range(100):
        try:
            if relay.relay_once() == 0:
                return
        except PublishFailed:
            return


def test_an_insert_that_adds_a_row_notifies_at_commit_and_one_that_adds_nothing_does_not(engine, exchange):
    import psycopg

    from trcommon.outbox import CHANNEL

    name, _ = exchange
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")

        def heard() -> int:
            return len(list(listener.notifies(timeout=0.5)))

        ids = _write(engine, name, 2)
        assert heard() == 1                       # one per statement
        _write(engine, name, 1, commit=False)
        assert heard() == 0                       # rolled back: nothing delivered
        again = sa.select(sa.literal(ids[0]), sa.literal(name), sa.literal("notify.test"),
                          sa.cast(sa.literal("{}"), outbox.c.body.type))
        with engine.begin() as conn:
            conn.execute(insert_from(outbox, again))
        assert heard() == 0                       # already there: nothing added, nobody woken
