"""Rules of the event-cancellation saga, free of any transport: its steps, and how an event's record reads as the
saga's state. The steps are in service_layer/event_cancel.py; the design is in docs/sagas.md.

An event's record (events_db) carries the saga: CANCELLING from the admin's request on, `cancel_step` = how many steps
are known to have taken effect (each step records it after its effect), CANCELLED at the end. Every step is idempotent
and none is ever undone: an event being cancelled only goes forward, by the request or by the recovery pass.
"""
from __future__ import annotations

from trcommon.saga import Outcome, SagaState
from trcontracts.events import Event, EventStatus

# close-sales     inventory: every seat off sale and every live hold ended, in one transaction (no hold, no payment
#                 can take a seat of the event afterwards); begun by the admin's request (the event CANCELLING)
# notify          order-service: one EVENT_CANCELLED notification per fan holding or owning a seat, in its outbox
# end-transfers   every transfer of its tickets still waiting for codes: CANCELLED
# end-holds       every PENDING order nobody has begun paying: CANCELLED, its seats released (the purchase saga's
#                 compensation); one being paid fails by itself (its hold is gone) and is refunded by its own saga
# refund          every CONFIRMED order: the refund saga, as an admin's (no cut-off)
CLOSE_SALES, NOTIFY, END_TRANSFERS, END_HOLDS, REFUND = "close-sales", "notify", "end-transfers", "end-holds", "refund"
STEPS = (CLOSE_SALES, NOTIFY, END_TRANSFERS, END_HOLDS, REFUND)

CANCELLED_BY_EVENT = "event cancelled"


def cancel_state(event: Event) -> SagaState:
    """CANCELLED: completed. CANCELLING: `cancel_step` steps took effect; with none recorded, the request began the
    first and it is run again (keyed and idempotent: the request was the consent). Otherwise: not begun."""
    if event.status == EventStatus.CANCELLED:
        return SagaState(done=len(STEPS), outcome=Outcome.COMPLETED)
    if event.status == EventStatus.CANCELLING:
        done = min(event.cancel_step, len(STEPS))
        return SagaState(done=done, begun=done == 0)
    return SagaState(done=0)
