"""The gate (docs/design.md): rotating signed codes for ticket holders, and the scanner's check at a hall.

A code's signature, key and age are checked here first with no remote call; only then are inventory-, order-
and event-service asked, at once, from the container's fan-out threads. Every scan ends as exactly one
entry_logs row: MarkCheckedIn writes its own (for the winner and the losers), RecordScan every other one."""
from __future__ import annotations

import contextvars
import time
from datetime import datetime, timezone

from trcommon.errors import AppError, NotFound
from trcontracts.inventory import InventoryError, ScanResult, SeatStatus
from trcontracts.orders import OrderStatus

from ..adapters.inventory import SeatView
from ..adapters.qr import InvalidCode, png
from ..bootstrap import Container
from ..domain.gate import QrClaims, SeatState, Verdict, judge_age, judge_ticket
from ..domain.ids import canonical_uuid


def _is_uuid(value: str) -> bool:
    """Only the canonical form: a signed code names its seat exactly as it was issued."""
    return isinstance(value, str) and canonical_uuid(value) == value.lower()


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def _seat_or_none(c: Container, seat_id: str) -> SeatView | None:
    try:
        return c.inventory.verify(seat_id)
    except AppError as err:
        if err.code == InventoryError.SEAT_NOT_FOUND:
            return None
        raise


def issue_code(c: Container, user_id: str, seat_id: str) -> dict:
    """A fresh code for the seat's owner (SOLD, CHECKED_IN) or its live holder; NotFound for anyone else, so a
    stranger learns nothing about the seat."""
    seat = _seat_or_none(c, seat_id) if _is_uuid(seat_id) else None
    holder = seat is not None and (
        (seat.status in (SeatStatus.SOLD, SeatStatus.CHECKED_IN) and seat.owner_user_id == user_id)
        or (seat.status == SeatStatus.HELD and seat.held_by_user_id == user_id))
    if not holder:
        raise NotFound("no such ticket")
    issued_at = int(time.time())
    code = c.qr.sign(seat.seat_id, user_id, seat.ticket_version, issued_at)
    return {"qr": code, "expires_at": _iso(issued_at + c.settings.qr_ttl_seconds)}


def code_png(code: str) -> bytes:
    return png(code)


def public_keys(c: Container) -> dict:
    return c.qr.jwks()


def _in_thread(c: Container, fn, *args):
    """Run `fn` on a fan-out thread with this request's context (its request id travels with the call)."""
    return c.fanout.submit(contextvars.copy_context().run, fn, *args)


def _paid_order(c: Container, seat_id: str):
    found = c.orders.list(seat_id=seat_id, status=OrderStatus.CONFIRMED, limit=1)
    return found[0] if found else None


def _event_or_none(c: Container, event_id: str):
    try:
        return c.events.get(event_id)
    except NotFound:
        return None


def _order_and_event(c: Container, seat_id: str):
    order = _paid_order(c, seat_id)
    return order, (_event_or_none(c, order.event_id) if order else None)


def verify(c: Container, scanner_id: str, code: str, hall_id: str) -> dict:
    now = int(time.time())
    try:
        claims = c.qr.read(code)
    except InvalidCode as exc:
        return _logged(c, scanner_id, hall_id, None, Verdict(ScanResult.INVALID, "not a valid ticket code"), str(exc))
    verdict = judge_age(claims, now, c.settings.qr_ttl_seconds, c.settings.qr_clock_skew_seconds)
    if verdict is not None:
        return _logged(c, scanner_id, hall_id, claims, verdict)
    if not _is_uuid(claims.seat_id):
        return _logged(c, scanner_id, hall_id, claims, Verdict(ScanResult.NOT_FOUND, "no such ticket"))

    # The seat and its paid order (with the order's event) at once; the event of an unpaid seat comes after.
    seat_f = _in_thread(c, _seat_or_none, c, claims.seat_id)
    paid_f = _in_thread(c, _order_and_event, c, claims.seat_id)
    seat, (order, event) = seat_f.result(), paid_f.result()
    if seat is not None and (event is None or event.event_id != seat.event_id):
        event = _event_or_none(c, seat.event_id)

    state = SeatState(seat.status, seat.owner_user_id, seat.held_by_user_id, seat.ticket_version) if seat else None
    verdict = judge_ticket(claims, state, order is not None, event.hall_id if event else None, hall_id)
    if verdict is None:
        return _check_in(c, scanner_id, hall_id, claims, seat, event)
    if verdict.result == ScanResult.DUPLICATE:
        verdict = Verdict(ScanResult.DUPLICATE, _already_in(seat, event))
    return _logged(c, scanner_id, hall_id, claims, verdict, seat=seat, event=event)


def _already_in(seat: SeatView, event) -> str:
    hall = event.hall_name if event and event.hall_id == seat.checked_in_hall_id else seat.checked_in_hall_id
    return f"already checked in at {seat.checked_in_at} in hall {hall}"


def _check_in(c: Container, scanner_id: str, hall_id: str, claims: QrClaims, seat: SeatView, event) -> dict:
    """MarkCheckedIn decides under the seat's row lock, for the code's holder and version, and logs the scan."""
    try:
        result, now_seat = c.inventory.mark_checked_in(seat.seat_id, hall_id, scanner_id, claims.holder_id,
                                                       claims.version)
    except AppError as err:
        # The ticket changed under the scan (refunded, reversed): MarkCheckedIn wrote nothing, so log it here.
        if err.code == InventoryError.SEAT_NOT_FOUND:
            return _logged(c, scanner_id, hall_id, claims, Verdict(ScanResult.NOT_FOUND, "no such ticket"))
        if err.code == InventoryError.SEAT_UNAVAILABLE:
            return _logged(c, scanner_id, hall_id, claims,
                           Verdict(ScanResult.INVALID, "the ticket is no longer valid"), seat=seat, event=event)
        raise
    verdict = {ScanResult.CHECKED_IN: Verdict(ScanResult.CHECKED_IN, "welcome"),
               ScanResult.DUPLICATE: Verdict(ScanResult.DUPLICATE, _already_in(now_seat, event))}.get(
        result, Verdict(ScanResult.INVALID, "code issued before the ticket changed hands"))
    return _reply(verdict, hall_id, now_seat, event)


def _logged(c: Container, scanner_id: str, hall_id: str, claims: QrClaims | None, verdict: Verdict,
            detail: str = "", seat: SeatView | None = None, event=None) -> dict:
    """Log a scan that MarkCheckedIn did not decide: the code's seat and version when it could be read."""
    c.inventory.record_scan(claims.seat_id if claims else "", hall_id, verdict.result, detail or verdict.message,
                            scanner_id, claims.version if claims else 0)
    return _reply(verdict, hall_id, seat, event)


def _reply(verdict: Verdict, hall_id: str, seat: SeatView | None, event) -> dict:
    reply = {"result": verdict.result.value, "message": verdict.message, "hall_id": hall_id,
             "seat": {"section": seat.section, "row": seat.row, "number": seat.number} if seat else None,
             "event": {"event_id": event.event_id, "name": event.name} if event else None}
    if seat is not None and verdict.result in (ScanResult.CHECKED_IN, ScanResult.DUPLICATE):
        reply["checked_in_at"] = seat.checked_in_at or None
        reply["checked_in_hall_id"] = seat.checked_in_hall_id or None
    return reply
