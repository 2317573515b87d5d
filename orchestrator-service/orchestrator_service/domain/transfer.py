"""Rules of fan-to-fan transfers, free of any transport: who may do what, the price cap, when proceeds are
released, and how a transfer's record reads as the state of each of its sagas (docs/sagas.md, docs/design.md)."""
from __future__ import annotations

from datetime import datetime, timedelta

from trcommon.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from trcommon.saga import Outcome, SagaState
from trcontracts.events import EventStatus
from trcontracts.inventory import InventoryError
from trcontracts.orders import OrderError, Transfer, TransferStatus, TransferStep

# The confirm saga: initiate runs record and codes; the parties' /transfer/confirm begins the debit.
RECORD, CODES, DEBIT, CREDIT, MOVE_TICKET = "record", "codes", "debit", "credit", "move-ticket"
CONFIRM_STEPS = (RECORD, CODES, DEBIT, CREDIT, MOVE_TICKET)
# The admin's reversal, and the release of the seller's proceeds once the dispute window has closed.
RETURN_TICKET, REFUND, UNCREDIT = "return-ticket", "refund", "uncredit"
REVERSAL_STEPS = (RETURN_TICKET, REFUND, UNCREDIT)
RELEASE = "release"

# Answers of UpdateOwner that mean the ticket can no longer move (checked in, or no longer the seller's).
TICKET_STUCK_CODES = frozenset({InventoryError.NOT_OWNER, InventoryError.SEAT_NOT_FOUND,
                                InventoryError.SEAT_UNAVAILABLE})


def otp_purpose(transfer_id: str) -> str:
    return f"transfer:{transfer_id}"


def ticket_stuck(err: AppError) -> bool:
    return err.code in TICKET_STUCK_CODES


NO_SUCH_TRANSFER = "no such transfer"


class TransferNotFound(NotFound):
    code = OrderError.TRANSFER_NOT_FOUND


def check_price(amount: int, face_value: int, cap: str) -> None:
    """0 (a gift) up to the seat's face value, unless the cap is lifted."""
    if cap == "face" and amount > face_value:
        raise InvalidInput(f"a ticket can be transferred for at most its face value ({face_value} credits)",
                           code="PRICE_ABOVE_FACE_VALUE")


def check_parties(seller_id: str, buyer_id: str | None, buyer_role: str | None) -> None:
    if buyer_id is None:
        raise NotFound("no registered fan has this email", code="BUYER_NOT_FOUND")
    if buyer_id == seller_id:
        raise InvalidInput("a ticket cannot be transferred to its own owner", code="CANNOT_TRANSFER_TO_SELF")
    if buyer_role != "fan":
        raise InvalidInput("tickets can only be transferred to fans", code="BUYER_NOT_A_FAN")


def check_transferable(status: str, owner_id: str, seller_id: str) -> None:
    """Only a paid ticket its caller owns, not yet used at the gate."""
    if status == "CHECKED_IN":
        raise Conflict("this ticket has been checked in; it cannot be transferred", code="TICKET_CHECKED_IN")
    if status != "SOLD":
        raise Conflict(f"the seat is {status}, not a paid ticket", code="TICKET_NOT_TRANSFERABLE")
    if owner_id != seller_id:
        raise Forbidden("this ticket is not yours", code="NOT_TICKET_OWNER")


def check_event_not_cancelled(status: str) -> None:
    """A ticket of a cancelled event (one a cancellation could not take back: transferred away before it) is worth
    nothing to a buyer: it is not offered on."""
    if status in (EventStatus.CANCELLING, EventStatus.CANCELLED):
        raise Conflict("the event is cancelled; its tickets cannot be transferred", code="EVENT_CANCELLED")


def visible_to(t: Transfer, user_id: str, role: str) -> bool:
    return role == "admin" or user_id in (t.seller_user_id, t.buyer_user_id)


def release_at(completed: datetime, window_seconds: int, event_starts_at: datetime) -> datetime:
    """Proceeds stay pending for the dispute window, and never past the event's start."""
    return min(completed + timedelta(seconds=window_seconds), event_starts_at)


def confirm_state(t: Transfer, now: datetime, fence_seconds: float) -> SagaState:
    """The confirm saga's state on a transfer. A PENDING_OTP transfer has its record and its codes; the debit
    waits for a party's /transfer/confirm, which records step CONFIRMING first. A debit is refused after
    expires_at, so "no debit" is final once expires_at plus a small fence has passed."""
    if t.status in (TransferStatus.COMPLETED, TransferStatus.DISPUTED, TransferStatus.REVERSED):
        return SagaState(done=len(CONFIRM_STEPS), outcome=Outcome.COMPLETED)
    if t.status != TransferStatus.PENDING_OTP:
        return SagaState(outcome=Outcome.COMPENSATED)
    confirming = t.step == TransferStep.CONFIRMING
    deadline = t.expires_at + timedelta(seconds=fence_seconds if confirming else 0)
    return SagaState(done=CONFIRM_STEPS.index(DEBIT), begun=confirming, deadline_passed=deadline <= now)


def reversal_state(t: Transfer) -> SagaState:
    if t.status == TransferStatus.REVERSED:
        return SagaState(done=len(REVERSAL_STEPS), outcome=Outcome.COMPLETED)
    if t.status == TransferStatus.DISPUTED:
        return SagaState(begun=t.step == TransferStep.REVERSING)
    return SagaState(outcome=Outcome.COMPENSATED)


def release_state(t: Transfer, now: datetime) -> SagaState:
    if t.released_at is not None:
        return SagaState(done=1, outcome=Outcome.COMPLETED)
    due = t.status == TransferStatus.COMPLETED and t.release_at is not None and t.release_at <= now
    return SagaState() if due else SagaState(outcome=Outcome.COMPENSATED)
