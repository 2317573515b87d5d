"""AMQP entrypoint: the hold timer's consumer. Run with `python -m inventory_service.entrypoints.release_consumer`.

Each hold's message expires in seat.hold.queue and is dead-lettered to seat.release.queue; this consumer releases
the seat if that hold still has it and its held_until has passed by the database clock. The rules that keep it
safe under faults:

- ack only after the database commit; a crash in between means a redelivery, and the release is a conditional
  UPDATE on the hold id, so a redelivered message never touches a seat that has since been held again;
- a malformed message is rejected without requeue: the queue dead-letters it to seat.release.parking.queue;
- a database outage keeps the message unacked and retries in place with backoff (a requeue would count
  against the queue's x-delivery-limit and end in the parking queue);
- a message that arrives before held_until (broker and database clocks disagree) is retried at held_until,
  for a bounded time; the sweeper thread of the same process ends any hold the timer missed;
- a lost broker connection is re-established with bounded backoff; SIGTERM stops it cleanly.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from functools import partial

import pika
import pika.exceptions
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from trcommon.errors import DependencyUnavailable
from trcommon.logs import request_context
from trcommon.process import running
from trcommon.queue_consumer import (
    DATABASE_BACKOFF,
    QueueConsumer,
    backoff,
    request_id_of,
)
from trcontracts.inventory import MAX_SEATS_PER_HOLD

from ..bootstrap import Container, bootstrap
from ..service_layer import services
from ..settings import InventorySettings
from .hold_sweeper import HoldSweeper, log_release

log = logging.getLogger("inventory.release_consumer")

RELEASE_QUEUE = "seat.release.queue"


class ReleaseMessage(BaseModel):
    """The hold-timer message the orchestrator publishes (docs/internal-api.md, RabbitMQ)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    seat_id: uuid.UUID          # the hold's first seat (by seat_id): all a single-seat hold's message names
    hold_id: uuid.UUID
    order_id: uuid.UUID
    held_until: AwareDatetime
    # Every seat of the hold (1-8); absent from messages published before holds covered several seats.
    seat_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_SEATS_PER_HOLD)

    @property
    def seats(self) -> list[str]:
        return sorted({str(i) for i in self.seat_ids} | {str(self.seat_id)})


@dataclass
class _Delivery:
    connection: pika.BlockingConnection
    channel: pika.adapters.blocking_connection.BlockingChannel
    tag: int
    redelivered: bool
    message: ReleaseMessage
    request_id: str
    received_at: float        # time.monotonic()
    database_failures: int = 0


class ReleaseConsumer(QueueConsumer):
    # stats: released, ignored, early, left_to_sweeper, parked, failed, redelivered, database_retries,
    # connection_losses
    def __init__(self, container: Container, stop: threading.Event | None = None):
        super().__init__(container.settings.amqp_url, RELEASE_QUEUE, "inventory-release-consumer",
                         container.settings.release_prefetch, "release consumer", stop)
        self._uow = container.uow
        self._settings = container.settings

    def on_message(self, connection, channel, method, properties, body: bytes) -> None:
        with request_context(request_id_of(properties)) as rid:
            try:
                message = ReleaseMessage.model_validate_json(body)
            except ValidationError as exc:
                log.warning("malformed release message parked", extra={
                    "errors": exc.error_count(), "body_preview": body[:200].decode("utf-8", "replace")})
                channel.basic_reject(method.delivery_tag, requeue=False)
                self.stats["parked"] += 1
                return
            if method.redelivered:
                self.stats["redelivered"] += 1
            self._release(_Delivery(connection, channel, method.delivery_tag, method.redelivered, message, rid,
                                    time.monotonic()))

    def _release(self, d: _Delivery) -> None:
        """Process one delivery; also the target of the delayed retries scheduled with call_later."""
        if not d.channel.is_open:
            return  # the connection it came on is gone; the broker redelivers the message
        with request_context(d.request_id):
            self._release_once(d)

    def _release_once(self, d: _Delivery) -> None:
        seat_id, hold_id = str(d.message.seat_id), str(d.message.hold_id)
        try:
            outcome = services.release_expired_hold(self._uow, d.message.seats, hold_id)
        except (DependencyUnavailable, OperationalError, InterfaceError) as exc:
            d.database_failures += 1
            wait = backoff(DATABASE_BACKOFF, d.database_failures)
            log.warning("database unavailable; keeping the release message and retrying", extra={
                "seat_id": seat_id, "hold_id": hold_id, "error": repr(exc), "retry_in_seconds": wait})
            self.stats["database_retries"] += 1
            d.connection.call_later(wait, partial(self._release, d))
            return
        except Exception:  # noqa: BLE001 - a bug must not stop the consumer; the queue's delivery-limit parks it
            log.exception("release failed; requeueing the message", extra={"seat_id": seat_id, "hold_id": hold_id})
            self.stats["failed"] += 1
            self.requeue_later(d.connection, d.channel, d.tag)
            return

        if outcome.released:
            for released in outcome.released:
                log_release(released, "timer", redelivered=d.redelivered)
            self.stats["released"] += 1
        elif outcome.live_for_seconds > 0:
            waited = time.monotonic() - d.received_at
            if waited + outcome.live_for_seconds <= self._settings.release_early_wait_max_seconds:
                log.info("release message arrived before held_until; retrying then", extra={
                    "seat_id": seat_id, "hold_id": hold_id, "early_ms": round(outcome.live_for_seconds * 1000, 1)})
                self.stats["early"] += 1
                d.connection.call_later(outcome.live_for_seconds + 0.005, partial(self._release, d))
                return
            log.warning("release message far ahead of held_until; leaving the hold to the sweeper", extra={
                "seat_id": seat_id, "hold_id": hold_id, "early_ms": round(outcome.live_for_seconds * 1000, 1)})
            self.stats["left_to_sweeper"] += 1
        else:
            log.info("hold already ended; nothing to release", extra={
                "seat_id": seat_id, "hold_id": hold_id, "redelivered": d.redelivered})
            self.stats["ignored"] += 1
        d.channel.basic_ack(d.tag)


def main() -> None:
    with running(InventorySettings, bootstrap, database=True, broker=True) as p:
        consumer = ReleaseConsumer(p.container, stop=p.stop)
        sweeper = HoldSweeper(p.container)
        sweeper.start()
        try:
            consumer.run()
        finally:
            sweeper.stop()


if __name__ == "__main__":
    main()
