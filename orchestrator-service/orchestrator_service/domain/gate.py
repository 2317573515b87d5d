"""The gate's rules (docs/design.md): what a scanned code's claims and the seat as it is now mean at a hall.

Plain data and pure functions; the signature is checked before any of this runs (adapters/qr.py)."""
from __future__ import annotations

from dataclasses import dataclass

from trcontracts.inventory import ScanResult, SeatStatus


@dataclass(frozen=True)
class QrClaims:
    seat_id: str
    holder_id: str
    version: int
    issued_at: int
    jti: str


@dataclass(frozen=True)
class SeatState:
    status: str
    owner_id: str
    held_by: str
    ticket_version: int


@dataclass(frozen=True)
class Verdict:
    result: ScanResult
    message: str


def judge_age(claims: QrClaims, now: int, ttl: int, skew: int) -> Verdict | None:
    """EXPIRED once `iat + ttl` is past (plus the tolerated skew); INVALID when issued in the future."""
    if claims.issued_at > now + skew:
        return Verdict(ScanResult.INVALID, "code issued in the future")
    if now > claims.issued_at + ttl + skew:
        return Verdict(ScanResult.EXPIRED, "code expired; ask the fan to refresh it")
    return None


def judge_ticket(claims: QrClaims, seat: SeatState | None, paid: bool, event_hall_id: str | None,
                 hall_id: str) -> Verdict | None:
    """The verdict from the seat, its order and its event; None means the ticket may enter now (check it in).

    A code names a holder and a ticket version: a transfer or a refund bumps the version (and moves or clears the
    owner), so every code issued before it is INVALID."""
    if seat is None:
        return Verdict(ScanResult.NOT_FOUND, "no such ticket")
    if claims.version != seat.ticket_version:
        if seat.status == SeatStatus.AVAILABLE:      # given back (a refund) and not sold again since
            return Verdict(ScanResult.INVALID, "the ticket was refunded; its codes admit nobody")
        return Verdict(ScanResult.INVALID, "code issued before the ticket changed hands")
    if seat.status == SeatStatus.HELD:
        if claims.holder_id != seat.held_by:
            return Verdict(ScanResult.INVALID, "code not issued to the seat's holder")
        return Verdict(ScanResult.UNPAID, "seat held but not paid")
    if seat.status not in (SeatStatus.SOLD, SeatStatus.CHECKED_IN) or claims.holder_id != seat.owner_id:
        return Verdict(ScanResult.INVALID, "code not issued to the ticket's owner")
    if event_hall_id is None:
        return Verdict(ScanResult.NOT_FOUND, "the ticket's event no longer exists")
    if event_hall_id != hall_id:
        return Verdict(ScanResult.WRONG_HALL, "this ticket is for another hall")
    if seat.status == SeatStatus.CHECKED_IN:
        return Verdict(ScanResult.DUPLICATE, "already checked in")
    if not paid:
        # The seat is sold a moment before its order is confirmed (docs/sagas.md): payment not finished yet.
        return Verdict(ScanResult.UNPAID, "payment not finished")
    return None
