"""gRPC client of inventory-service: one long-lived channel, a deadline on every call, errors as AppError."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc
from cachetools import TTLCache, cached
from trproto import inventory_pb2 as pb
from trproto import inventory_pb2_grpc as pb_grpc

from trcommon.grpc_support import app_error_from_rpc, client_channel, retry_service_config
from trcontracts import inventory


@dataclass(frozen=True)
class SeatView:
    seat_id: str
    event_id: str
    section: str
    row: str
    number: int
    price: int
    status: str
    held_by_user_id: str
    hold_id: str
    held_until: str
    owner_user_id: str
    ticket_version: int
    checked_in_at: str
    checked_in_hall_id: str

    @classmethod
    def from_pb(cls, s: pb.Seat) -> "SeatView":
        return cls(s.seat_id, s.event_id, s.section, s.row, s.number, s.price,
                   inventory.SEAT_STATUS_BY_NUMBER.get(s.status, "UNKNOWN"), s.held_by_user_id, s.hold_id, s.held_until,
                   s.owner_user_id, s.ticket_version, s.checked_in_at, s.checked_in_hall_id)

    def public(self) -> dict:
        return {"seat_id": self.seat_id, "section": self.section, "row": self.row, "number": self.number,
                "price": self.price, "status": self.status}


def _naming(seat_ids: list[str]) -> dict:
    """A request's seats: one seat as `seat_id` (as before holds covered several), several as `seat_ids`."""
    return {"seat_id": seat_ids[0]} if len(seat_ids) == 1 else {"seat_ids": list(seat_ids)}


class InventoryClient:
    # Safe to repeat (the contract's idempotent RPCs): a retried reserve with the same hold id returns that hold,
    # confirm and release are idempotent, UpdateOwner is keyed by its change key, reads are reads. MarkCheckedIn
    # is not retried (a repeat after a success would answer DUPLICATE).
    RETRIED = [rpc.name for rpc in inventory.RPCS if rpc.idempotent]

    def __init__(self, target: str, token: str, timeout: float, seat_map_seconds: float = 0.0,
                 seat_map_events: int = 1024):
        self._channel = client_channel(target, token, timeout, retry_service_config(
            pb.DESCRIPTOR.services_by_name["Inventory"].full_name, self.RETRIED))
        self._stub = pb_grpc.InventoryStub(self._channel)
        # The public seat map of an event is kept for `seat_map_seconds` (0: not kept): in a flash sale thousands
        # of fans read the same map at once, and one read of inventory then serves them all (the others wait for
        # it rather than asking too). A seat this process reserves, confirms, checks in or hands over drops its
        # event's map at once, so a fan sees their own change; a change made elsewhere (a hold expiring, another
        # orchestrator replica) shows within `seat_map_seconds`. The map is advisory: /reserve decides.
        self._seat_maps = None
        if seat_map_seconds > 0:
            self._seat_maps = cached(TTLCache(seat_map_events, seat_map_seconds), key=lambda event_id: event_id,
                                     condition=threading.Condition())(self._list_seats)

    def _changed(self, seat: SeatView) -> SeatView:
        self._forget_map(seat.event_id)
        return seat

    def _forget_map(self, event_id: str) -> None:
        if self._seat_maps is not None:
            with self._seat_maps.cache_lock:
                self._seat_maps.cache.pop(event_id, None)

    def _call(self, method, request):
        try:
            return method(request)
        except grpc.RpcError as exc:
            raise app_error_from_rpc(exc) from None

    def reserve(self, seat_ids: list[str], user_id: str, hold_id: str, hold_seconds: int) -> list[SeatView]:
        """Hold the seats (1-8 of one event) under one hold, all or none; the seats by seat_id."""
        reply = self._call(self._stub.ReserveSeat, pb.ReserveSeatRequest(
            user_id=user_id, hold_id=hold_id, hold_seconds=hold_seconds, **_naming(seat_ids)))
        return self._all_changed(reply)

    def confirm(self, seat_ids: list[str], user_id: str, hold_id: str) -> list[SeatView]:
        reply = self._call(self._stub.ConfirmSeat, pb.ConfirmSeatRequest(user_id=user_id, hold_id=hold_id,
                                                                         **_naming(seat_ids)))
        return self._all_changed(reply)

    def release(self, seat_ids: list[str], hold_id: str) -> bool:
        reply = self._call(self._stub.ReleaseSeat, pb.ReleaseSeatRequest(hold_id=hold_id, **_naming(seat_ids)))
        if reply.released:
            self._all_changed(reply)
        return reply.released

    def _all_changed(self, reply) -> list[SeatView]:
        seats = [SeatView.from_pb(s) for s in (reply.seats or [reply.seat])]
        self._changed(seats[0])     # one event: its map is dropped once
        return seats

    def update_owner(self, seat_id: str, expected_owner_id: str, new_owner_id: str, change_key: str) -> SeatView:
        reply = self._call(self._stub.UpdateOwner, pb.UpdateOwnerRequest(
            seat_id=seat_id, expected_owner_id=expected_owner_id, new_owner_id=new_owner_id, change_key=change_key))
        return self._changed(SeatView.from_pb(reply.seat))

    def return_seats(self, seat_ids: list[str], owner_user_id: str, hold_id: str, change_key: str) -> list[SeatView]:
        """A refund takes the order's tickets back to sale, all or none, once per change_key."""
        reply = self._call(self._stub.ReturnSeats, pb.ReturnSeatsRequest(
            seat_ids=list(seat_ids), owner_user_id=owner_user_id, hold_id=hold_id, change_key=change_key))
        return self._all_changed(reply)

    def verify(self, seat_id: str) -> SeatView:
        return SeatView.from_pb(self._call(self._stub.VerifyTicket, pb.VerifyTicketRequest(seat_id=seat_id)).seat)

    def mark_checked_in(self, seat_id: str, hall_id: str, scanner_user_id: str, holder_user_id: str,
                        ticket_version: int) -> tuple[inventory.ScanResult, SeatView]:
        """What the scan of a code of (holder, version) logged, with the seat as it is now: CHECKED_IN for the one
        call that checked the seat in; DUPLICATE (the seat says when and where) or INVALID for the others."""
        reply = self._call(self._stub.MarkCheckedIn, pb.MarkCheckedInRequest(
            seat_id=seat_id, hall_id=hall_id, scanner_user_id=scanner_user_id, holder_user_id=holder_user_id,
            ticket_version=ticket_version))
        return inventory.ScanResult(reply.result), self._changed(SeatView.from_pb(reply.seat))

    def record_scan(self, seat_id: str, hall_id: str, result: str, detail: str, scanner_user_id: str,
                    ticket_version: int = 0) -> int:
        return self._call(self._stub.RecordScan, pb.RecordScanRequest(
            seat_id=seat_id[:200], hall_id=hall_id[:200], result=result, detail=detail[:1000],
            scanner_user_id=scanner_user_id, ticket_version=max(0, min(ticket_version, 2**31 - 1)))).id

    def list_tickets(self, user_id: str) -> list[SeatView]:
        reply = self._call(self._stub.ListTickets, pb.ListTicketsRequest(user_id=user_id))
        return [SeatView.from_pb(s) for s in reply.seats]

    def list_seats(self, event_id: str) -> tuple[SeatView, ...]:
        """The event's public seat map, possibly `seat_map_seconds` old (see __init__)."""
        if self._seat_maps is not None:
            return self._seat_maps(event_id)
        return self._list_seats(event_id)

    def _list_seats(self, event_id: str) -> tuple[SeatView, ...]:
        reply = self._call(self._stub.ListSeats, pb.ListSeatsRequest(event_id=event_id))
        return tuple(SeatView.from_pb(s) for s in reply.seats)

    # --- organizer operations: each drops the event's seat map here, so a new grid, a closed sale or a new price
    # shows at once in this process (and within `seat_map_seconds` in another replica).

    def create_seat_grid(self, event_id: str, sections: list[dict], on_sale: bool) -> tuple[int, int]:
        """Create the event's grid: `sections` are dicts with `section`, `price`, `rows` (list of labels) and
        `seats_per_row`. (created, total): created is 0 when the same grid was already there."""
        try:
            reply = self._call(self._stub.CreateSeatGrid, pb.CreateSeatGridRequest(
                event_id=event_id, on_sale=on_sale,
                sections=[pb.GridSection(section=s["section"], price=s["price"], rows=list(s["rows"]),
                                         seats_per_row=s["seats_per_row"]) for s in sections]))
        finally:
            self._forget_map(event_id)
        return reply.created, reply.total

    def set_event_sale(self, event_id: str, on_sale: bool) -> tuple[int, int]:
        """Open or close the event's sale (closing ends every hold of it): (changed, released)."""
        try:
            reply = self._call(self._stub.SetEventSale, pb.SetEventSaleRequest(event_id=event_id, on_sale=on_sale))
        finally:
            self._forget_map(event_id)
        return reply.changed, reply.released

    def update_prices(self, event_id: str, price: int, section: str | None = None,
                      seat_ids: list[str] | None = None) -> tuple[int, int]:
        """Reprice the event's free seats (all, one section, or the listed ones): (updated, skipped)."""
        request = pb.UpdatePricesRequest(event_id=event_id, price=price, seat_ids=list(seat_ids or ()))
        if section is not None:
            request.section = section
        try:
            reply = self._call(self._stub.UpdatePrices, request)
        finally:
            self._forget_map(event_id)
        return reply.updated, reply.skipped

    def sales_report(self, event_id: str) -> dict:
        """`{"available", "held", "sold", "checked_in", "total", "face_value_sold", "sections": [{"section",
        "total", "sold", "checked_in", "price_min", "price_max", "face_value_sold"}]}`: seat counts (held: live
        holds only; a lapsed hold counts as available), face value = sum of the prices of SOLD and CHECKED_IN
        seats; sections by name."""
        r = self._call(self._stub.SalesReport, pb.SalesReportRequest(event_id=event_id))
        return {"available": r.available, "held": r.held, "sold": r.sold, "checked_in": r.checked_in,
                "total": r.total, "face_value_sold": r.face_value_sold,
                "sections": [{"section": s.section, "total": s.total, "sold": s.sold, "checked_in": s.checked_in,
                              "price_min": s.price_min, "price_max": s.price_max,
                              "face_value_sold": s.face_value_sold} for s in r.sections]}

    def gate_report(self, event_id: str, bucket_seconds: int, limit: int, offset: int) -> dict:
        """`{"by_result": {result: count}, "by_hall": [{"hall_id", "result", "count"}], "check_ins":
        [{"bucket_start" (RFC 3339), "count"}], "total_buckets"}`: the event's gate scans by result and by hall
        (hall, then result), and CHECKED_IN scans per `bucket_seconds` by time, `limit` buckets from `offset`."""
        r = self._call(self._stub.GateReport, pb.GateReportRequest(
            event_id=event_id, bucket_seconds=bucket_seconds, limit=limit, offset=offset))
        return {"by_result": {c.result: c.count for c in r.by_result},
                "by_hall": [{"hall_id": c.hall_id, "result": c.result, "count": c.count} for c in r.by_hall],
                "check_ins": [{"bucket_start": b.bucket_start, "count": b.count} for b in r.check_ins],
                "total_buckets": r.total_buckets}

    def health(self) -> None:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        try:
            reply = health_pb2_grpc.HealthStub(self._channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                                   timeout=2)
        except grpc.RpcError as exc:
            raise app_error_from_rpc(exc) from None
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError("inventory-service is not serving")

    def close(self) -> None:
        self._channel.close()
