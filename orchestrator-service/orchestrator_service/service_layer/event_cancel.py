"""The event-cancellation saga on the shared saga mechanism (docs/sagas.md): an organizer calls an event off, and every
fan who held or owned a seat of it ends with their credits back and a notification. It lives on the event
(events_db): CANCELLING with the number of steps done, then CANCELLED; keys `event:{event_id}:{step}`.

  close-sales    inventory SetEventSale(off): every seat off sale, every live hold ended, in one transaction
                 (begun by the admin's request, which records CANCELLING first)
  notify         order-service writes one EVENT_CANCELLED notification per fan holding or owning a seat (its outbox)
  end-transfers  every transfer of the event still waiting for its codes → CANCELLED (the buyer is notified)
  end-holds      every PENDING order → CANCELLED and its seats released (the purchase saga's compensation)
  refund         every CONFIRMED order → the refund saga, as an admin's: seats back, credits back once, REFUNDED
The steps only go forward: each is idempotent and records its progress on the event after its effect, so a crash
anywhere is finished by the recovery pass from the recorded step. A ticket that cannot be taken back (checked in, or
transferred away) is left as it is and named in the answer; its order stays CONFIRMED.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterator, TypeVar

from trcommon.errors import AppError, DependencyUnavailable
from trcommon.saga import Outcome, Saga, SagaState, Step
from trcontracts.events import Event, EventStatus
from trcontracts.orders import OrderError, OrderStatus, TransferStatus, TransferStep

from ..bootstrap import Container
from ..domain import event_cancel as rules
from .purchase import call_off
from .refunds import refund_order

log = logging.getLogger("orchestrator.event_cancel")

PAGE = 200
T = TypeVar("T")


@dataclass
class EventCancel:
    """The context of one cancellation: its id (the event id), the event's record, and what this run did."""

    c: Container
    saga_id: str
    event: Event | None = None
    reason: str | None = None
    transfers_cancelled: int = 0
    holds_ended: int = 0
    refunded: list[str] = field(default_factory=list)
    not_refunded: list[dict] = field(default_factory=list)


def _pages(fetch: Callable[[int], list[T]]) -> Iterator[T]:
    """Every item of a listing of all of an event's records, ascending by creation: one created meanwhile comes last,
    so the pages neither skip nor repeat one (statuses are filtered by the caller for that reason)."""
    offset = 0
    while True:
        page = fetch(offset)
        yield from page
        if len(page) < PAGE:
            return
        offset += len(page)


def _progress(x: EventCancel, step: str) -> None:
    x.event = x.c.events.cancel_progress(x.saga_id, rules.STEPS.index(step) + 1)


def _close_sales(x: EventCancel, key: str) -> None:
    x.c.inventory.set_event_sale(x.saga_id, False)
    _progress(x, rules.CLOSE_SALES)


def _notify(x: EventCancel, key: str) -> None:
    x.c.orders.cancellation_notices(x.saga_id, x.event.cancel_reason or rules.CANCELLED_BY_EVENT, x.event.name)
    _progress(x, rules.NOTIFY)


def _end_transfers(x: EventCancel, key: str) -> None:
    for tr in _pages(lambda off: x.c.orders.event_transfers(x.saga_id, None, PAGE, off)):
        if tr.status != TransferStatus.PENDING_OTP:
            continue
        try:
            x.c.orders.transition_transfer(tr.transfer_id, TransferStatus.CANCELLED, reason=rules.CANCELLED_BY_EVENT,
                                           expected_step=TransferStep.INITIATED)
            x.transfers_cancelled += 1
        except AppError as err:
            # Its confirm has begun (or it just ended): that saga finishes it; the refund step meets its ticket.
            if err.code != OrderError.INVALID_TRANSITION:
                raise
    _progress(x, rules.END_TRANSFERS)


def _end_holds(x: EventCancel, key: str) -> None:
    for order in _pages(lambda off: x.c.orders.event_orders(x.saga_id, None, PAGE, off)):
        if order.status != OrderStatus.PENDING:
            continue
        try:
            call_off(x.c, order, rules.CANCELLED_BY_EVENT)
            x.holds_ended += 1
        except AppError as err:
            # A payment has begun: its hold is gone since close-sales, so it fails and its saga refunds the fan.
            if err.code != OrderError.INVALID_TRANSITION:
                raise
    _progress(x, rules.END_HOLDS)


def _refund(x: EventCancel, key: str) -> None:
    for order in _pages(lambda off: x.c.orders.event_orders(x.saga_id, None, PAGE, off)):
        if order.status not in (OrderStatus.CONFIRMED, OrderStatus.REFUNDING):
            continue
        run, r = refund_order(x.c, order)
        if run.state.outcome is Outcome.COMPLETED:
            x.refunded.append(order.order_id)
        elif run.failure is not None:
            x.not_refunded.append({"order_id": order.order_id, "reason": run.failure.code,
                                   "message": run.failure.message})
        else:
            raise DependencyUnavailable("a refund could not be completed now; the cancellation goes on later")
    _progress(x, rules.REFUND)


def _begin(x: EventCancel, step: str) -> None:
    x.event = x.c.events.begin_cancel(x.saga_id, x.reason or rules.CANCELLED_BY_EVENT)


def _finish(x: EventCancel, state: SagaState, reason: str | None) -> None:
    x.event = x.c.events.finish_cancel(x.saga_id)
    x.c.events.forget(x.saga_id)
    log.info("event cancelled", extra={"event_id": x.saga_id, "refunded": len(x.refunded),
                                       "not_refunded": len(x.not_refunded), "holds_ended": x.holds_ended,
                                       "transfers_cancelled": x.transfers_cancelled})


def _stale(c: Container) -> list[Event]:
    return c.events.stale_cancellations(c.settings.recovery_grace_seconds, c.settings.recovery_batch)


def _context(c: Container, event: Event) -> EventCancel:
    return EventCancel(c, event.event_id, event=event)


EVENT_CANCEL: Saga[EventCancel] = Saga(
    name="event-cancel", record="event",
    steps=(
        # Begun by the admin's request (CANCELLING); recovery runs it again (keyed; the request was the consent).
        Step(rules.CLOSE_SALES, _close_sales, waits_for_user=True),
        Step(rules.NOTIFY, _notify),
        Step(rules.END_TRANSFERS, _end_transfers),
        Step(rules.END_HOLDS, _end_holds),
        Step(rules.REFUND, _refund),
    ),
    state_of=lambda x, now: rules.cancel_state(x.event), finish=_finish, begin=_begin,
    stale=_stale, context=_context, wants=lambda e: e.status == EventStatus.CANCELLING)

assert tuple(s.name for s in EVENT_CANCEL.steps) == rules.STEPS


def cancel_event(c: Container, event: Event, reason: str) -> dict:
    """Run the cancellation of `event` from the admin's request: again on an event being or already cancelled, the
    same saga goes on from where its record says (nothing is done twice)."""
    x = EventCancel(c, event.event_id, event=event, reason=reason)
    run = c.sagas.resume(EVENT_CANCEL, x, rules.CLOSE_SALES)
    if run.state.outcome is not Outcome.COMPLETED:
        raise DependencyUnavailable("the cancellation could not be completed now; it goes on by itself")
    return {"event": x.event.model_dump(mode="json"), "holds_ended": x.holds_ended,
            "transfers_cancelled": x.transfers_cancelled, "refunded_orders": x.refunded,
            "not_refunded": x.not_refunded}
