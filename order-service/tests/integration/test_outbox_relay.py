"""The order-outbox-relay process as deployed: it publishes what order-service's transactions wrote, to the real
broker, and stops cleanly on SIGTERM; a relay whose database is unreachable keeps trying without crashing."""
import signal
import threading
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from order_service.adapters.tables import outbox
from trcommon.db import make_engine
from trcommon.devstack import free_port
from trcommon.outbox import OutboxRelay
from trcommon.testing import ChildProcess, wait_until


def test_the_relay_process_publishes_a_confirmed_orders_notification_and_stops_on_sigterm(
        client, container, database_url, amqp_url, tmp_path):
    proc = ChildProcess(tmp_path / "relay.log", {
        "DATABASE_URL": database_url, "AMQP_URL": amqp_url, "ENVIRONMENT": "test", "LOG_LEVEL": "INFO",
        "STARTUP_WAIT_SECONDS": "10", "OUTBOX_POLL_SECONDS": "30"}, module="order_service.entrypoints.outbox_relay")
    try:
        proc.wait_for(lambda: any(e.get("message") == "outbox relay started" for e in proc.json_lines()))
        order_id = str(uuid.uuid4())
        held_until = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
        assert client.post("/internal/orders", json={
            "order_id": order_id, "user_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()), "amount": 5, "held_until": held_until}).status_code == 201
        assert client.post(f"/internal/orders/{order_id}/transition", json={"to": "CONFIRMED"}).status_code == 200

        def published() -> bool:
            with container.engine.connect() as conn:
                return conn.execute(sa.select(outbox.c.published_at).where(
                    outbox.c.message_id == f"order:{order_id}:confirmed")).scalar_one() is not None
        # Woken by the NOTIFY: well before its 30 s poll.
        wait_until(published, 10, what="the notification published")
    finally:
        code = proc.stop(signal.SIGTERM)
    assert code == 0, proc.log()
    messages = [line["message"] for line in proc.json_lines()]
    assert messages[-2:] == ["outbox relay stopped", "stopped"], messages


def test_a_relay_whose_database_is_unreachable_backs_off_and_stops_when_asked(amqp_url):
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/orders_db", 1, 0)
    relay = OutboxRelay(engine, amqp_url)
    stop = threading.Event()
    loop = threading.Thread(target=relay.run, args=(stop,))
    loop.start()
    try:
        wait_until(lambda: relay.stats["database_failures"] >= 2, 10, what="two failed attempts")
    finally:
        stop.set()
        loop.join(15)
        engine.dispose()
    assert not loop.is_alive() and relay.stats["published"] == 0
