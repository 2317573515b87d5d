"""The hold timer end to end on the real broker vhost (topology of rabbitmq/definitions.json) and PostgreSQL."""
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

import pytest
import requests
from inventory_service.bootstrap import bootstrap
from inventory_service.domain.model import SeatStatus
from inventory_service.entrypoints.hold_sweeper import HoldSweeper
from sqlalchemy.engine import make_url
from trcommon.devstack import free_port
from trcommon.logs import request_id_var
from trcommon.testing import ChildProcess, TcpProxy, management_vhost
from trproto import inventory_pb2 as pb

HOLD_EXCHANGE, HOLD_ROUTING_KEY = "seat.hold", "seat.hold"
# Where an expired hold message is dead-lettered to; publishing here is what the broker does on expiry.
RELEASE_EXCHANGE, RELEASE_ROUTING_KEY = "seat.hold.dlx", "seat.release"
RELEASE_QUEUE, PARKING_QUEUE = "seat.release.queue", "seat.release.parking.queue"


@pytest.fixture(autouse=True)
def no_other_consumer(broker, eventually):
    """Each test owns the release queue: a consumer left over from another test would take its messages."""
    assert eventually(lambda: broker.consumers(RELEASE_QUEUE) == 0, 5.0, interval=0.1), \
        "another consumer is still attached to seat.release.queue"


def _id() -> str:
    return str(uuid.uuid4())


def _hold(inventory, new_seat, hold_seconds=1):
    seat_id, user, hold = new_seat(), _id(), _id()
    seat = inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=seat_id, user_id=user, hold_id=hold,
                                                       hold_seconds=hold_seconds)).seat
    return seat


def _timer_message(seat) -> bytes:
    return json.dumps({"seat_id": seat.seat_id, "hold_id": seat.hold_id, "order_id": seat.hold_id,
                       "held_until": seat.held_until}).encode()


def _is_available(stored_seat, seat_id):
    def check():
        seat = stored_seat(seat_id)
        return seat.status is SeatStatus.AVAILABLE and seat.hold_id is None
    return check


class _RequestIds(logging.Handler):
    """Records the request id in the logging context when each release is logged."""

    def __init__(self):
        super().__init__()
        self.by_seat = {}

    def emit(self, record):
        if record.getMessage() == "hold released":
            self.by_seat[getattr(record, "seat_id", None)] = request_id_var.get()


def test_an_expired_hold_message_releases_the_seat_within_seconds(inventory, new_seat, stored_seat, broker,
                                                                  run_consumer, eventually, caplog):
    caplog.set_level(logging.INFO, logger="inventory.holds")
    consumer = run_consumer()
    seen = _RequestIds()
    logging.getLogger("inventory.holds").addHandler(seen)
    try:
        seat = _hold(inventory, new_seat, hold_seconds=1)
        broker.publish(HOLD_EXCHANGE, HOLD_ROUTING_KEY, _timer_message(seat), expiration_ms=1000,
                       headers={"x-request-id": "req-timer-1"})
        assert eventually(_is_available(stored_seat, seat.seat_id), 4.0)
        late = datetime.now(timezone.utc) - datetime.fromisoformat(seat.held_until)
        # The row is visible as soon as the consumer commits; its log line and counter follow a moment later.
        assert eventually(lambda: consumer.stats["released"] == 1, 1.0)
    finally:
        logging.getLogger("inventory.holds").removeHandler(seen)
    assert late.total_seconds() < 3.0
    assert seen.by_seat[seat.seat_id] == "req-timer-1"


def test_a_party_hold_message_releases_every_seat_of_the_hold_and_nothing_else(inventory, new_seat, stored_seat,
                                                                              broker, run_consumer, eventually):
    event, user, hold = _id(), _id(), _id()
    party = sorted(new_seat(event, number=n) for n in range(1, 4))
    neighbour = new_seat(event, number=4)
    inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=neighbour, user_id=user, hold_id=_id(), hold_seconds=60))
    seats = inventory.ReserveSeat(pb.ReserveSeatRequest(seat_ids=party, user_id=user, hold_id=hold,
                                                        hold_seconds=1)).seats
    consumer = run_consumer()
    broker.publish(HOLD_EXCHANGE, HOLD_ROUTING_KEY, json.dumps({
        "seat_id": party[0], "seat_ids": party, "hold_id": hold, "order_id": hold,
        "held_until": seats[0].held_until}).encode(), expiration_ms=1000)
    assert eventually(lambda: all(_is_available(stored_seat, s)() for s in party), 4.0)
    assert eventually(lambda: consumer.stats["released"] == 1, 1.0)     # one message, one release of the hold
    assert stored_seat(neighbour).status is SeatStatus.HELD           # the fan's other hold is untouched


def test_a_backlog_of_timers_is_released_in_batches_each_hold_once(inventory, new_seat, stored_seat, broker,
                                                                   run_consumer, eventually):
    """Messages that wait in the queue (a burst of holds expiring together) are released a batch per transaction:
    every lapsed hold released once, a paid hold and a repeated message changing nothing, a malformed message
    parked without holding up the rest."""
    lapsed = [_hold(inventory, new_seat, hold_seconds=1) for _ in range(30)]
    paid = _hold(inventory, new_seat, hold_seconds=60)
    inventory.ConfirmSeat(pb.ConfirmSeatRequest(seat_id=paid.seat_id, user_id=paid.held_by_user_id,
                                                hold_id=paid.hold_id))
    wait_past = datetime.fromisoformat(lapsed[-1].held_until)
    assert eventually(lambda: datetime.now(timezone.utc) > wait_past, 3.0)
    for i, seat in enumerate(lapsed):
        broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(seat))
        if i == 10:
            broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, b"{not json")
            broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(paid))
            broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(lapsed[0]))   # again
    consumer = run_consumer()
    assert eventually(lambda: consumer.stats["released"] + consumer.stats["ignored"] == 32, 5.0)
    assert (consumer.stats["released"], consumer.stats["ignored"], consumer.stats["parked"]) == (30, 2, 1)
    assert all(_is_available(stored_seat, s.seat_id)() for s in lapsed)
    assert stored_seat(paid.seat_id).status is SeatStatus.SOLD
    assert consumer.stats["batches"] < 33          # not one transaction per message
    assert eventually(lambda: broker.ready_messages(RELEASE_QUEUE) == 0, 2.0)


def test_a_batch_that_fails_unexpectedly_is_retried_message_by_message(inventory, new_seat, stored_seat, broker,
                                                                       run_consumer, eventually, monkeypatch):
    """A bug that one message triggers fails its whole batch; each message is then released on its own, so the
    others go through and only that one is handed back to the broker (whose delivery-limit parks it)."""
    from inventory_service.entrypoints import release_consumer
    seats = [_hold(inventory, new_seat, hold_seconds=1) for _ in range(6)]
    cursed = seats[2].hold_id
    real = release_consumer.services.release_expired_holds

    def release(uow, holds):
        if any(hold_id == cursed for _, hold_id in holds):
            raise RuntimeError("a bug this hold triggers")
        return real(uow, holds)

    monkeypatch.setattr(release_consumer.services, "release_expired_holds", release)
    past = datetime.fromisoformat(seats[-1].held_until)
    assert eventually(lambda: datetime.now(timezone.utc) > past, 3.0)
    for seat in seats:
        broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(seat))
    consumer = run_consumer()
    others = [s for s in seats if s.hold_id != cursed]
    assert eventually(lambda: all(_is_available(stored_seat, s.seat_id)() for s in others), 5.0)
    assert eventually(lambda: consumer.stats["released"] == 5, 1.0)
    assert consumer.stats["failed"] >= 1 and consumer.stats["batches"] < 6     # the six came as one batch
    assert stored_seat(seats[2].seat_id).status is SeatStatus.HELD      # handed back to the broker
    monkeypatch.undo()          # the bug fixed: the requeued one is released too, and the queue is empty again
    assert eventually(lambda: consumer.stats["released"] == 6, 5.0)


def test_a_poison_message_is_parked_and_later_messages_are_still_processed(inventory, new_seat, stored_seat, broker,
                                                                          run_consumer, eventually):
    consumer = run_consumer()
    poison = f'{{"seat_id": "{_id()}", "hold_id": '.encode()    # truncated JSON
    broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, poison)
    seat = _hold(inventory, new_seat, hold_seconds=1)
    broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(seat))
    assert eventually(_is_available(stored_seat, seat.seat_id), 4.0)
    assert broker.take_from(PARKING_QUEUE, poison, 5.0), "the malformed message was not parked"
    assert consumer.stats["parked"] == 1


def test_a_message_for_a_hold_that_was_paid_for_changes_nothing(inventory, new_seat, stored_seat, broker,
                                                                run_consumer, eventually):
    consumer = run_consumer()
    seat = _hold(inventory, new_seat, hold_seconds=60)
    inventory.ConfirmSeat(pb.ConfirmSeatRequest(seat_id=seat.seat_id, user_id=seat.held_by_user_id,
                                                hold_id=seat.hold_id))
    broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(seat))
    assert eventually(lambda: consumer.stats["ignored"] == 1, 4.0)
    assert stored_seat(seat.seat_id).status is SeatStatus.SOLD


def test_a_message_that_arrives_before_held_until_releases_the_seat_at_held_until(inventory, new_seat, stored_seat,
                                                                                  broker, run_consumer, eventually):
    consumer = run_consumer()
    seat = _hold(inventory, new_seat, hold_seconds=2)
    broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(seat))   # broker clock "ahead"
    assert eventually(lambda: consumer.stats["early"] >= 1, 2.0)
    assert stored_seat(seat.seat_id).status is SeatStatus.HELD
    assert eventually(_is_available(stored_seat, seat.seat_id), 4.0)
    assert datetime.now(timezone.utc) >= datetime.fromisoformat(seat.held_until)
    # The row is visible as soon as the consumer commits; its counter moves a moment later.
    assert eventually(lambda: consumer.stats["released"] == 1, 1.0)


def test_a_message_whose_release_ran_just_before_held_until_is_retried_at_once_not_left_to_the_sweeper(
        inventory, new_seat, stored_seat, broker, run_consumer, eventually, monkeypatch):
    """The broker may dead-letter a timer a few milliseconds before held_until by the database clock. When the
    release statement runs just before held_until and the read that follows it just after, the hold is due, not
    gone: the message is retried at once and the seat released by its timer (it used to be acked as "already
    ended", leaving the seat HELD until the sweeper's pass, seconds late). Both statements run for real; only the
    moment between them is stretched past held_until (in production it is a few milliseconds)."""
    from inventory_service.adapters.repository import SeatRepository

    real_read = SeatRepository.get_many
    consumer = run_consumer()
    seat = _hold(inventory, new_seat, hold_seconds=2)
    held_until = datetime.fromisoformat(seat.held_until)
    stretched = []

    def read_after_held_until(self, seat_ids):
        if not stretched:
            stretched.append(datetime.now(timezone.utc) < held_until)    # the release statement ran before it
            time.sleep(max(0.0, (held_until - datetime.now(timezone.utc)).total_seconds()) + 0.02)
        return real_read(self, seat_ids)

    monkeypatch.setattr(SeatRepository, "get_many", read_after_held_until)
    broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(seat))
    assert eventually(lambda: stretched, 1.0), "the release statement did not run"
    assert stretched == [True], "the release statement did not run before held_until"
    assert eventually(_is_available(stored_seat, seat.seat_id), 3.0), "the seat was left HELD"
    assert eventually(lambda: consumer.stats["released"] == 1, 1.0)
    assert consumer.stats["early"] == 1 and consumer.stats["ignored"] == 0


def test_a_message_far_ahead_of_held_until_is_acked_and_the_hold_left_to_the_sweeper(inventory, new_seat,
                                                                                     stored_seat, broker,
                                                                                     consumer_settings,
                                                                                     run_consumer, eventually):
    container = bootstrap(consumer_settings.model_copy(update={"release_early_wait_max_seconds": 0.5}))
    try:
        consumer = run_consumer(container)
        seat = _hold(inventory, new_seat, hold_seconds=60)
        broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(seat))
        assert eventually(lambda: consumer.stats["left_to_sweeper"] == 1, 4.0)
        assert stored_seat(seat.seat_id).status is SeatStatus.HELD
    finally:
        consumer.stop()
        container.engine.dispose()


def test_the_consumer_reconnects_after_the_broker_drops_its_connection(inventory, new_seat, stored_seat, broker,
                                                                       amqp_url, run_consumer, eventually):
    consumer = run_consumer()
    mgmt = f"http://{make_url_host(amqp_url)}:15672/api"
    vhost = management_vhost(amqp_url)

    def consumer_connections():
        try:
            listed = requests.get(f"{mgmt}/vhosts/{vhost}/connections",
                                  auth=("guest", "guest"), timeout=5).json()
        except requests.RequestException:
            pytest.skip("the RabbitMQ management API is not reachable")
        return [c["name"] for c in listed
                if c.get("client_properties", {}).get("connection_name") == "inventory-release-consumer"]

    assert eventually(lambda: len(consumer_connections()) == 1, 10.0, interval=0.2)
    for name in consumer_connections():
        requests.delete(f"{mgmt}/connections/{urllib.parse.quote(name, safe='')}", auth=("guest", "guest"),
                        headers={"X-Reason": "test: broker goes away"}, timeout=5).raise_for_status()
    assert eventually(lambda: consumer.stats["connection_losses"] >= 1, 5.0)
    assert consumer.consuming.wait(10), "the consumer did not reattach to the queue"
    seat = _hold(inventory, new_seat, hold_seconds=1)
    broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(seat))
    assert eventually(_is_available(stored_seat, seat.seat_id), 4.0)


def make_url_host(amqp_url: str) -> str:
    return urllib.parse.urlparse(amqp_url).hostname or "127.0.0.1"


def test_the_release_consumer_process_stops_cleanly_on_sigterm(consumer_settings, tmp_path):
    proc = ChildProcess(tmp_path / "release-consumer.log", {
        "DATABASE_URL": consumer_settings.database_url, "AMQP_URL": consumer_settings.amqp_url,
        "ENVIRONMENT": "test", "LOG_LEVEL": "INFO", "STARTUP_WAIT_SECONDS": "10"},
        module="inventory_service.entrypoints.release_consumer")
    proc.wait_for(lambda: any(e.get("message") == "consuming" for e in proc.json_lines()))
    assert proc.stop(signal.SIGTERM) == 0
    lines = proc.json_lines()
    messages = [line["message"] for line in lines]
    assert "hold sweeper started" in messages and "release consumer stopped" in messages
    assert messages[-2:] == ["release consumer stopped", "stopped"], messages
    assert all(line["service"] == "inventory-service" for line in lines)


# The consumer as its own process, with a unit of work that kills the process right after its commit: the
# ack never happens, exactly as if the process died between the two.
DIES_AFTER_COMMIT = """
import dataclasses, functools, os, signal
from inventory_service.bootstrap import bootstrap
from inventory_service.entrypoints.release_consumer import ReleaseConsumer
from inventory_service.service_layer.unit_of_work import InventoryUnitOfWork
from inventory_service.settings import InventorySettings

class DiesAfterCommit(InventoryUnitOfWork):
    def commit(self):
        super().commit()
        os.kill(os.getpid(), signal.SIGKILL)

container = bootstrap(InventorySettings())
ReleaseConsumer(dataclasses.replace(container, uow=functools.partial(DiesAfterCommit, container.engine))).run()
"""


def test_a_redelivery_after_a_crash_between_commit_and_ack_leaves_a_new_hold_alone(
        inventory, new_seat, stored_seat, broker, consumer_settings, run_consumer, eventually, tmp_path):
    first = _hold(inventory, new_seat, hold_seconds=1)
    broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(first))
    env = {**os.environ, "DATABASE_URL": consumer_settings.database_url, "AMQP_URL": consumer_settings.amqp_url,
           "ENVIRONMENT": "test"}
    with open(tmp_path / "consumer.log", "wb") as out:
        crashing = subprocess.Popen([sys.executable, "-c", DIES_AFTER_COMMIT], env=env, stdout=out,
                                    stderr=subprocess.STDOUT)
    try:
        crashing.wait(15)
    except subprocess.TimeoutExpired:
        crashing.kill()
        crashing.wait()
    assert crashing.returncode == -signal.SIGKILL, (tmp_path / "consumer.log").read_text()
    assert _is_available(stored_seat, first.seat_id)()          # it committed the release, then died

    second_hold = _id()
    inventory.ReserveSeat(pb.ReserveSeatRequest(seat_id=first.seat_id, user_id=_id(), hold_id=second_hold,
                                                hold_seconds=60))
    consumer = run_consumer()
    assert eventually(lambda: consumer.stats["ignored"] == 1, 5.0)
    assert consumer.stats["redelivered"] == 1
    seat = stored_seat(first.seat_id)
    assert (seat.status, seat.hold_id) == (SeatStatus.HELD, second_hold)
    consumer.stop()
    assert eventually(lambda: not consumer.consuming.is_set(), 5.0)
    assert broker.ready_messages(RELEASE_QUEUE) == 0           # acked this time


def test_a_database_outage_keeps_the_message_until_the_release_succeeds(inventory, new_seat, stored_seat, broker,
                                                                        consumer_settings, run_consumer,
                                                                        eventually):
    port = free_port()
    real = make_url(consumer_settings.database_url)
    proxy = TcpProxy(port, (real.host, real.port or 5432))       # not started: the database is "down"
    behind_proxy = real.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    container = bootstrap(consumer_settings.model_copy(update={"database_url": behind_proxy}))
    consumer = run_consumer(container)
    try:
        seat = _hold(inventory, new_seat, hold_seconds=1)
        broker.publish(RELEASE_EXCHANGE, RELEASE_ROUTING_KEY, _timer_message(seat))
        assert eventually(lambda: consumer.stats["database_retries"] >= 2, 5.0)
        assert stored_seat(seat.seat_id).status is SeatStatus.HELD
        proxy.start()                                               # the database is back
        assert eventually(_is_available(stored_seat, seat.seat_id), 15.0)
        assert eventually(lambda: consumer.stats["released"] == 1, 1.0)
        # It was kept and retried in place, never handed back to the broker (which would count toward the
        # queue's delivery-limit and end in the parking queue).
        assert consumer.stats["redelivered"] == 0
    finally:
        consumer.stop()
        proxy.stop()
        container.engine.dispose()


def test_the_sweeper_releases_a_lapsed_hold_that_has_no_message(inventory, new_seat, stored_seat, settings,
                                                                 eventually):
    container = bootstrap(settings.model_copy(update={"hold_sweep_interval_seconds": 0.2,
                                                      "hold_sweep_grace_seconds": 0.3}))
    sweeper = HoldSweeper(container)
    live = _hold(inventory, new_seat, hold_seconds=60)
    lapsing = _hold(inventory, new_seat, hold_seconds=1)
    sweeper.start()
    try:
        assert eventually(_is_available(stored_seat, lapsing.seat_id), 4.0)
    finally:
        sweeper.stop()
        container.engine.dispose()
    assert sweeper.released >= 1
    assert stored_seat(live.seat_id).status is SeatStatus.HELD
