from datetime import datetime, timedelta, timezone

import pytest

from order_service.domain.model import (TRANSFER_TRANSITIONS, CreateTransfer, DisputeWindowClosed,
                                        InvalidTransition, Transfer, TransferExpired, TransferStatus, TransferStep)
from trcommon.errors import InvalidInput

NOW = datetime(2030, 1, 2, 20, 0, tzinfo=timezone.utc)
LIVE = NOW + timedelta(minutes=15)
LAPSED = NOW - timedelta(seconds=1)
WINDOW_OPEN = NOW + timedelta(days=7)
WINDOW_CLOSED = NOW - timedelta(seconds=1)
T = TransferStatus
S = TransferStep


def transfer(status=T.PENDING_OTP, step=S.INITIATED, expires_at=LIVE, **kw) -> Transfer:
    if status in (T.COMPLETED, T.DISPUTED, T.REVERSED):
        kw = {"completed_at": NOW - timedelta(hours=1), "release_at": WINDOW_OPEN, **kw}
    return Transfer(transfer_id="t1", seat_id="s1", event_id="e1", seller_user_id="seller", buyer_user_id="buyer",
                    amount=80, face_value=100, status=status, step=step, expires_at=expires_at, **kw)


def confirming(**kw) -> Transfer:
    return transfer(step=S.CONFIRMING, **kw)


def test_the_transfer_table_is_exactly_the_specified_state_machine():
    assert TRANSFER_TRANSITIONS == {
        T.PENDING_OTP: {T.COMPLETED, T.CANCELLED, T.EXPIRED},
        T.COMPLETED: {T.DISPUTED},
        T.DISPUTED: {T.REVERSED, T.COMPLETED},
    }


@pytest.mark.parametrize("before,to,kwargs", [
    (confirming(), T.COMPLETED, {"release_at": WINDOW_OPEN}),
    (transfer(), T.CANCELLED, {}),
    (transfer(expires_at=LAPSED), T.EXPIRED, {}),
    (transfer(T.COMPLETED, S.CONFIRMING), T.DISPUTED, {"reason": "never received"}),
    (transfer(T.DISPUTED, S.REVERSING, dispute_reason="x"), T.REVERSED, {}),
    (transfer(T.DISPUTED, S.CONFIRMING, dispute_reason="x"), T.COMPLETED, {"resolution": "seat was right"}),
])
def test_allowed_transfer_transitions_change_the_status_and_never_the_step(before, to, kwargs):
    after = before.transition(to, NOW, **kwargs)
    assert after.status == to and after.step == before.step


def test_every_transfer_move_outside_the_table_is_refused_naming_the_current_status():
    for current in T:
        for to in T:
            if to == current or to in TRANSFER_TRANSITIONS.get(current, ()):
                continue
            for step in S:
                with pytest.raises(InvalidTransition, match=current.value):
                    transfer(current, step, expires_at=LAPSED).transition(
                        to, NOW, "why", release_at=WINDOW_OPEN, resolution="how")


@pytest.mark.parametrize("status", list(T))
def test_moving_a_transfer_to_its_own_status_changes_nothing(status):
    t = transfer(status)
    assert t.transition(status, NOW) is t
    assert t.transition(status, NOW, expected_step=S.REVERSING) is t


# --- PENDING_OTP and the deadline -------------------------------------------------------------------------------

def test_a_pending_transfer_expires_only_once_its_deadline_has_passed_and_keeps_why():
    for t in (transfer(), confirming()):
        with pytest.raises(InvalidTransition, match="PENDING_OTP"):
            t.transition(T.EXPIRED, NOW)
    expired = transfer(expires_at=NOW).transition(T.EXPIRED, NOW)
    assert expired.status == T.EXPIRED and expired.failure_reason == "not confirmed in time"
    assert transfer(expires_at=LAPSED).transition(T.EXPIRED, NOW, " no answer ").failure_reason == "no answer"


def test_a_confirm_that_found_no_debit_may_end_expired_after_the_deadline():
    assert confirming(expires_at=LAPSED).transition(T.EXPIRED, NOW).status == T.EXPIRED


def test_a_pending_transfer_completes_only_once_its_confirm_has_begun():
    with pytest.raises(InvalidTransition, match="confirm has not begun"):
        transfer().transition(T.COMPLETED, NOW, release_at=WINDOW_OPEN)
    done = confirming().transition(T.COMPLETED, NOW, release_at=WINDOW_OPEN)
    assert (done.status, done.completed_at, done.release_at, done.released_at) == (
        T.COMPLETED, NOW, WINDOW_OPEN, None)


def test_completing_needs_the_moment_the_proceeds_are_released():
    with pytest.raises(InvalidInput, match="release_at"):
        confirming().transition(T.COMPLETED, NOW)


def test_a_lapsed_transfer_nobody_began_confirming_can_no_longer_complete_or_be_cancelled():
    for to in (T.COMPLETED, T.CANCELLED):
        with pytest.raises(TransferExpired) as err:
            transfer(expires_at=NOW).transition(to, NOW, release_at=WINDOW_OPEN)
        assert err.value.status == 410


def test_a_confirm_begun_before_the_deadline_completes_or_is_called_off_after_it():
    late = confirming(expires_at=LAPSED)
    assert late.transition(T.COMPLETED, NOW, release_at=WINDOW_OPEN).status == T.COMPLETED
    cancelled = late.transition(T.CANCELLED, NOW, "move-ticket: NOT_OWNER")
    assert (cancelled.status, cancelled.failure_reason) == (T.CANCELLED, "move-ticket: NOT_OWNER")


def test_a_cancel_keeps_its_reason_or_says_cancelled():
    assert transfer().transition(T.CANCELLED, NOW).failure_reason == "cancelled"
    assert transfer().transition(T.CANCELLED, NOW, "changed my mind").failure_reason == "changed my mind"


def test_a_move_that_expects_another_step_is_refused():
    # The seller's cancel names INITIATED: once the buyer's confirm has begun it cannot overtake it.
    with pytest.raises(InvalidTransition, match="CONFIRMING"):
        confirming().transition(T.CANCELLED, NOW, expected_step=S.INITIATED)
    assert transfer().transition(T.CANCELLED, NOW, expected_step=S.INITIATED).status == T.CANCELLED
    with pytest.raises(InvalidTransition, match="INITIATED"):
        transfer().transition(T.CANCELLED, NOW, expected_step=S.CONFIRMING)


# --- the dispute window ------------------------------------------------------------------------------------------

def test_a_dispute_needs_a_reason_and_keeps_it_trimmed():
    for reason in (None, "", "  "):
        with pytest.raises(InvalidInput):
            transfer(T.COMPLETED).transition(T.DISPUTED, NOW, reason)
    disputed = transfer(T.COMPLETED).transition(T.DISPUTED, NOW, " wrong seat ")
    assert (disputed.status, disputed.dispute_reason) == (T.DISPUTED, "wrong seat")


@pytest.mark.parametrize("release_at", [NOW, WINDOW_CLOSED])
def test_a_dispute_is_refused_once_the_window_has_closed(release_at):
    with pytest.raises(DisputeWindowClosed) as err:
        transfer(T.COMPLETED, release_at=release_at).transition(T.DISPUTED, NOW, "late")
    assert err.value.status == 410


def test_a_dispute_is_refused_once_the_proceeds_are_released():
    with pytest.raises(DisputeWindowClosed):
        transfer(T.COMPLETED, released_at=NOW - timedelta(minutes=1)).transition(T.DISPUTED, NOW, "late")


def test_a_closed_dispute_cannot_be_opened_again():
    closed = transfer(T.COMPLETED, dispute_reason="wrong seat", resolution="seat was right")
    with pytest.raises(DisputeWindowClosed, match="seat was right"):
        closed.transition(T.DISPUTED, NOW, "again")


def test_a_reversal_ends_only_after_it_has_begun():
    with pytest.raises(InvalidTransition, match="reversal has not begun"):
        transfer(T.DISPUTED, S.CONFIRMING).transition(T.REVERSED, NOW)
    reversed_ = transfer(T.DISPUTED, S.REVERSING).transition(T.REVERSED, NOW, resolution=" refunded ")
    assert (reversed_.status, reversed_.resolution) == (T.REVERSED, "refunded")
    assert transfer(T.DISPUTED, S.REVERSING).transition(T.REVERSED, NOW).resolution is None


def test_closing_a_dispute_needs_a_resolution_and_keeps_the_original_release():
    with pytest.raises(InvalidInput, match="resolution"):
        transfer(T.DISPUTED).transition(T.COMPLETED, NOW, resolution=" ")
    disputed = transfer(T.DISPUTED, dispute_reason="wrong seat", release_at=WINDOW_CLOSED)
    closed = disputed.transition(T.COMPLETED, NOW, release_at=WINDOW_OPEN, resolution="ticket checked in")
    assert (closed.status, closed.resolution, closed.dispute_reason) == (T.COMPLETED, "ticket checked in",
                                                                         "wrong seat")
    assert (closed.release_at, closed.completed_at) == (disputed.release_at, disputed.completed_at)


def test_a_disputed_transfer_can_be_settled_after_the_otp_deadline_and_the_window():
    old = transfer(T.DISPUTED, S.REVERSING, expires_at=NOW - timedelta(days=8), release_at=WINDOW_CLOSED)
    assert old.transition(T.COMPLETED, NOW, resolution="kept").status == T.COMPLETED
    assert old.transition(T.REVERSED, NOW).status == T.REVERSED


# --- begin_confirm, begin_reverse, mark_released -----------------------------------------------------------------

def test_begin_confirm_marks_a_live_pending_transfer_confirming_once():
    started = transfer().begin_confirm(NOW)
    assert (started.status, started.step) == (T.PENDING_OTP, S.CONFIRMING)
    assert started.begin_confirm(NOW) is started


def test_begin_confirm_returns_a_confirm_under_way_as_it_is_even_past_the_deadline():
    late = confirming(expires_at=LAPSED)
    assert late.begin_confirm(NOW) is late


@pytest.mark.parametrize("status", [T.COMPLETED, T.DISPUTED, T.REVERSED])
def test_begin_confirm_returns_a_transfer_past_its_confirm_unchanged(status):
    t = transfer(status, S.CONFIRMING, expires_at=LAPSED)
    assert t.begin_confirm(NOW) is t


def test_begin_confirm_refuses_expired_and_lapsed_transfers_with_410_and_cancelled_ones_with_409():
    for t in (transfer(T.EXPIRED), transfer(T.EXPIRED, S.CONFIRMING, expires_at=LAPSED),
              transfer(expires_at=NOW)):
        with pytest.raises(TransferExpired):
            t.begin_confirm(NOW)
    with pytest.raises(InvalidTransition, match="CANCELLED"):
        transfer(T.CANCELLED).begin_confirm(NOW)


def test_only_a_party_to_the_transfer_is_one():
    t = transfer()
    assert t.is_party("seller") and t.is_party("buyer") and not t.is_party("someone")


def test_a_lapsed_transfer_is_one_past_its_deadline_with_no_confirm_begun():
    assert transfer(expires_at=NOW).lapsed_unconfirmed(NOW)
    assert not transfer(expires_at=LIVE).lapsed_unconfirmed(NOW)
    assert not confirming(expires_at=LAPSED).lapsed_unconfirmed(NOW)
    assert not transfer(T.CANCELLED, expires_at=LAPSED).lapsed_unconfirmed(NOW)


def test_begin_reverse_marks_a_disputed_transfer_reversing_once():
    started = transfer(T.DISPUTED, S.CONFIRMING).begin_reverse()
    assert (started.status, started.step) == (T.DISPUTED, S.REVERSING)
    assert started.begin_reverse() is started
    done = transfer(T.REVERSED, S.REVERSING)
    assert done.begin_reverse() is done


@pytest.mark.parametrize("status", [T.PENDING_OTP, T.COMPLETED, T.CANCELLED, T.EXPIRED])
def test_begin_reverse_refuses_a_transfer_that_is_not_disputed(status):
    with pytest.raises(InvalidTransition, match=status.value):
        transfer(status, S.CONFIRMING).begin_reverse()


def test_proceeds_are_released_once_their_time_has_come():
    due = transfer(T.COMPLETED, release_at=NOW)
    assert due.proceeds_due(NOW)
    released = due.mark_released(NOW)
    assert released.released_at == NOW and not released.proceeds_due(NOW)
    assert released.mark_released(NOW + timedelta(days=1)) is released


@pytest.mark.parametrize("t", [
    transfer(T.COMPLETED, release_at=NOW + timedelta(seconds=1)),
    transfer(T.DISPUTED, release_at=WINDOW_CLOSED),
    transfer(T.REVERSED, release_at=WINDOW_CLOSED),
    transfer(T.PENDING_OTP),
    transfer(T.CANCELLED),
])
def test_proceeds_that_are_not_due_are_not_released(t):
    assert not t.proceeds_due(NOW)
    with pytest.raises(InvalidTransition, match=t.status.value):
        t.mark_released(NOW)


def test_a_repeated_create_matches_only_the_same_details():
    t = transfer()
    cmd = CreateTransfer(transfer_id="t1", seat_id="s1", event_id="e1", seller_user_id="seller",
                         buyer_user_id="buyer", amount=80, face_value=100, expires_at=LIVE)
    assert t.matches(cmd)
    assert t.matches(CreateTransfer(**{**vars(cmd), "expires_at": LIVE.astimezone(timezone(timedelta(hours=8)))}))
    for change in ({"amount": 0}, {"face_value": 80}, {"buyer_user_id": "other"}, {"seat_id": "s2"},
                   {"event_id": "e2"}, {"seller_user_id": "x"}, {"expires_at": LAPSED}):
        assert not t.matches(CreateTransfer(**{**vars(cmd), **change}))
