"""The refund saga on the shared saga mechanism (docs/sagas.md): a CONFIRMED order's tickets back on sale and its
credits back to the fan. It lives on the order (orders_db), like the purchase saga; keys `order:{order_id}:{step}`:

  take-back  ReturnSeats of every seat of the order: SOLD by this order and still the buyer's → AVAILABLE, owner
             cleared, ticket_version bumped (every code dies), all or nothing; a seat checked in or transferred
             away fails the saga (nothing was taken: the order is CONFIRMED again, the answer 409)
             the refund request begins it: order-service records REFUNDING first
  refund     credit the order's amount back under `order:{id}:refund` — the very reference the purchase saga's
             compensation uses, so an order is refunded at most once either way
The order ends REFUNDED. Seats before credits: the step that can be refused comes first, so a refusal leaves
nothing to undo, and credits are never returned for a ticket the fan still holds.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from trcommon.errors import DependencyUnavailable
from trcommon.saga import Outcome, Saga, SagaRun, SagaState, Step
from trcontracts.orders import Order, OrderStatus

from ..bootstrap import Container
from ..domain import refund as rules
from .order_records import find_order, order_view, stale_orders

log = logging.getLogger("orchestrator.refunds")


@dataclass
class Refund:
    """The context of one refund saga: its id (the order id) and its record."""

    c: Container
    saga_id: str
    order: Order


def _take_back(r: Refund, key: str) -> None:
    o = r.order
    r.c.inventory.return_seats(list(o.seat_ids), o.user_id, hold_id=o.order_id, change_key=key)


def _refund(r: Refund, key: str) -> None:
    r.c.users.credit(r.order.user_id, r.order.amount, key, "refund of the order")


def _begin(r: Refund, step: str) -> None:
    r.order = r.c.orders.begin_refund(r.saga_id)    # records REFUNDING before the seats are asked for


def _finish(r: Refund, state: SagaState, reason: str | None) -> None:
    to = rules.final_status(state)
    r.order = r.c.orders.transition(r.saga_id, to, None if to == OrderStatus.CONFIRMED else reason)
    log.info("refund ended", extra={"order_id": r.saga_id, "seat_ids": r.order.seat_ids, "status": str(to),
                                    "reason": reason})


def _context(c: Container, o: Order) -> Refund:
    return Refund(c, o.order_id, o)


REFUND: Saga[Refund] = Saga(
    name="refund", record="order",
    steps=(
        # Begun by the request (REFUNDING); recovery runs it again (keyed; the request was the consent).
        Step(rules.TAKE_BACK, _take_back, fatal=rules.seat_kept, waits_for_user=True),
        Step(rules.REFUND, _refund),
    ),
    state_of=lambda r, now: rules.refund_state(r.order), finish=_finish, begin=_begin,
    stale=stale_orders, context=_context, wants=lambda o: o.status == OrderStatus.REFUNDING)

assert tuple(s.name for s in REFUND.steps) == rules.STEPS


def refund(c: Container, user_id: str, role: str, order_id: str) -> dict:
    """The owner's refund of a CONFIRMED order until the cut-off (an admin's: any order, any time). Repeated or
    concurrent requests of one order all run the same keyed steps: one refund, one ledger row, the same answer."""
    order = find_order(c, order_id, None if role == "admin" else user_id)
    event = c.events.get(order.event_id)
    rules.check_refundable(order, role, event.starts_at, datetime.now(timezone.utc), c.settings.refund_cutoff_seconds)
    run, r = refund_order(c, order)
    if run.state.outcome is Outcome.COMPLETED:
        return order_view(r.order)
    if run.failure is not None:
        raise rules.TicketNotRefundable(f"not refunded: {run.failure.message}", details={"reason": run.failure.code})
    raise DependencyUnavailable("the refund could not be completed now; try again")


def refund_order(c: Container, order: Order) -> tuple[SagaRun, Refund]:
    """Run the refund saga of a CONFIRMED (or REFUNDING) order from the request's step: the run says whether it
    completed, or which step's refusal left the order CONFIRMED."""
    r = Refund(c, order.order_id, order)
    return c.sagas.resume(REFUND, r, rules.TAKE_BACK), r
