"""Fan-to-fan transfers on the shared saga mechanism (docs/sagas.md). Three sagas live on one transfer record
(orders_db), each keyed `transfer:{transfer_id}:{step}`:

confirm   record        the transfer, PENDING_OTP (one open transfer per seat)
          codes         a code to the seller and one to the buyer, bound to `transfer:{id}`
          debit         the buyer pays `amount`, with both codes checked in the same transaction (refused after
                        expires_at; 402 or a wrong code changes nothing)        undo: refund the buyer
                        a party's /transfer/confirm begins it (step CONFIRMING)
          credit        the seller's proceeds, as pending credits                 undo: cancel them (uncredit)
          move-ticket   UpdateOwner seller → buyer (a new ticket_version: every earlier QR is dead); a ticket
                        checked in meanwhile fails the saga (the buyer is refunded)
          → COMPLETED, with release_at = the end of the dispute window (never past the event's start);
            CANCELLED when a step failed; EXPIRED when nobody confirmed in time.
reversal  return-ticket UpdateOwner buyer → seller (an admin's /transfer/reverse begins it: step REVERSING)
          refund        the buyer gets `amount` back
          uncredit      the seller's pending proceeds are cancelled (they are still pending: the window is open)
          → REVERSED; a ticket checked in meanwhile cannot be reversed (409), and the dispute can be closed.
release   release       the seller's pending proceeds become spendable, once the window has closed → released_at
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from trcommon.errors import AppError, Conflict, DependencyUnavailable, Forbidden
from trcommon.saga import Outcome, Saga, SagaState, Step, always
from trcontracts.orders import OrderError, Transfer, TransferStatus, TransferStep
from trcontracts.users import Account

from ..bootstrap import Container
from ..domain import transfer as rules
from ..domain.ids import canonical_uuid

log = logging.getLogger("orchestrator.transfers")


@dataclass
class TransferSaga:
    """The context of a transfer's sagas: its id, its record, and what the caller's request brought."""

    c: Container
    saga_id: str
    user_id: str | None = None          # the party (or admin) whose request this is; None in recovery
    transfer: Transfer | None = None
    new: dict | None = None             # initiate: the record to create
    seller_otp: str | None = None
    buyer_otp: str | None = None


# --- confirm ------------------------------------------------------------------------------------------------------

def _record(t: TransferSaga, key: str) -> None:
    t.transfer = t.c.orders.create_transfer(t.new)


def _codes(t: TransferSaga, key: str) -> None:
    purpose = rules.otp_purpose(t.saga_id)
    for user_id in (t.transfer.seller_user_id, t.transfer.buyer_user_id):
        t.c.users.send_otp(user_id, purpose)


def _debit(t: TransferSaga, key: str) -> None:
    tr = t.transfer
    t.c.users.debit(tr.buyer_user_id, tr.amount, key, "ticket transfer: bought", otp_purpose=rules.otp_purpose(t.saga_id),
                    otp_parties=[{"user_id": tr.seller_user_id, "code": t.seller_otp},
                                 {"user_id": tr.buyer_user_id, "code": t.buyer_otp}],
                    not_after=tr.expires_at)


def _debited(t: TransferSaga, key: str) -> bool:
    return bool(t.c.users.ledger(key))


def _refund(t: TransferSaga, key: str) -> None:
    tr = t.transfer
    if tr.amount:
        t.c.users.credit(tr.buyer_user_id, tr.amount, key, "ticket transfer: refunded")


def _credit(t: TransferSaga, key: str) -> None:
    tr = t.transfer
    if tr.amount:
        t.c.users.credit(tr.seller_user_id, tr.amount, key, "ticket transfer: sold (pending)", account=Account.PENDING)


def _uncredit(t: TransferSaga, key: str) -> None:
    tr = t.transfer
    if tr.amount:
        t.c.users.debit(tr.seller_user_id, tr.amount, key, "ticket transfer: proceeds cancelled", account=Account.PENDING)


def _move_ticket(t: TransferSaga, key: str) -> None:
    tr = t.transfer
    t.c.inventory.update_owner(tr.seat_id, tr.seller_user_id, tr.buyer_user_id, key)


def _begin_confirm(t: TransferSaga, step: str) -> None:
    t.transfer = t.c.orders.begin_confirm(t.saga_id, t.user_id)


def _confirm_state(t: TransferSaga, now: datetime) -> SagaState:
    return rules.confirm_state(t.transfer, now, t.c.settings.debit_fence_seconds)


def _finish_confirm(t: TransferSaga, state: SagaState, reason: str | None) -> None:
    if t.transfer is None:
        return      # the record was never created: nothing to end
    if state.outcome is Outcome.COMPLETED:
        event = t.c.events.get(t.transfer.event_id)
        now = datetime.now(timezone.utc)
        release_at = rules.release_at(now, t.c.settings.transfer_dispute_window_seconds, event.starts_at)
        t.transfer = t.c.orders.transition_transfer(t.saga_id, TransferStatus.COMPLETED, release_at=release_at)
    elif state.failed_by_deadline:
        t.transfer = t.c.orders.transition_transfer(t.saga_id, TransferStatus.EXPIRED,
                                                    reason="nobody confirmed it in time")
    else:
        t.transfer = t.c.orders.transition_transfer(t.saga_id, TransferStatus.CANCELLED, reason=reason)
    log.info("transfer ended", extra={"transfer_id": t.saga_id, "status": str(t.transfer.status)})


def _stale(c: Container) -> list[Transfer]:
    """One query for the three sagas of a transfer; each takes the records in its own state."""
    return c.orders.stale_transfers(c.settings.recovery_grace_seconds, c.settings.recovery_batch)


def _context(c: Container, tr: Transfer) -> TransferSaga:
    return TransferSaga(c, tr.transfer_id, transfer=tr)


CONFIRM: Saga[TransferSaga] = Saga(
    name="transfer", record="transfer",
    steps=(
        Step(rules.RECORD, _record),
        Step(rules.CODES, _codes, fatal=always),
        # 402, a wrong or locked code leave it PENDING_OTP: the parties may confirm again until it expires.
        Step(rules.DEBIT, _debit, compensation=_refund, compensation_name=rules.REFUND, waits_for_user=True,
             happened=_debited),
        Step(rules.CREDIT, _credit, compensation=_uncredit, compensation_name=rules.UNCREDIT),
        Step(rules.MOVE_TICKET, _move_ticket, fatal=rules.ticket_stuck),
    ),
    state_of=_confirm_state, finish=_finish_confirm, begin=_begin_confirm,
    stale=_stale, context=_context, wants=lambda tr: tr.status == TransferStatus.PENDING_OTP)


# --- reversal -----------------------------------------------------------------------------------------------------

def _return_ticket(t: TransferSaga, key: str) -> None:
    tr = t.transfer
    t.c.inventory.update_owner(tr.seat_id, tr.buyer_user_id, tr.seller_user_id, key)


def _begin_reverse(t: TransferSaga, step: str) -> None:
    t.transfer = t.c.orders.begin_reverse(t.saga_id)


def _finish_reversal(t: TransferSaga, state: SagaState, reason: str | None) -> None:
    if state.outcome is Outcome.COMPLETED:
        t.transfer = t.c.orders.transition_transfer(t.saga_id, TransferStatus.REVERSED)
        log.info("transfer reversed", extra={"transfer_id": t.saga_id})
    else:
        # The ticket could not come back (checked in, or moved on, meanwhile): it is resolved the other way, the
        # transfer stays COMPLETED and its proceeds release when due.
        t.transfer = t.c.orders.transition_transfer(
            t.saga_id, TransferStatus.COMPLETED,
            resolution=f"not reversed: the ticket could not be returned ({reason})")
        log.warning("reversal refused", extra={"transfer_id": t.saga_id, "reason": reason})


REVERSAL: Saga[TransferSaga] = Saga(
    name="reversal", record="transfer",
    steps=(
        Step(rules.RETURN_TICKET, _return_ticket, fatal=rules.ticket_stuck, waits_for_user=True),
        Step(rules.REFUND, _refund),
        Step(rules.UNCREDIT, _uncredit),
    ),
    state_of=lambda t, now: rules.reversal_state(t.transfer), finish=_finish_reversal, begin=_begin_reverse,
    stale=_stale, context=_context, wants=lambda tr: tr.status == TransferStatus.DISPUTED)


# --- release of the proceeds --------------------------------------------------------------------------------------

def _release(t: TransferSaga, key: str) -> None:
    tr = t.transfer
    if tr.amount:
        t.c.users.release_pending(tr.seller_user_id, tr.amount, key)


def _finish_release(t: TransferSaga, state: SagaState, reason: str | None) -> None:
    if state.outcome is Outcome.COMPLETED:
        t.transfer = t.c.orders.mark_released(t.saga_id)


RELEASE: Saga[TransferSaga] = Saga(
    name="release", record="transfer",
    steps=(Step(rules.RELEASE, _release),),
    state_of=lambda t, now: rules.release_state(t.transfer, now), finish=_finish_release,
    stale=_stale, context=_context, wants=lambda tr: tr.status == TransferStatus.COMPLETED)


# --- use cases ----------------------------------------------------------------------------------------------------

def initiate(c: Container, seller_id: str, role: str, seat_id: str, buyer_email: str, amount: int) -> dict:
    if role != "fan":
        raise Forbidden("only fans can transfer tickets", code="WRONG_ROLE")
    seat = c.inventory.verify(seat_id)
    rules.check_transferable(seat.status, seat.owner_user_id, seller_id)
    rules.check_price(amount, seat.price, c.settings.transfer_price_cap)
    rules.check_event_not_cancelled(c.events.current(seat.event_id).status)
    buyer = c.users.find_by_email(buyer_email)
    rules.check_parties(seller_id, buyer.user_id if buyer else None, buyer.role if buyer else None)
    transfer_id = str(uuid.uuid4())
    t = TransferSaga(c, transfer_id, seller_id, new={
        "transfer_id": transfer_id, "seat_id": seat_id, "event_id": seat.event_id, "seller_user_id": seller_id,
        "buyer_user_id": buyer.user_id, "amount": amount, "face_value": seat.price,
        "expires_at": (datetime.now(timezone.utc) + timedelta(seconds=c.settings.transfer_ttl_seconds)).isoformat()})
    run = c.sagas.start(CONFIRM, t)
    if run.failure is not None:
        raise run.failure
    return view(t.transfer)


def confirm(c: Container, user_id: str, transfer_id: str, seller_otp: str, buyer_otp: str) -> dict:
    t = TransferSaga(c, transfer_id, user_id, seller_otp=seller_otp, buyer_otp=buyer_otp)
    run = c.sagas.resume(CONFIRM, t, rules.DEBIT)
    if run.state.outcome is Outcome.COMPLETED:
        return view(t.transfer)
    if run.failure is not None:
        raise Conflict("the ticket could not be transferred (it was checked in or changed hands); "
                       "the buyer was refunded", code="TICKET_NOT_TRANSFERABLE")
    if run.state.outcome is Outcome.COMPENSATED:
        raise AppError(f"this transfer is {t.transfer.status}", code="TRANSFER_ENDED", status=409)
    raise DependencyUnavailable("the transfer could not be completed now; try again")


def _mine(c: Container, user_id: str, role: str, transfer_id: str) -> Transfer:
    """A transfer the caller may see. Someone else's and a missing one get the very same 404 (code and message):
    whether a transfer id exists is not the caller's to learn."""
    try:
        tr = c.orders.get_transfer(_transfer_id(transfer_id))
    except AppError as err:
        if err.code != OrderError.TRANSFER_NOT_FOUND:
            raise
        tr = None
    if tr is None or not rules.visible_to(tr, user_id, role):
        raise rules.TransferNotFound(rules.NO_SUCH_TRANSFER)
    return tr


def _transfer_id(value: str) -> str:
    transfer_id = canonical_uuid(value)
    if transfer_id is None:
        raise rules.TransferNotFound(rules.NO_SUCH_TRANSFER)
    return transfer_id


def resend_code(c: Container, user_id: str, role: str, transfer_id: str) -> dict:
    """A party's code expired or got lost: a new one, to them only (sends are capped per hour by user-service)."""
    tr = _mine(c, user_id, role, transfer_id)
    if user_id not in (tr.seller_user_id, tr.buyer_user_id):
        raise Forbidden("only the seller or the buyer gets a code for a transfer", code="NOT_A_PARTY")
    if tr.status != TransferStatus.PENDING_OTP:
        raise Conflict(f"this transfer is {tr.status}; it needs no code", code="TRANSFER_NOT_PENDING")
    sent = c.users.send_otp(user_id, rules.otp_purpose(tr.transfer_id))
    return {"transfer_id": tr.transfer_id, "sent": True, "expires_at": sent.model_dump(mode="json")["expires_at"]}


def cancel(c: Container, user_id: str, role: str, transfer_id: str) -> dict:
    tr = _mine(c, user_id, role, transfer_id)
    if tr.seller_user_id != user_id:
        raise Forbidden("only the seller can cancel a transfer", code="NOT_THE_SELLER")
    # Only while nobody has begun confirming: a cancel never overtakes a confirm whose debit may be under way.
    return view(c.orders.transition_transfer(tr.transfer_id, TransferStatus.CANCELLED, reason="cancelled by the seller",
                                             expected_step=TransferStep.INITIATED))


def dispute(c: Container, user_id: str, role: str, transfer_id: str, reason: str) -> dict:
    tr = _mine(c, user_id, role, transfer_id)
    if user_id not in (tr.seller_user_id, tr.buyer_user_id):
        raise Forbidden("only the seller or the buyer can dispute a transfer", code="NOT_A_PARTY")
    return view(c.orders.transition_transfer(tr.transfer_id, TransferStatus.DISPUTED, reason=reason))


def reverse(c: Container, role: str, transfer_id: str) -> dict:
    if role != "admin":
        raise Forbidden("only an admin can reverse a transfer", code="WRONG_ROLE")
    tr = c.orders.get_transfer(_transfer_id(transfer_id))
    if tr.status == TransferStatus.DISPUTED:
        seat = c.inventory.verify(tr.seat_id)
        if seat.status == "CHECKED_IN":
            raise Conflict("the ticket has been checked in; close the dispute instead", code="TICKET_CHECKED_IN")
    t = TransferSaga(c, tr.transfer_id, transfer=tr)
    run = c.sagas.resume(REVERSAL, t, rules.RETURN_TICKET)
    if run.state.outcome is Outcome.COMPLETED:
        return view(t.transfer)
    if run.failure is not None:
        raise Conflict("the ticket could not be returned (it was checked in or changed hands); close the dispute "
                       "instead", code="TICKET_CHECKED_IN")
    raise DependencyUnavailable("the reversal could not be completed now; try again")


def resolve(c: Container, role: str, transfer_id: str, resolution: str) -> dict:
    """An admin closes a dispute the other way: the transfer stays COMPLETED (its proceeds release when due).
    Only while no reversal has begun: one under way may already have returned the ticket, refunded the buyer or
    cancelled the proceeds, so it ends only through the reversal saga (REVERSED, or COMPLETED if the ticket could
    not be returned)."""
    if role != "admin":
        raise Forbidden("only an admin can close a dispute", code="WRONG_ROLE")
    return view(c.orders.transition_transfer(_transfer_id(transfer_id), TransferStatus.COMPLETED,
                                             resolution=resolution, expected_step=TransferStep.CONFIRMING))


def get(c: Container, user_id: str, role: str, transfer_id: str) -> dict:
    return view(_mine(c, user_id, role, transfer_id))


def mine(c: Container, user_id: str, limit: int, offset: int) -> list[dict]:
    return [view(tr) for tr in c.orders.list_transfers(user_id=user_id, limit=limit, offset=offset)]


def view(tr: Transfer) -> dict:
    fields = tr.model_dump(mode="json")
    return {k: fields[k] for k in ("transfer_id", "seat_id", "event_id", "seller_user_id", "buyer_user_id", "amount",
                                   "status", "expires_at", "dispute_reason", "resolution", "completed_at",
                                   "release_at", "released_at", "failure_reason", "created_at", "updated_at")}

