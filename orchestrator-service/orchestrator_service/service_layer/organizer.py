"""What organizers do through the admin API: venues and halls, events with their seat grids, putting an event on sale,
prices of unsold seats, calling an event off, and the sales and gate reports. Every change is an audited admin action
(admin_audit); objects created with an `Idempotency-Key` get ids derived from it, so a retried request creates
nothing twice and ends where the first one would have."""
from __future__ import annotations

from trcommon.errors import AppError, Conflict
from trcontracts.events import Event, EventStatus

from ..bootstrap import Container
from .admin_audit import audited, derived_id
from .event_cancel import cancel_event


class EventNotEditable(Conflict):
    code = "EVENT_CANCELLED"


class EventHasNoSeats(Conflict):
    code = "EVENT_HAS_NO_SEATS"


def _json(model) -> dict:
    return model.model_dump(mode="json")


def _event(c: Container, event_id: str) -> Event:
    """The event as event-service has it now (not the orchestrator's short cache)."""
    c.events.forget(event_id)
    return c.events.get(event_id)


def create_venue(c: Container, admin_id: str, body: dict, key: str | None) -> dict:
    venue_id = derived_id(admin_id, "venue.create", key)
    return audited(c, admin_id, "venue.create", "venue", venue_id, body,
                   lambda: _json(c.events.create_venue({"venue_id": venue_id, **body})), key=key)


def create_hall(c: Container, admin_id: str, venue_id: str, body: dict, key: str | None) -> dict:
    hall_id = derived_id(admin_id, f"hall.create:{venue_id}", key)
    return audited(c, admin_id, "hall.create", "hall", hall_id, {"venue_id": venue_id, **body},
                   lambda: _json(c.events.create_hall(venue_id, {"hall_id": hall_id, **body})), key=key)


def create_event(c: Container, admin_id: str, body: dict, sections: list[dict], publish: bool,
                 key: str | None) -> dict:
    """The event (DRAFT) and its whole seat grid in one request; `publish` puts it on sale at once. Each part is
    idempotent under the event id, so a retry with the same Idempotency-Key completes what a failed request began."""
    event_id = derived_id(admin_id, "event.create", key)

    def act() -> dict:
        event = c.events.create_event({"event_id": event_id, **body})
        created, total = c.inventory.create_seat_grid(event_id, sections, on_sale=False)
        if publish:
            event = _open(c, event_id)
        return {"event": _json(event), "seats": {"created": created, "total": total}}

    return audited(c, admin_id, "event.create", "event", event_id, {**body, "sections": sections, "publish": publish},
                   act, key=key)


def _open(c: Container, event_id: str) -> Event:
    """Seats on sale, then the event listed ON_SALE. If the event is being cancelled meanwhile, event-service refuses
    the second step and the seats are closed again (the cancellation's first step closes them too)."""
    if c.inventory.sales_report(event_id)["total"] == 0:
        raise EventHasNoSeats("the event has no seats; create its seat grid first")
    c.inventory.set_event_sale(event_id, True)
    try:
        event = c.events.publish(event_id)
    except AppError:
        if _event(c, event_id).status in (EventStatus.CANCELLING, EventStatus.CANCELLED):
            c.inventory.set_event_sale(event_id, False)
        raise
    c.events.forget(event_id)
    return event


def publish(c: Container, admin_id: str, event_id: str) -> dict:
    before = _event(c, event_id)
    if before.status in (EventStatus.CANCELLING, EventStatus.CANCELLED):
        raise EventNotEditable(f"the event is {before.status}; it cannot go on sale")
    return audited(c, admin_id, "event.publish", "event", event_id, {}, lambda: _json(_open(c, event_id)),
                   before=_json(before))


def cancel(c: Container, admin_id: str, event_id: str, reason: str) -> dict:
    before = _event(c, event_id)
    return audited(c, admin_id, "event.cancel", "event", event_id, {"reason": reason},
                   lambda: cancel_event(c, before, reason), before=_json(before))


def update_prices(c: Container, admin_id: str, event_id: str, price: int, section: str | None,
                  seat_ids: list[str] | None) -> dict:
    event = _event(c, event_id)
    if event.status in (EventStatus.CANCELLING, EventStatus.CANCELLED):
        raise EventNotEditable(f"the event is {event.status}; its prices are final")
    request = {"price": price, "section": section, "seat_ids": seat_ids}

    def act() -> dict:
        updated, skipped = c.inventory.update_prices(event_id, price, section=section, seat_ids=seat_ids)
        return {"event_id": event_id, "updated": updated, "skipped": skipped}

    return audited(c, admin_id, "event.prices", "event", event_id, request, act)


def list_events(c: Container, limit: int, offset: int, status: list[str] | None) -> dict:
    return _json(c.events.list(limit, offset, status=status))


def sales_report(c: Container, event_id: str) -> dict:
    event = _event(c, event_id)
    futures = (c.fanout.submit(c.inventory.sales_report, event_id), c.fanout.submit(c.orders.event_sales, event_id))
    seats, orders = futures[0].result(), futures[1].result()
    return {"event": _json(event), "seats": seats, "orders": _json(orders)}


def gate_report(c: Container, event_id: str, bucket_seconds: int, limit: int, offset: int) -> dict:
    """Scans by result, by hall (with its name; a scan at a hall of another venue is named by id only) and check-ins
    over time in `bucket_seconds` buckets, `limit` buckets from `offset`."""
    event = _event(c, event_id)
    report = c.inventory.gate_report(event_id, bucket_seconds, limit, offset)
    names = {h.hall_id: h.name for h in c.events.get_venue(event.venue_id).halls}
    halls: dict[str, dict] = {}
    for row in report["by_hall"]:
        hall = halls.setdefault(row["hall_id"], {"hall_id": row["hall_id"], "hall_name": names.get(row["hall_id"]),
                                                 "scans": 0, "results": {}})
        hall["results"][row["result"]] = row["count"]
        hall["scans"] += row["count"]
    return {"event": _json(event), "scans": sum(report["by_result"].values()), "by_result": report["by_result"],
            "by_hall": list(halls.values()), "bucket_seconds": bucket_seconds, "check_ins": report["check_ins"],
            "total_buckets": report["total_buckets"], "limit": limit, "offset": offset}
