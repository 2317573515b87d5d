"""The event-cancellation saga's decisions from every event state, through the shared decision function with the
real steps."""
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from orchestrator_service.domain.event_cancel import STEPS, cancel_state
from orchestrator_service.service_layer.event_cancel import EVENT_CANCEL
from orchestrator_service.service_layer.sagas import SAGAS
from trcommon.saga import DONE, WAIT, Begin, Finish, Outcome, Run, advance, next_action
from trcontracts.events import Event

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def event(status="ON_SALE", step=0) -> Event:
    return Event(event_id="e1", name="Gala", venue_id="v1", venue_name="Arena", hall_id="h1", hall_name="Hall A",
                 starts_at=NOW, description="", status=status, cancel_reason="ill" if status != "ON_SALE" else None,
                 cancel_step=step, created_at=NOW, updated_at=NOW)


def test_the_steps_close_sales_first_and_refund_last_under_the_event_keys():
    assert tuple(s.name for s in EVENT_CANCEL.steps) == STEPS == (
        "close-sales", "notify", "end-transfers", "end-holds", "refund")
    assert EVENT_CANCEL.key("e1", "refund") == "event:e1:refund"
    assert EVENT_CANCEL.failpoints()[0] == "event-cancel:close-sales:begun"
    assert EVENT_CANCEL in SAGAS
    assert all(s.compensation is None for s in EVENT_CANCEL.steps)     # a cancellation only goes forward


def test_the_admin_request_begins_then_every_step_runs_and_the_event_ends_cancelled():
    state = replace(cancel_state(event()), resuming="close-sales")
    assert next_action(EVENT_CANCEL, state) == Begin(0)
    state = replace(cancel_state(event("CANCELLING", 0)), resuming="close-sales")
    seen = []
    while not isinstance(action := next_action(EVENT_CANCEL, state), Finish):
        seen.append(action)
        state = advance(state, action)
    assert seen == [Run(k) for k in range(len(STEPS))] and action == Finish(Outcome.COMPLETED)


@pytest.mark.parametrize("step", range(len(STEPS) + 1))
def test_recovery_goes_on_from_the_recorded_step(step):
    state = cancel_state(event("CANCELLING", step))
    action = next_action(EVENT_CANCEL, state)
    assert action == (Run(step) if step < len(STEPS) else Finish(Outcome.COMPLETED))


def test_an_event_not_being_cancelled_waits_and_a_cancelled_one_is_done():
    assert next_action(EVENT_CANCEL, cancel_state(event())) is WAIT
    assert next_action(EVENT_CANCEL, cancel_state(event("CANCELLED", 5))) is DONE
    assert next_action(EVENT_CANCEL, replace(cancel_state(event("CANCELLED", 5)), resuming="close-sales")) is DONE
