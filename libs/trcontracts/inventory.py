"""The gRPC side of inventory-service: what proto/inventory.proto cannot say.

The proto defines the messages and the `SeatStatus` numbers; this module names the outcome codes each RPC can
answer (an AppError code and its HTTP status, carried in the gRPC status details), the seat states by name, and
which RPCs are safe for a client to repeat.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, auto

from trproto import inventory_pb2 as pb

from .base import ErrorCode


class InventoryError(ErrorCode):
    SEAT_NOT_FOUND = auto(), 404
    # Sold, checked in, or held by another live hold; also "seat busy" (the row lock is taken; gRPC ABORTED).
    SEAT_UNAVAILABLE = auto(), 409
    HOLD_EXPIRED = auto(), 410
    TOO_MANY_HOLDS = auto(), 429
    NOT_OWNER = auto(), 409
    # A ticket already used at the gate cannot be returned.
    SEAT_CHECKED_IN = auto(), 409
    HOLD_ID_IN_USE = auto(), 409
    # One hold covers seats of one event only.
    SEATS_NOT_IN_ONE_EVENT = auto(), 400
    # The seat's event is not on sale (not published yet, or its sale was closed: a cancellation).
    EVENT_NOT_ON_SALE = auto(), 409
    # The event already has seats, and they are not the grid asked for.
    GRID_EXISTS = auto(), 409


# A hold (one order) covers 1 to MAX_SEATS_PER_HOLD distinct seats of one event.
MAX_SEATS_PER_HOLD = 8

# The bounds of one CreateSeatGrid call.
MAX_GRID_SECTIONS = 50
MAX_SECTION_NAME = 40
MAX_GRID_ROWS = 200
MAX_ROW_LABEL = 8
MAX_SEATS_PER_ROW = 500
MAX_GRID_SEATS = 20_000
MAX_SEAT_PRICE = 100_000_000
# GateReport's check-in buckets and page.
MIN_BUCKET_SECONDS, MAX_BUCKET_SECONDS, DEFAULT_BUCKET_SECONDS = 60, 86_400, 300
MAX_REPORT_PAGE, DEFAULT_REPORT_PAGE = 500, 100


class SeatStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    HELD = "HELD"
    SOLD = "SOLD"
    CHECKED_IN = "CHECKED_IN"


class ScanResult(StrEnum):
    """The answer of a gate scan (RecordScanRequest.result); every scan is logged with one of these."""

    CHECKED_IN = "CHECKED_IN"
    DUPLICATE = "DUPLICATE"
    UNPAID = "UNPAID"
    NOT_FOUND = "NOT_FOUND"
    WRONG_HALL = "WRONG_HALL"
    EXPIRED = "EXPIRED"
    INVALID = "INVALID"


# The proto's SeatStatus numbers by state (SEAT_STATUS_UNSPECIFIED has no state).
SEAT_STATUS_BY_NUMBER: dict[int, SeatStatus] = {pb.SeatStatus.Value(s.value): s for s in SeatStatus}


@dataclass(frozen=True)
class Rpc:
    """One RPC of the Inventory service: its outcome codes and whether a client may repeat it (a repeat after
    a lost answer returns the same result)."""

    name: str
    errors: tuple[InventoryError, ...]
    idempotent: bool
    doc: str = ""


E = InventoryError

RESERVE_SEAT = Rpc(
    "ReserveSeat", (E.SEAT_NOT_FOUND, E.SEAT_UNAVAILABLE, E.TOO_MANY_HOLDS, E.HOLD_ID_IN_USE,
                    E.SEATS_NOT_IN_ONE_EVENT, E.EVENT_NOT_ON_SALE), idempotent=True,
    doc="`seat_id`, or `seat_ids` (1 to 8 distinct seats of one event): all held under one hold id or none. "
        "EVENT_NOT_ON_SALE: the seats' sale is closed (`on_sale` false: an event not published, or cancelled). "
        "The rows are locked NOWAIT in ascending seat_id order. SEAT_UNAVAILABLE: a seat is sold, or held by a "
        "live hold (`details.seat_ids` names them); with gRPC ABORTED when a row lock is taken (NOWAIT; "
        "`details.seat_ids` names the seats requested). SEAT_NOT_FOUND names the missing seats the same way. "
        "TOO_MANY_HOLDS: the user would hold more than `MAX_HOLDS_PER_USER` (default 8) seats in live holds, with "
        "the seconds until the first of them ends as retry_after. Repeated with the same hold, seats and user it "
        "returns that hold unchanged; a hold id already holding other seats is HOLD_ID_IN_USE.")
CONFIRM_SEAT = Rpc(
    "ConfirmSeat", (E.SEAT_NOT_FOUND, E.HOLD_EXPIRED, E.SEAT_UNAVAILABLE), idempotent=True,
    doc="Every seat of the request, or none. Seats already SOLD to this user by this hold are returned as they "
        "are; HOLD_EXPIRED when the hold has lapsed; SEAT_UNAVAILABLE when another hold or owner has a seat.")
RELEASE_SEAT = Rpc("ReleaseSeat", (E.SEAT_NOT_FOUND,), idempotent=True,
                   doc="Every seat of the request still HELD by this hold; `released=false` when none was.")
UPDATE_OWNER = Rpc("UpdateOwner", (E.SEAT_NOT_FOUND, E.NOT_OWNER), idempotent=True,
                   doc="Moves a SOLD ticket and bumps `ticket_version`, once per `change_key` (the transfer step's "
                       "key): a repeat returns the seat as it is now, never an error; another change with a stale "
                       "`expected_owner_id` is NOT_OWNER.")
RETURN_SEATS = Rpc(
    "ReturnSeats", (E.SEAT_NOT_FOUND, E.NOT_OWNER, E.SEAT_CHECKED_IN), idempotent=True,
    doc="A refund: every seat SOLD by `hold_id` (the order) and still owned by `owner_user_id` becomes AVAILABLE, "
        "its owner cleared and its `ticket_version` bumped, all or none, once per `change_key`: a repeat returns "
        "the seats as they are now. SEAT_CHECKED_IN when a seat was used at the gate; NOT_OWNER when one changed "
        "hands (a transfer) or is not this order's.")
VERIFY_TICKET = Rpc("VerifyTicket", (E.SEAT_NOT_FOUND,), idempotent=True)
MARK_CHECKED_IN = Rpc(
    "MarkCheckedIn", (E.SEAT_NOT_FOUND, E.SEAT_UNAVAILABLE), idempotent=False,
    doc="Checks in a SOLD seat whose owner and ticket_version are still the code's, and logs the scan in the "
        "same transaction: `checked_in=true` and result CHECKED_IN for the one winning call; `checked_in=false` "
        "with result INVALID when the code's holder or version is no longer the seat's, else DUPLICATE with the "
        "seat (when and where it was checked in); SEAT_UNAVAILABLE (nothing logged) when the seat is not a ticket.")
LIST_SEATS = Rpc("ListSeats", (), idempotent=True, doc="The seats of the event (possibly empty).")
LIST_TICKETS = Rpc("ListTickets", (), idempotent=True,
                   doc="The seats a user owns (SOLD, CHECKED_IN) or holds with a live hold, by event and position.")
RECORD_SCAN = Rpc("RecordScan", (), idempotent=False,
                  doc="Appends an entry_logs row (MarkCheckedIn writes its own row for the winning and the losing "
                      "calls).")

CREATE_SEAT_GRID = Rpc(
    "CreateSeatGrid", (E.GRID_EXISTS,), idempotent=True,
    doc="Creates sections x rows x numbers 1..seats_per_row (1-50 sections, 1-200 rows of 1-8 chars each, 1-500 "
        "seats per row, price 0..100,000,000, at most 20,000 seats) in one transaction, every seat `on_sale` as "
        "asked. The same grid again answers created=0 and its total; other seats already there are GRID_EXISTS. "
        "Concurrent calls for one event are serialised (one grid).")
SET_EVENT_SALE = Rpc(
    "SetEventSale", (), idempotent=True,
    doc="`on_sale` for every seat of the event; closing also ends every hold of it (HELD -> AVAILABLE) in the "
        "same transaction, so no seat of it can be held or confirmed afterwards. `changed`: seats whose on_sale "
        "changed; `released`: holds ended.")
UPDATE_PRICES = Rpc(
    "UpdatePrices", (E.SEAT_NOT_FOUND,), idempotent=True,
    doc="The price of the event's seats (all, one `section`, or the listed `seat_ids`) that are AVAILABLE or held "
        "by a lapsed hold; seats held live, sold or checked in keep theirs and are counted as `skipped`. "
        "SEAT_NOT_FOUND (nothing changed, `details.seat_ids`) when a listed seat is not the event's.")
SALES_REPORT = Rpc("SalesReport", (), idempotent=True,
                   doc="Seats by status (held: live holds only; a lapsed hold counts as available), the face value "
                       "of sold and checked-in seats, and the same per section.")
GATE_REPORT = Rpc("GateReport", (), idempotent=True,
                  doc="The event's scans (entry_logs of its seats) by result and by hall, and check-ins per "
                      "`bucket_seconds` (60-86400, default 300) by time, `limit` (1-500, default 100) buckets from "
                      "`offset`, with the number of buckets.")

RPCS = (RESERVE_SEAT, CONFIRM_SEAT, RELEASE_SEAT, UPDATE_OWNER, RETURN_SEATS, VERIFY_TICKET, MARK_CHECKED_IN, LIST_SEATS,
        LIST_TICKETS, RECORD_SCAN, CREATE_SEAT_GRID, SET_EVENT_SALE, UPDATE_PRICES, SALES_REPORT, GATE_REPORT)
