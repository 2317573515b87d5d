"""A fan's tickets: the seats they own or hold, with their event and any transfer waiting for codes."""
from __future__ import annotations

from trcommon.errors import NotFound
from trcontracts.orders import TransferStatus

from ..bootstrap import Container
from . import transfers


def my_tickets(c: Container, user_id: str) -> list[dict]:
    seats = c.inventory.list_tickets(user_id)
    events = {}
    for event_id in {s.event_id for s in seats}:
        try:
            events[event_id] = c.events.get(event_id)
        except NotFound:
            events[event_id] = None
    pending = {t.seat_id: t for t in c.orders.list_transfers(user_id=user_id, status=TransferStatus.PENDING_OTP,
                                                              limit=200, offset=0)}
    tickets = []
    for s in seats:
        event = events[s.event_id]
        transfer = pending.get(s.seat_id)
        tickets.append({
            "seat_id": s.seat_id, "event_id": s.event_id, "event_name": event.name if event else None,
            "hall_id": event.hall_id if event else None,
            "starts_at": event.model_dump(mode="json")["starts_at"] if event else None,
            "section": s.section, "row": s.row, "number": s.number, "price": s.price, "status": s.status,
            "ticket_version": s.ticket_version, "held_until": s.held_until or None,
            "pending_transfer": transfers.view(transfer) if transfer else None})
    return tickets
