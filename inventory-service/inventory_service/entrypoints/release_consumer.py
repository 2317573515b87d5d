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
                         container.settings.release_prefetch, "release consumer", stop,
                         batch_window=container.settings.release_batch_window_seconds)
        self._uow = container.uow
        self._settings = container.settings

    def on_batch(self, connection, channel, batch) -> None:
        deliveries = []
        for m in batch:
            with request_context(request_id_of(m.properties)) as rid:
                try:
                    message = ReleaseMessage.model_validate_json(m.body)
                except ValidationError as exc:
                    log.warning("malformed release message parked", extra={
                        "errors": exc.error_count(), "body_preview": m.body[:200].decode("utf-8", "replace")})
                    channel.basic_reject(m.tag, requeue=False)
                    self.stats["parked"] += 1
                    continue
            if m.redelivered:
                self.stats["redelivered"] += 1
            deliveries.append(_Delivery(m.tag, m.redelivered, message, rid, time.monotonic()))
        if deliveries:
            self._release(connection, channel, deliveries)

    def _release(self, connection, channel, deliveries: list[_Delivery]) -> None:
        """Release the holds of these deliveries in one transaction, then ack or retry each; also the target of the
        delayed retries scheduled with call_later."""
        if not channel.is_open:
            return  # the connection they came on is gone; the broker redelivers the messages
        try:
            outcomes = services.release_expired_holds(
                self._uow, [(d.message.seats, str(d.message.hold_id)) for d in deliveries])
        except (DependencyUnavailable, OperationalError, InterfaceError) as exc:
            failures = 1 + max(d.database_failures for d in deliveries)
            for d in deliveries:
                d.database_failures = failures
            wait = backoff(DATABASE_BACKOFF, failures)
            with request_context(deliveries[0].request_id):
                log.warning("database unavailable; keeping the release messages and retrying", extra={
                    "messages": len(deliveries), "hold_ids": [str(d.message.hold_id) for d in deliveries[:10]],
                    "error": repr(exc), "retry_in_seconds": wait})
            self.stats["database_retries"] += 1
            connection.call_later(wait, partial(self._release, connection, channel, deliveries))
            return
        except Exception:  # noqa: BLE001 - a bug must not stop the consumer; the queue's delivery-limit parks it
            if len(deliveries) > 1:     # one message may be the cause: each on its own, so the others go through
                for d in deliveries:
                    self._release(connection, channel, [d])
                return
            d = deliveries[0]
            with request_context(d.request_id):
                log.exception("release failed; requeueing the message", extra={
                    "seat_id": str(d.message.seat_id), "hold_id": str(d.message.hold_id)})
            self.stats["failed"] += 1
            self.requeue_later(connection, channel, d.tag)
            return
        for d, outcome in zip(deliveries, outcomes):
            with request_context(d.request_id):
                self._settle(connection, channel, d, outcome)

    def _settle(self, connection, channel, d: _Delivery, outcome: services.ExpiryOutcome) -> None:
        seat_id, hold_id = str(d.message.seat_id), str(d.message.hold_id)
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
                connection.call_later(outcome.live_for_seconds + 0.005,
                                      partial(self._release, connection, channel, [d]))
                return
            log.warning("release message far ahead of held_until; leaving the hold to the sweeper", extra={
                "seat_id": seat_id, "hold_id": hold_id, "early_ms": round(outcome.live_for_seconds * 1000, 1)})
            self.stats["left_to_sweeper"] += 1
        else:
            log.info("hold already ended; nothing to release", extra={
                "seat_id": seat_id, "hold_id": hold_id, "redelivered": d.redelivered})
            self.stats["ignored"] += 1
        channel.basic_ack(d.tag)


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
