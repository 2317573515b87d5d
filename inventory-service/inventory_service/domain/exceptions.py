"""Business outcomes of inventory-service, in the shared error vocabulary (code + HTTP status) of docs/internal-api.md.

trcommon.errors is plain Python, so the domain can raise these without knowing any transport; the gRPC
interceptor turns them into status codes in one place.
"""
from trcommon.errors import Conflict, Gone, NotFound, TooManyRequests
from trcontracts.inventory import InventoryError


class SeatNotFound(NotFound):
    code = InventoryError.SEAT_NOT_FOUND

    def __init__(self, message: str = "no such seat"):
        super().__init__(message)


class SeatUnavailable(Conflict):
    """The seat is sold, checked in, or held by another live hold."""

    code = InventoryError.SEAT_UNAVAILABLE


class SeatLocked(SeatUnavailable):
    """Another transaction holds the seat's row lock right now (PostgreSQL 55P03 under NOWAIT).

    Same code and status as SeatUnavailable for callers that only read those; as contention (worth a retry) the
    gRPC transport reports it as ABORTED rather than FAILED_PRECONDITION.
    """

    contention = True

    def __init__(self, message: str = "seat busy"):
        super().__init__(message)


class HoldExpired(Gone):
    code = InventoryError.HOLD_EXPIRED

    def __init__(self, message: str = "the hold has expired"):
        super().__init__(message)


class TooManyHolds(TooManyRequests):
    code = InventoryError.TOO_MANY_HOLDS


class NotOwner(Conflict):
    code = InventoryError.NOT_OWNER


class HoldIdInUse(Conflict):
    """A hold id is an order id: it names one seat, so it cannot hold a second one."""

    code = InventoryError.HOLD_ID_IN_USE

    def __init__(self, message: str = "this hold id already holds another seat"):
        super().__init__(message)
