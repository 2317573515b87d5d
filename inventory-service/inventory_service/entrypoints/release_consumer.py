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

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from trcommon.process import running
from trcommon.queue_consumer import Delivery, QueueConsumer, Unreadable
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


class ReleaseConsumer(QueueConsumer[ReleaseMessage, services.ExpiryOutcome]):
    # stats: released, ignored, early, left_to_sweeper (and QueueConsumer's)
    def __init__(self, container: Container, stop: threading.Event | None = None):
        super().__init__(container.settings.amqp_url, RELEASE_QUEUE, "inventory-release-consumer",
                         container.settings.release_prefetch, "release consumer", stop,
                         batch_window=container.settings.release_batch_window_seconds)
        self._uow = container.uow
        self._settings = container.settings

    def read(self, body: bytes) -> ReleaseMessage:
        try:
            return ReleaseMessage.model_validate_json(body)
        except ValidationError as exc:
            raise Unreadable("malformed release message", errors=exc.error_count(),
                             body_preview=body[:200].decode("utf-8", "replace")) from None

    def describe(self, message: ReleaseMessage) -> dict:
        return {"seat_id": str(message.seat_id), "hold_id": str(message.hold_id)}

    def handle(self, messages: list[ReleaseMessage]) -> list[services.ExpiryOutcome]:
        return services.release_expired_holds(self._uow, [(m.seats, str(m.hold_id)) for m in messages])

    def settle(self, connection, channel, d: Delivery[ReleaseMessage], outcome: services.ExpiryOutcome) -> None:
        fields = self.describe(d.message)
        if outcome.released:
            for released in outcome.released:
                log_release(released, "timer", redelivered=d.redelivered)
            self.stats["released"] += 1
        elif outcome.live_for_seconds is not None:
            waited = time.monotonic() - d.received_at
            if waited + outcome.live_for_seconds <= self._settings.release_early_wait_max_seconds:
                log.info("release message arrived before held_until; retrying then", extra={
                    **fields, "early_ms": round(outcome.live_for_seconds * 1000, 1)})
                self.stats["early"] += 1
                self.retry(connection, channel, [d], outcome.live_for_seconds + 0.005)
                return
            log.warning("release message far ahead of held_until; leaving the hold to the sweeper", extra={
                **fields, "early_ms": round(outcome.live_for_seconds * 1000, 1)})
            self.stats["left_to_sweeper"] += 1
        else:
            log.info("hold already ended; nothing to release", extra={**fields, "redelivered": d.redelivered})
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
