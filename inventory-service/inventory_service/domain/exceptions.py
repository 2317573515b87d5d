"""Business outcomes of inventory-service, in the shared error vocabulary (code + HTTP status) of docs/internal-api.md.

trcommon.errors is plain Python, so the domain can raise these without knowing any transport; the gRPC
interceptor turns them into status codes in one place.
"""
from trcommon.errors import Conflict, Gone, InvalidInput, NotFound, TooManyRequests
from trcontracts.inventory import InventoryError


class SeatNotFound(NotFound):
    code = InventoryError.SEAT_NOT_FOUND

    def __init__(self, message: str = "no such seat", *, seat_ids: list[str] | None = None):
        super().__init__(message, details=None if seat_ids is None else {"seat_ids": seat_ids})


class SeatUnavailable(Conflict):
    """The seat is sold, checked in, or held by another live hold. `seat_ids` (in `details`) names the seats at
    fault when a request named several."""

    code = InventoryError.SEAT_UNAVAILABLE

    def __init__(self, message: str = "seat is not available", *, seat_ids: list[str] | None = None):
        super().__init__(message, details=None if seat_ids is None else {"seat_ids": seat_ids})


class SeatLocked(SeatUnavailable):
    """Another transaction holds the seat's row lock right now (PostgreSQL 55P03 under NOWAIT).

    Same code and status as SeatUnavailable for callers that only read those; as contention (worth a retry) the
    gRPC transport reports it as ABORTED rather than FAILED_PRECONDITION.
    """

    contention = True

    def __init__(self, message: str = "seat busy", *, seat_ids: list[str] | None = None):
        super().__init__(message, seat_ids=seat_ids)


class HoldExpired(Gone):
    code = InventoryError.HOLD_EXPIRED

    def __init__(self, message: str = "the hold has expired"):
        super().__init__(message)


class TooManyHolds(TooManyRequests):
    code = InventoryError.TOO_MANY_HOLDS


class NotOwner(Conflict):
    code = InventoryError.NOT_OWNER


class SeatCheckedIn(Conflict):
    code = InventoryError.SEAT_CHECKED_IN


class HoldIdInUse(Conflict):
    """A hold id is an order id: it names one set of seats, so it cannot hold others."""

    code = InventoryError.HOLD_ID_IN_USE

    def __init__(self, message: str = "this hold id already holds other seats"):
        super().__init__(message)


class SeatsNotInOneEvent(InvalidInput):
    code = InventoryError.SEATS_NOT_IN_ONE_EVENT

    def __init__(self, message: str = "the seats of one hold must all be of one event"):
        super().__init__(message)


class EventNotOnSale(Conflict):
    """The seat's event is not on sale: not published yet, or its sale was closed (a cancellation)."""

    code = InventoryError.EVENT_NOT_ON_SALE

    def __init__(self, message: str = "the event is not on sale"):
        super().__init__(message)


class GridExists(Conflict):
    """The event already has seats, and they are not the grid asked for."""

    code = InventoryError.GRID_EXISTS
