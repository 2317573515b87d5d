"""Sagas: a declared list of named steps, one pure function that decides the next action from the saga's
recorded state, one runner that executes it, and one recovery pass for sagas of every kind.

How to read and write one: docs/sagas.md (the purchase saga is the worked example).

- A saga is data: `Saga(name, record, steps, state_of, finish, stale, context)`. Each `Step` has an action and, if its
  effect must be undone when a later step fails for good, a compensation.
- Every step is called with an idempotency key derived from the saga id and the step's name
  (`order:{id}:debit`), so "not sure it ran" always means "run it again".
- The durable state lives on the saga's record, owned by a service (an order, a transfer); `state_of` reads it
  into a `SagaState`. The orchestrator keeps nothing between requests.
- `next_action(saga, state)` is pure: it returns one `Action`; `advance` returns the state after it. The runner
  loops over the two, calling the steps; recovery starts the same loop from a record found stale.
- Failpoints (crash tests) are named by the steps: `{saga}:{step}` after a step took effect, and
  `{saga}:{step}:begun` after the user's request recorded the start of a step that waits for them.
"""
from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Generic, Iterable, TypeVar

from .errors import AppError

log = logging.getLogger("trcommon.saga")

C = TypeVar("C")          # a saga's context: its id, its record, the dependencies and the request's inputs


class Outcome(str, enum.Enum):
    RUNNING = "RUNNING"
    FAILED = "FAILED"              # a step failed for good: the saga is undoing what it did
    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"


def _never(_err: AppError) -> bool:
    return False


def always(_err: AppError) -> bool:
    return True


@dataclass(frozen=True)
class Step(Generic[C]):
    """One step of a saga.

    action(ctx, key) does the step through a participant, idempotently under `key`; it raises AppError.
    compensation(ctx, key) undoes it, idempotently under its own key (`compensation_name`).
    fatal(err): which errors of the action mean the saga cannot go on (it is then compensated). Other errors
      leave the saga where its record says, for the caller to answer with and retry (or recovery to finish).
    waits_for_user: the saga pauses before this step until the user's request begins it (paying for a hold, an
      admin's reversal). If it had begun when the request was lost, recovery asks `happened(ctx, key)` (a read)
      whether it took effect when the step needs the user to run (an OTP); without `happened`, recovery runs it
      again (it is keyed, and the user's request that began it is the consent).
    lapses: the step's effect ends by itself at the saga's deadline (a seat hold): when the deadline is what
      failed the saga, it needs no compensation.
    """

    name: str
    action: Callable[[C, str], None]
    compensation: Callable[[C, str], None] | None = None
    compensation_name: str | None = None
    fatal: Callable[[AppError], bool] = _never
    waits_for_user: bool = False
    happened: Callable[[C, str], bool] | None = None
    lapses: bool = False

    def __post_init__(self):
        if self.happened is not None and not self.waits_for_user:
            raise ValueError(f"step {self.name}: only a step that waits for the user is asked about by recovery")
        if self.compensation is not None and not self.compensation_name:
            raise ValueError(f"step {self.name} has a compensation, so it needs a compensation_name for its key")


@dataclass(frozen=True)
class SagaState:
    """What a saga's record says, plus what the runner learnt in this run.

    done: steps[:done] took effect (while compensating, steps[done:] have been undone or need no undoing).
    begun: steps[done] was recorded as begun but is not known to have taken effect.
    resuming: the step the current user's request is for (None: the saga's first request, or recovery).
    deadline_passed: the time the saga had to reach its next user step has run out (a hold's held_until).
    """

    done: int = 0
    begun: bool = False
    outcome: Outcome = Outcome.RUNNING
    resuming: str | None = None
    deadline_passed: bool = False
    failed_by_deadline: bool = False


@dataclass(frozen=True)
class Run:
    step: int


@dataclass(frozen=True)
class Begin:
    """Record, on the saga's record, that the user's request starts steps[step] (then read the record back)."""

    step: int


@dataclass(frozen=True)
class Probe:
    """Ask the participant whether steps[step], recorded as begun, took effect."""

    step: int


@dataclass(frozen=True)
class Compensate:
    step: int


@dataclass(frozen=True)
class Fail:
    by_deadline: bool


@dataclass(frozen=True)
class Finish:
    outcome: Outcome


class _Marker(enum.Enum):
    WAIT = "wait"      # nothing to do until the user comes back or the deadline passes
    DONE = "done"      # the saga has ended


WAIT = _Marker.WAIT
DONE = _Marker.DONE
Action = Run | Begin | Probe | Compensate | Fail | Finish | _Marker


@dataclass(frozen=True)
class Saga(Generic[C]):
    """name: the saga's name (failpoints, logs); record: the kind of record it lives on, the prefix of its keys.
    state_of(ctx, now) reads the record in ctx into a SagaState; finish(ctx, state, reason) records the end on it
    (state.outcome is COMPLETED or COMPENSATED; reason says which step or deadline failed it, if one did).
    begin(ctx, step_name) records on the record that the user's request starts a step that waits for them, and
      puts the record as it now is into ctx (it may show the saga further on, or ended).
    stale(deps) lists the records recovery should look at (a query of the owning service); sagas that live on
      the same kind of record share one `stale` function, which a recovery pass calls once for all of them.
    wants(record) says whether a stale record is this saga's to recover; context(deps, record) builds its context."""

    name: str
    record: str
    steps: tuple[Step[C], ...]
    state_of: Callable[[C, datetime], SagaState]
    finish: Callable[[C, SagaState, str | None], None]
    stale: Callable[[Any], Iterable[Any]]
    context: Callable[[Any, Any], C]
    wants: Callable[[Any], bool] = field(default=lambda record: True)
    begin: Callable[[C, str], None] | None = None
    saga_id: Callable[[C], str] = field(default=lambda ctx: ctx.saga_id)

    def __post_init__(self):
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"saga {self.name} has two steps of the same name")
        if any(s.waits_for_user for s in self.steps) and self.begin is None:
            raise ValueError(f"saga {self.name} has a step that waits for the user, so it needs `begin`")

    def index(self, step_name: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.name == step_name)

    def key(self, saga_id: str, name: str) -> str:
        return f"{self.record}:{saga_id}:{name}"

    def failpoints(self) -> tuple[str, ...]:
        """The step boundaries a crash test can stop the process at, in the order a saga passes them."""
        points: list[str] = []
        for step in self.steps:
            if step.waits_for_user:
                points.append(f"{self.name}:{step.name}:begun")
            points.append(f"{self.name}:{step.name}")
        return tuple(points)


def next_action(saga: Saga, s: SagaState) -> Action:
    """The one decision of every saga: what to do next, from its state alone."""
    if s.outcome in (Outcome.COMPLETED, Outcome.COMPENSATED):
        return DONE
    if s.outcome is Outcome.FAILED:
        for k in reversed(range(s.done)):
            step = saga.steps[k]
            if step.compensation is not None and not (step.lapses and s.failed_by_deadline):
                return Compensate(k)
        return Finish(Outcome.COMPENSATED)
    if s.done >= len(saga.steps):
        return Finish(Outcome.COMPLETED)
    step = saga.steps[s.done]
    if step.waits_for_user:
        if s.resuming == step.name:
            return Run(s.done) if s.begun else Begin(s.done)
        if s.begun:
            return Probe(s.done) if step.happened is not None else Run(s.done)
        return Fail(by_deadline=True) if s.deadline_passed else WAIT
    return Run(s.done)


def advance(s: SagaState, action: Action, happened: bool | None = None) -> SagaState:
    """The state after `action` succeeded (for Probe, `happened` is the participant's answer)."""
    match action:
        case Run(step=k):
            return replace(s, done=k + 1, begun=False)
        case Begin():
            return replace(s, begun=True)      # the runner reads the record back instead (Saga.begin)
        case Probe(step=k):
            return replace(s, done=k + 1, begun=False) if happened else replace(s, begun=False)
        case Compensate(step=k):
            return replace(s, done=k)
        case Fail(by_deadline=by_deadline):
            return replace(s, outcome=Outcome.FAILED, failed_by_deadline=by_deadline, begun=False)
        case Finish(outcome=outcome):
            return replace(s, outcome=outcome)
    return s


@dataclass(frozen=True)
class SagaRun:
    state: SagaState
    failure: AppError | None = None     # the error of the step that failed the saga, if one did


class SagaRunner:
    """Executes sagas. `failpoints` (crash tests only) are step boundaries at which the process dies as a SIGKILL
    would; unknown names are refused when the runner is built."""

    def __init__(self, sagas: Iterable[Saga], failpoints: frozenset[str] = frozenset(),
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.sagas = tuple(sagas)
        known = {p for saga in self.sagas for p in saga.failpoints()}
        unknown = set(failpoints) - known
        if unknown:
            raise ValueError(f"unknown FAILPOINTS {sorted(unknown)}; known: {sorted(known)}")
        self._failpoints = frozenset(failpoints)
        self._now = now

    def _failpoint(self, name: str) -> None:
        if name in self._failpoints:
            log.error("failpoint reached: exiting", extra={"failpoint": name})
            os._exit(137)

    def start(self, saga: Saga[C], ctx: C) -> SagaRun:
        """Run a new saga from its first step, as far as it goes without the user."""
        return self.run(saga, ctx, SagaState())

    def resume(self, saga: Saga[C], ctx: C, step_name: str) -> SagaRun:
        """The user's request for `step_name` (a step that waits for them): begin it and go on."""
        index = saga.index(step_name)
        return self.run(saga, ctx, SagaState(done=index, resuming=step_name))

    def recover(self, saga: Saga[C], ctx: C) -> SagaRun:
        """Drive a saga found stale from what its record says. Safe to run repeatedly and concurrently."""
        return self.run(saga, ctx, saga.state_of(ctx, self._now()))

    def run(self, saga: Saga[C], ctx: C, state: SagaState) -> SagaRun:
        """Loop over next_action until the saga waits or ends. A step error that is not fatal, or a failing
        compensation, is raised as it is: the saga stays where its record says, and a retry or the recovery pass
        goes on from there."""
        failure: AppError | None = None
        reason: str | None = None
        saga_id = saga.saga_id(ctx)
        while True:
            action = next_action(saga, state)
            if action is WAIT or action is DONE:
                return SagaRun(state, failure)
            happened = None
            match action:
                case Run(step=k):
                    step = saga.steps[k]
                    try:
                        step.action(ctx, saga.key(saga_id, step.name))
                    except AppError as err:
                        if not step.fatal(err):
                            raise
                        failure, reason = err, f"{step.name} failed: {err.code}"
                        log.warning("saga step failed; compensating", extra={
                            "saga": saga.name, "saga_id": saga_id, "step": step.name, "code": err.code})
                        state = advance(state, Fail(by_deadline=False))
                        continue
                    self._failpoint(f"{saga.name}:{step.name}")
                case Begin(step=k):
                    step = saga.steps[k]
                    saga.begin(ctx, step.name)
                    self._failpoint(f"{saga.name}:{step.name}:begun")
                    # The record is the truth: the saga may have moved on (or ended) since the user last saw it.
                    state = replace(saga.state_of(ctx, self._now()), resuming=state.resuming)
                    continue
                case Probe(step=k):
                    step = saga.steps[k]
                    happened = step.happened(ctx, saga.key(saga_id, step.name))
                case Compensate(step=k):
                    step = saga.steps[k]
                    step.compensation(ctx, saga.key(saga_id, step.compensation_name))
                case Fail():
                    reason = "deadline passed"
                case Finish(outcome=outcome):
                    saga.finish(ctx, advance(state, action), reason)
                    if outcome is Outcome.COMPENSATED:
                        # A deadline running out (a hold nobody paid for) is business as usual; a failed step is not.
                        log.log(logging.WARNING if failure else logging.INFO, "saga compensated",
                                extra={"saga": saga.name, "saga_id": saga_id, "reason": reason})
            state = advance(state, action, happened)


@dataclass(frozen=True)
class RecoveryPass:
    """What one recovery pass did: how many stale sagas it examined, and how many of those it had to leave for a
    later pass because a participant failed."""
    examined: int
    failed: int


def recovery_pass(runner: SagaRunner, deps: Any) -> RecoveryPass:
    """One pass of the recovery worker over the stale sagas of every kind. A saga whose participant is down is
    left for the next pass."""
    examined = failed = 0
    fetched: dict[Callable, list] = {}
    for saga in runner.sagas:
        if saga.stale not in fetched:
            fetched[saga.stale] = list(saga.stale(deps))
        for record in fetched[saga.stale]:
            if not saga.wants(record):
                continue
            ctx = saga.context(deps, record)
            examined += 1
            try:
                runner.recover(saga, ctx)
            except AppError as err:
                failed += 1
                log.warning("recovery step failed; will retry", extra={
                    "saga": saga.name, "saga_id": saga.saga_id(ctx), "code": err.code})
    return RecoveryPass(examined, failed)
