"""The transfer sagas' decisions from every state a transfer records, with the real step lists, and the rules the
orchestrator applies before a transfer exists."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator_service.domain import transfer as rules
from orchestrator_service.service_layer.transfers import CONFIRM, RELEASE, REVERSAL
from trcommon.errors import AppError
from trcommon.saga import DONE, WAIT, Begin, Fail, Finish, Outcome, Probe, Run, next_action
from trcontracts.orders import Transfer, TransferStatus, TransferStep

NOW = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)


def transfer(status="PENDING_OTP", step="INITIATED", expires_in=60.0, release_in=None, released=False, amount=40):
    return Transfer(transfer_id="t1", seat_id="s1", event_id="e1", seller_user_id="u1", buyer_user_id="u2",
                    amount=amount, face_value=50, status=TransferStatus(status), step=TransferStep(step),
                    dispute_reason=None, resolution=None, expires_at=NOW + timedelta(seconds=expires_in),
                    release_at=None if release_in is None else NOW + timedelta(seconds=release_in),
                    released_at=NOW if released else None, completed_at=None, failure_reason=None,
                    created_at=NOW, updated_at=NOW)


def names(saga, action):
    step = getattr(action, "step", None)
    return f"{type(action).__name__}({saga.steps[step].name})" if step is not None else action


def test_the_step_lists_and_their_keys():
    assert [s.name for s in CONFIRM.steps] == list(rules.CONFIRM_STEPS)
    assert [s.name for s in REVERSAL.steps] == list(rules.REVERSAL_STEPS)
    assert CONFIRM.key("t1", "debit") == "transfer:t1:debit"
    # The confirm saga's compensations and the reversal's steps share their keys: a buyer is refunded, and a
    # seller's proceeds cancelled, at most once whichever saga does it.
    compensations = {s.compensation_name for s in CONFIRM.steps if s.compensation}
    assert compensations == {rules.REFUND, rules.UNCREDIT} <= {s.name for s in REVERSAL.steps}


def test_an_open_offer_waits_for_a_party_then_expires():
    state = rules.confirm_state(transfer(), NOW, 2)
    assert next_action(CONFIRM, state) is WAIT
    assert next_action(CONFIRM, replace(state, resuming="debit")) == Begin(2)
    lapsed = rules.confirm_state(transfer(expires_in=-1), NOW, 2)
    assert next_action(CONFIRM, lapsed) == Fail(by_deadline=True)


def test_a_begun_confirm_is_probed_in_the_ledger_and_expires_only_after_the_fence():
    begun = rules.confirm_state(transfer(step="CONFIRMING", expires_in=-1), NOW, 2)
    assert next_action(CONFIRM, begun) == Probe(2) and not begun.deadline_passed
    assert rules.confirm_state(transfer(step="CONFIRMING", expires_in=-3), NOW, 2).deadline_passed


def test_ended_transfers_leave_the_confirm_saga_done():
    for status in ("COMPLETED", "DISPUTED", "REVERSED"):
        assert rules.confirm_state(transfer(status, "CONFIRMING", release_in=60), NOW, 2).outcome is Outcome.COMPLETED
    for status in ("CANCELLED", "EXPIRED"):
        assert next_action(CONFIRM, rules.confirm_state(transfer(status), NOW, 2)) is DONE


def test_a_reversal_waits_for_the_admin_and_is_run_again_by_recovery_once_begun():
    disputed = transfer("DISPUTED", "CONFIRMING", release_in=60)
    assert next_action(REVERSAL, rules.reversal_state(disputed)) is WAIT
    assert next_action(REVERSAL, rules.reversal_state(disputed.model_copy(update={"step": TransferStep.REVERSING}))) == Run(0)
    assert next_action(REVERSAL, rules.reversal_state(transfer("REVERSED", "REVERSING", release_in=60))) is DONE


def test_proceeds_are_released_once_when_due():
    due = transfer("COMPLETED", "CONFIRMING", release_in=-1)
    assert next_action(RELEASE, rules.release_state(due, NOW)) == Run(0)
    assert next_action(RELEASE, rules.release_state(due.model_copy(update={"release_at": NOW + timedelta(1)}), NOW)) is DONE
    assert next_action(RELEASE, rules.release_state(transfer("COMPLETED", "CONFIRMING", -1, released=True), NOW)) \
        is DONE
    assert next_action(RELEASE, rules.release_state(transfer("DISPUTED", "CONFIRMING", release_in=-1), NOW)) is DONE
    done = rules.release_state(due, NOW)
    assert next_action(RELEASE, replace(done, done=1)) == Finish(Outcome.COMPLETED)


def test_proceeds_release_after_the_window_but_never_after_the_event_starts():
    assert rules.release_at(NOW, 3600, NOW + timedelta(days=7)) == NOW + timedelta(hours=1)
    assert rules.release_at(NOW, 7 * 86400, NOW + timedelta(hours=2)) == NOW + timedelta(hours=2)


def test_the_price_is_capped_at_face_value_unless_lifted():
    rules.check_price(0, 50, "face")
    rules.check_price(50, 50, "face")
    with pytest.raises(AppError) as err:
        rules.check_price(51, 50, "face")
    assert err.value.code == "PRICE_ABOVE_FACE_VALUE"
    rules.check_price(500, 50, "none")


@pytest.mark.parametrize("status, owner, code", [("CHECKED_IN", "u1", "TICKET_CHECKED_IN"),
                                                 ("HELD", "", "TICKET_NOT_TRANSFERABLE"),
                                                 ("AVAILABLE", "", "TICKET_NOT_TRANSFERABLE"),
                                                 ("SOLD", "u9", "NOT_TICKET_OWNER")])
def test_only_a_paid_ticket_of_the_caller_can_be_offered(status, owner, code):
    with pytest.raises(AppError) as err:
        rules.check_transferable(status, owner, "u1")
    assert err.value.code == code
    rules.check_transferable("SOLD", "u1", "u1")


def test_the_buyer_must_be_another_registered_fan():
    for buyer, role, code in ((None, None, "BUYER_NOT_FOUND"), ("u1", "fan", "CANNOT_TRANSFER_TO_SELF"),
                              ("u2", "scanner", "BUYER_NOT_A_FAN")):
        with pytest.raises(AppError) as err:
            rules.check_parties("u1", buyer, role)
        assert err.value.code == code
    rules.check_parties("u1", "u2", "fan")
    assert names(CONFIRM, Run(4)) == "Run(move-ticket)"


@pytest.mark.parametrize("status", ["CANCELLING", "CANCELLED"])
def test_a_ticket_of_a_cancelled_event_is_not_offered(status):
    with pytest.raises(AppError) as err:
        rules.check_event_not_cancelled(status)
    assert (err.value.status, err.value.code) == (409, "EVENT_CANCELLED")


@pytest.mark.parametrize("status", ["ON_SALE", "DRAFT"])
def test_a_ticket_of_an_event_that_goes_ahead_may_be_offered(status):
    rules.check_event_not_cancelled(status)
