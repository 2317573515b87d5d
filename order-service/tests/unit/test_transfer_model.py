from datetime import datetime, timedelta, timezone

import pytest

from order_service.domain.model import (TRANSFER_TRANSITIONS, InvalidTransition, Transfer, TransferExpired,
                                        TransferStatus)
from trcommon.errors import InvalidInput

NOW = datetime(2030, 1, 2, 20, 0, tzinfo=timezone.utc)
T = TransferStatus


def transfer(status=T.PENDING_OTP, expires_at=NOW + timedelta(minutes=15), **kw) -> Transfer:
    return Transfer(transfer_id="t1", seat_id="s1", seller_user_id="seller", buyer_user_id="buyer", amount=80,
                    status=status, expires_at=expires_at, **kw)


def test_the_transfer_table_is_exactly_the_specified_state_machine():
    assert TRANSFER_TRANSITIONS == {
        T.PENDING_OTP: {T.COMPLETED, T.CANCELLED, T.EXPIRED},
        T.COMPLETED: {T.DISPUTED},
        T.DISPUTED: {T.REVERSED, T.COMPLETED},
    }


@pytest.mark.parametrize("current,to,reason", [
    (T.PENDING_OTP, T.COMPLETED, None),
    (T.PENDING_OTP, T.CANCELLED, None),
    (T.COMPLETED, T.DISPUTED, "never received"),
    (T.DISPUTED, T.REVERSED, None),
    (T.DISPUTED, T.COMPLETED, None),
])
def test_allowed_transfer_transitions_change_the_status(current, to, reason):
    assert transfer(current).transition(to, NOW, reason).status == to


def test_every_transfer_move_outside_the_table_is_refused_naming_the_current_status():
    for current in T:
        for to in T:
            if to == current or to in TRANSFER_TRANSITIONS.get(current, ()):
                continue
            with pytest.raises(InvalidTransition, match=current.value):
                transfer(current, expires_at=NOW - timedelta(seconds=1)).transition(to, NOW, "why")


@pytest.mark.parametrize("status", list(T))
def test_moving_a_transfer_to_its_own_status_changes_nothing(status):
    t = transfer(status)
    assert t.transition(status, NOW) is t


def test_a_pending_transfer_expires_only_after_its_deadline():
    with pytest.raises(InvalidTransition, match="PENDING_OTP"):
        transfer().transition(T.EXPIRED, NOW)
    assert transfer(expires_at=NOW).transition(T.EXPIRED, NOW).status == T.EXPIRED


def test_a_pending_transfer_cannot_complete_after_its_deadline():
    with pytest.raises(TransferExpired) as err:
        transfer(expires_at=NOW).transition(T.COMPLETED, NOW)
    assert err.value.status == 410


def test_a_dispute_needs_a_reason_and_keeps_it():
    with pytest.raises(InvalidInput):
        transfer(T.COMPLETED).transition(T.DISPUTED, NOW, "  ")
    assert transfer(T.COMPLETED).transition(T.DISPUTED, NOW, " wrong seat ").dispute_reason == "wrong seat"


def test_a_disputed_transfer_can_be_settled_after_the_otp_deadline():
    old = transfer(T.DISPUTED, expires_at=NOW - timedelta(days=1))
    assert old.transition(T.COMPLETED, NOW).status == T.COMPLETED
    assert old.transition(T.REVERSED, NOW).status == T.REVERSED
