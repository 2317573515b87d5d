"""The saga mechanism: the pure decision function through every state, and the runner over an in-memory saga."""
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from trcommon.errors import AppError, DependencyUnavailable
from trcommon.saga import (DONE, WAIT, Begin, Compensate, Fail, Finish, Outcome, Probe, Run, Saga, SagaRunner,
                           RecoveryPass, SagaState, Step, advance, always, next_action, recovery_pass)

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def _noop(ctx, key):
    pass


# A saga shaped like a purchase: a lease (lapses), a record, a user step with a compensation, a final step.
def toy(**overrides) -> Saga:
    steps = (
        Step("lease", _noop, compensation=_noop, compensation_name="unlease", lapses=True, fatal=always),
        Step("record", _noop, fatal=always),
        Step("charge", _noop, compensation=_noop, compensation_name="refund", waits_for_user=True,
             happened=lambda ctx, key: False),
        Step("deliver", _noop, fatal=lambda e: e.code == "GONE"),
    )
    return Saga("toy", "thing", overrides.get("steps", steps), state_of=lambda ctx, now: SagaState(),
                finish=lambda ctx, state, reason: None, stale=lambda deps: [],
                context=lambda deps, record: record, begin=lambda ctx, step: None)


S = toy()


def test_a_new_saga_runs_its_first_step():
    assert next_action(S, SagaState()) == Run(0)


def test_steps_run_in_order_until_the_one_that_waits_for_the_user():
    state = SagaState()
    for expected in (Run(0), Run(1)):
        assert next_action(S, state) == expected
        state = advance(state, expected)
    assert next_action(S, state) is WAIT


def test_a_saga_waiting_for_the_user_fails_by_deadline_once_it_passes():
    assert next_action(S, SagaState(done=2, deadline_passed=True)) == Fail(by_deadline=True)


def test_the_users_request_begins_the_step_then_runs_it():
    assert next_action(S, SagaState(done=2, resuming="charge")) == Begin(2)
    assert next_action(S, SagaState(done=2, resuming="charge", begun=True)) == Run(2)


def test_a_request_for_another_step_does_not_begin_this_one():
    assert next_action(S, SagaState(done=2, resuming="something-else")) is WAIT


def test_recovery_asks_whether_a_begun_user_step_took_effect():
    assert next_action(S, SagaState(done=2, begun=True)) == Probe(2)
    assert next_action(S, SagaState(done=2, begun=True, deadline_passed=True)) == Probe(2)


def test_a_probe_that_finds_the_effect_moves_on_and_one_that_does_not_waits_or_fails():
    begun = SagaState(done=2, begun=True)
    assert next_action(S, advance(begun, Probe(2), happened=True)) == Run(3)
    assert next_action(S, advance(begun, Probe(2), happened=False)) is WAIT
    late = SagaState(done=2, begun=True, deadline_passed=True)
    assert next_action(S, advance(late, Probe(2), happened=False)) == Fail(by_deadline=True)


def test_recovery_runs_a_begun_user_step_again_when_it_has_nothing_to_ask():
    approved = toy(steps=(Step("approve", _noop, waits_for_user=True), Step("apply", _noop)))
    assert next_action(approved, SagaState(begun=True)) == Run(0)
    assert next_action(approved, SagaState()) is WAIT


def test_steps_after_the_user_step_run_without_the_user():
    assert next_action(S, SagaState(done=3)) == Run(3)


def test_a_saga_whose_steps_all_ran_is_completed():
    assert next_action(S, SagaState(done=4)) == Finish(Outcome.COMPLETED)


def test_ended_sagas_have_nothing_to_do():
    assert next_action(S, SagaState(done=4, outcome=Outcome.COMPLETED)) is DONE
    assert next_action(S, SagaState(outcome=Outcome.COMPENSATED)) is DONE


def test_a_failed_saga_undoes_its_steps_backwards_then_finishes_compensated():
    state = SagaState(done=4, outcome=Outcome.FAILED)
    seen = []
    while (action := next_action(S, state)) not in (DONE, WAIT) and not isinstance(action, Finish):
        seen.append(action)
        state = advance(state, action)
    assert seen == [Compensate(2), Compensate(0)]     # "record" and "deliver" have nothing to undo
    assert action == Finish(Outcome.COMPENSATED)


def test_a_saga_failed_by_its_deadline_leaves_lapsing_steps_to_lapse():
    state = advance(SagaState(done=2), Fail(by_deadline=True))
    assert next_action(S, state) == Finish(Outcome.COMPENSATED)


def test_a_step_not_known_to_have_run_is_not_compensated():
    # failing while the user step was begun but not done: only the steps before it are undone
    state = advance(SagaState(done=2, begun=True), Fail(by_deadline=False))
    assert next_action(S, state) == Compensate(0)


def test_a_saga_failed_at_its_first_step_has_nothing_to_undo():
    assert next_action(S, advance(SagaState(), Fail(by_deadline=False))) == Finish(Outcome.COMPENSATED)


def test_keys_and_failpoints_come_from_the_step_names():
    assert S.key("42", "charge") == "thing:42:charge"
    assert S.failpoints() == ("toy:lease", "toy:record", "toy:charge:begun", "toy:charge", "toy:deliver")


def test_a_saga_must_be_well_formed():
    with pytest.raises(ValueError):
        Step("x", _noop, happened=lambda ctx, key: True)   # only a user step is asked about
    with pytest.raises(ValueError):
        Step("x", _noop, compensation=_noop)               # its compensation would have no key
    with pytest.raises(ValueError):
        toy(steps=(Step("a", _noop), Step("a", _noop)))


# --- the runner, over participants kept in memory -------------------------------------------------------------

@dataclass
class Ledger:
    """A participant that applies each key once, like the credit ledger."""

    applied: dict = field(default_factory=dict)
    down: bool = False

    def apply(self, key, amount):
        if self.down:
            raise DependencyUnavailable("ledger is down")
        self.applied.setdefault(key, amount)

    def has(self, key):
        if self.down:
            raise DependencyUnavailable("ledger is down")
        return key in self.applied


@dataclass
class Ctx:
    saga_id: str
    ledger: Ledger
    record: dict = field(default_factory=lambda: {"status": "NEW"})
    deliverable: bool = True
    calls: list = field(default_factory=list)


def _charge(ctx, key):
    ctx.calls.append(key)
    ctx.ledger.apply(key, -10)


def _refund(ctx, key):
    ctx.calls.append(key)
    ctx.ledger.apply(key, +10)


def _deliver(ctx, key):
    ctx.calls.append(key)
    if not ctx.deliverable:
        raise AppError("gone", code="GONE", status=410)


def _state_of(ctx, now):
    status = ctx.record["status"]
    if status == "DONE":
        return SagaState(done=3, outcome=Outcome.COMPLETED)
    if status == "UNDONE":
        return SagaState(outcome=Outcome.COMPENSATED)
    return SagaState(done=1, begun=status == "CHARGING", deadline_passed=ctx.record.get("late", False))


def _finish(ctx, state, reason):
    ctx.record = {**ctx.record, "status": "DONE" if state.outcome is Outcome.COMPLETED else "UNDONE", "reason": reason}


def _begin(ctx, step):
    if ctx.record["status"] == "NEW":
        ctx.record = {**ctx.record, "status": "CHARGING"}


SHOP = Saga("shop", "order",
            (Step("create", lambda ctx, key: ctx.calls.append(key), fatal=always),
             Step("charge", _charge, compensation=_refund, compensation_name="refund", waits_for_user=True,
                  happened=lambda ctx, key: ctx.ledger.has(key)),
             Step("deliver", _deliver, fatal=lambda e: e.code == "GONE")),
            state_of=_state_of, finish=_finish, begin=_begin, stale=lambda deps: deps,
            context=lambda deps, record: record)


def test_the_runner_starts_a_saga_and_stops_where_it_waits_for_the_user():
    ctx = Ctx("1", Ledger())
    run = SagaRunner([SHOP]).start(SHOP, ctx)
    assert run.state.done == 1 and run.state.outcome is Outcome.RUNNING
    assert ctx.calls == ["order:1:create"]


def test_the_users_request_completes_the_saga_and_a_repeat_changes_nothing():
    ledger = Ledger()
    ctx = Ctx("1", ledger)
    runner = SagaRunner([SHOP])
    assert runner.resume(SHOP, ctx, "charge").state.outcome is Outcome.COMPLETED
    assert ctx.calls == ["order:1:charge", "order:1:deliver"] and ctx.record["status"] == "DONE"
    assert runner.resume(SHOP, ctx, "charge").state.outcome is Outcome.COMPLETED
    assert ledger.applied == {"order:1:charge": -10}


def test_a_fatal_step_error_compensates_and_reports_the_failure():
    ledger = Ledger()
    ctx = Ctx("1", ledger, deliverable=False)
    run = SagaRunner([SHOP]).resume(SHOP, ctx, "charge")
    assert run.state.outcome is Outcome.COMPENSATED and run.failure.code == "GONE"
    assert ledger.applied == {"order:1:charge": -10, "order:1:refund": 10}
    assert ctx.record == {"status": "UNDONE", "reason": "deliver failed: GONE"}


def test_an_error_that_is_not_fatal_leaves_the_saga_where_its_record_says():
    ledger = Ledger(down=True)
    ctx = Ctx("1", ledger)
    with pytest.raises(DependencyUnavailable):
        SagaRunner([SHOP]).resume(SHOP, ctx, "charge")
    assert ctx.record["status"] == "CHARGING" and ledger.applied == {}


def test_recovery_finishes_a_saga_whose_user_step_took_effect():
    ledger = Ledger(applied={"order:1:charge": -10})
    ctx = Ctx("1", ledger, record={"status": "CHARGING"})
    assert SagaRunner([SHOP]).recover(SHOP, ctx).state.outcome is Outcome.COMPLETED
    assert ctx.calls == ["order:1:deliver"]            # the charge is not run again by recovery


def test_recovery_waits_for_a_begun_step_that_did_not_happen_until_the_deadline_then_fails_it():
    ledger = Ledger()
    ctx = Ctx("1", ledger, record={"status": "CHARGING"})
    runner = SagaRunner([SHOP])
    assert runner.recover(SHOP, ctx).state.outcome is Outcome.RUNNING and ctx.record["status"] == "CHARGING"
    ctx.record["late"] = True
    assert runner.recover(SHOP, ctx).state.outcome is Outcome.COMPENSATED
    assert ledger.applied == {} and ctx.calls == []     # nothing charged, so nothing refunded
    assert ctx.record["reason"] == "deadline passed"


def test_recovery_pass_goes_over_every_stale_saga_and_survives_a_participant_down():
    down = Ctx("1", Ledger(down=True), record={"status": "CHARGING", "late": True})
    ok = Ctx("2", Ledger(applied={"order:2:charge": -10}), record={"status": "CHARGING"})
    assert recovery_pass(SagaRunner([SHOP]), [down, ok]) == RecoveryPass(examined=2, failed=1)
    assert down.record["status"] == "CHARGING" and ok.record["status"] == "DONE"


def test_sagas_on_one_kind_of_record_share_one_stale_query_per_pass():
    queries = []

    def stale(deps):
        queries.append(1)
        return deps

    kinds = [Saga(name, "order", SHOP.steps, state_of=_state_of, finish=_finish, begin=_begin, stale=stale,
                  context=lambda deps, record: record, wants=wants)
             for name, wants in (("paid", lambda ctx: ctx.saga_id == "1"), ("other", lambda ctx: ctx.saga_id == "2"))]
    charging = [Ctx(str(i), Ledger(applied={f"order:{i}:charge": -10}), record={"status": "CHARGING"})
                for i in (1, 2)]
    assert recovery_pass(SagaRunner(kinds), charging) == RecoveryPass(examined=2, failed=0)
    assert queries == [1] and [c.record["status"] for c in charging] == ["DONE", "DONE"]


def test_unknown_failpoints_are_refused_when_the_runner_is_built():
    SagaRunner([SHOP], frozenset({"shop:charge:begun", "shop:deliver"}))
    with pytest.raises(ValueError, match="shop:lunch"):
        SagaRunner([SHOP], frozenset({"shop:lunch"}))
