"""gRPC entrypoint: the Inventory servicer translates requests to service-layer calls and results to messages.

Errors are not handled here: business outcomes are AppErrors, which trcommon's server interceptor maps to gRPC
status codes in one place. Run with `python -m inventory_service.entrypoints.grpc_server`.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from trproto import inventory_pb2, inventory_pb2_grpc

from trcommon.errors import InvalidInput
from trcontracts import inventory as contract
from trcontracts.inventory import MAX_SEATS_PER_HOLD
from trcontracts.base import has_control_characters
from trcommon.grpc_support import serve
from trcommon.process import running

from ..bootstrap import Container, bootstrap
from ..domain.model import MAX_HOLD_SECONDS, MIN_HOLD_SECONDS, GridSection, ScanResult, Seat
from ..service_layer import services
from ..settings import InventorySettings

SERVICE_NAME = inventory_pb2.DESCRIPTOR.services_by_name["Inventory"].full_name


def _empty_is_none(value):
    return value or None


Id = uuid.UUID
OptionalId = Annotated[uuid.UUID | None, BeforeValidator(_empty_is_none)]
ScanText = Annotated[Annotated[str, Field(max_length=200)] | None, BeforeValidator(_empty_is_none)]


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _SeatsInput(_Input):
    """The seats of a hold: `seat_id`, or `seat_ids` (1 to MAX_SEATS_PER_HOLD distinct seats), not both."""

    seat_id: OptionalId = None
    seat_ids: list[Id] = Field(default_factory=list, max_length=MAX_SEATS_PER_HOLD)

    @model_validator(mode="after")
    def _one_way_of_naming_seats(self):
        if (self.seat_id is None) == (not self.seat_ids):
            raise ValueError("give seat_id or seat_ids (not both)")
        if len(set(self.seat_ids)) != len(self.seat_ids):
            raise ValueError("seat_ids must not repeat a seat")
        return self

    @property
    def seats(self) -> list[str]:
        return [str(i) for i in self.seat_ids] if self.seat_ids else [str(self.seat_id)]


class ReserveSeatInput(_SeatsInput):
    user_id: Id
    hold_id: Id
    hold_seconds: int = Field(ge=MIN_HOLD_SECONDS, le=MAX_HOLD_SECONDS)


class ConfirmSeatInput(_SeatsInput):
    user_id: Id
    hold_id: Id


class ReleaseSeatInput(_SeatsInput):
    hold_id: Id


class UpdateOwnerInput(_Input):
    seat_id: Id
    expected_owner_id: Id
    new_owner_id: Id
    change_key: str = Field(min_length=1, max_length=200)


class ReturnSeatsInput(_Input):
    seat_ids: list[Id] = Field(min_length=1, max_length=MAX_SEATS_PER_HOLD)
    owner_user_id: Id
    hold_id: Id
    change_key: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _distinct(self):
        if len(set(self.seat_ids)) != len(self.seat_ids):
            raise ValueError("seat_ids must not repeat a seat")
        return self


class VerifyTicketInput(_Input):
    seat_id: Id


class MarkCheckedInInput(_Input):
    seat_id: Id
    hall_id: Id
    scanner_user_id: OptionalId = None
    holder_user_id: Id
    ticket_version: int = Field(ge=1)


class ListSeatsInput(_Input):
    event_id: Id


class ListTicketsInput(_Input):
    user_id: Id


class RecordScanInput(_Input):
    # Free text: a forged or malformed code may name no real seat, and its scan is logged all the same.
    seat_id: ScanText = None
    hall_id: ScanText = None
    result: ScanResult
    detail: str = Field("", max_length=1000)
    scanner_user_id: ScanText = None
    ticket_version: Annotated[Annotated[int, Field(ge=1)] | None, BeforeValidator(_empty_is_none)] = None


def _zero_is_default(default: int):
    return BeforeValidator(lambda value: default if value == 0 else value)


def _printable(value: str) -> str:
    if value != value.strip() or has_control_characters(value):
        raise ValueError("must hold no control characters and no leading or trailing spaces")
    return value


Price = Annotated[int, Field(ge=0, le=contract.MAX_SEAT_PRICE)]


class GridSectionInput(_Input):
    section: Annotated[str, Field(min_length=1, max_length=contract.MAX_SECTION_NAME)]
    price: Price
    rows: list[Annotated[str, Field(min_length=1, max_length=contract.MAX_ROW_LABEL)]] = Field(
        min_length=1, max_length=contract.MAX_GRID_ROWS)
    seats_per_row: int = Field(ge=1, le=contract.MAX_SEATS_PER_ROW)

    @model_validator(mode="after")
    def _clean(self):
        for label in (self.section, *self.rows):
            _printable(label)
        if len(set(self.rows)) != len(self.rows):
            raise ValueError(f"section {self.section!r}: row labels must be distinct")
        return self


class CreateSeatGridInput(_Input):
    event_id: Id
    sections: list[GridSectionInput] = Field(min_length=1, max_length=contract.MAX_GRID_SECTIONS)
    on_sale: bool

    @model_validator(mode="after")
    def _one_grid(self):
        names = [s.section for s in self.sections]
        if len(set(names)) != len(names):
            raise ValueError("section names must be distinct")
        total = sum(len(s.rows) * s.seats_per_row for s in self.sections)
        if total > contract.MAX_GRID_SEATS:
            raise ValueError(f"the grid has {total} seats; at most {contract.MAX_GRID_SEATS} per call")
        return self

    def grid(self) -> list[GridSection]:
        return [GridSection(s.section, s.price, tuple(s.rows), s.seats_per_row) for s in self.sections]


class SetEventSaleInput(_Input):
    event_id: Id
    on_sale: bool


class UpdatePricesInput(_Input):
    event_id: Id
    price: Price
    section: Annotated[str, Field(min_length=1, max_length=contract.MAX_SECTION_NAME)] | None = None
    seat_ids: list[Id] = Field(default_factory=list, max_length=contract.MAX_GRID_SEATS)


class SalesReportInput(_Input):
    event_id: Id


class GateReportInput(_Input):
    event_id: Id
    bucket_seconds: Annotated[int, _zero_is_default(contract.DEFAULT_BUCKET_SECONDS),
                              Field(ge=contract.MIN_BUCKET_SECONDS, le=contract.MAX_BUCKET_SECONDS)]
    limit: Annotated[int, _zero_is_default(contract.DEFAULT_REPORT_PAGE), Field(ge=1, le=contract.MAX_REPORT_PAGE)]
    offset: int = Field(ge=0, le=1_000_000)


M = TypeVar("M", bound=_Input)


def parse(model: type[M], request) -> M:
    """Validate a request message's fields; anything malformed is INVALID_INPUT (400, INVALID_ARGUMENT)."""
    try:
        return model.model_validate(_fields(request))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors(include_url=False, include_input=False))
        raise InvalidInput(f"invalid request: {problems}") from None


def _fields(message) -> dict:
    """A message's fields as plain values (nested messages as dicts); an unset optional field is left out."""
    values = {}
    for f in message.DESCRIPTOR.fields:
        value = getattr(message, f.name)
        if f.message_type is not None:
            values[f.name] = [_fields(v) for v in value] if f.is_repeated else _fields(value)
        elif f.is_repeated:
            values[f.name] = list(value)
        elif f.has_presence and not message.HasField(f.name):
            continue
        else:
            values[f.name] = value
    return values


def _rfc3339(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).isoformat() if value is not None else ""


def seat_message(seat: Seat) -> inventory_pb2.Seat:
    return inventory_pb2.Seat(
        seat_id=seat.seat_id, event_id=seat.event_id, section=seat.section, row=seat.row, number=seat.number,
        price=seat.price, status=inventory_pb2.SeatStatus.Value(seat.status.value),
        held_by_user_id=seat.held_by_user_id or "", hold_id=seat.hold_id or "", held_until=_rfc3339(seat.held_until),
        owner_user_id=seat.owner_user_id or "", ticket_version=seat.ticket_version,
        checked_in_at=_rfc3339(seat.checked_in_at), checked_in_hall_id=seat.checked_in_hall_id or "")


def _seats_reply(seats: list[Seat]) -> inventory_pb2.SeatReply:
    messages = [seat_message(s) for s in seats]
    return inventory_pb2.SeatReply(seat=messages[0], seats=messages)


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


class InventoryServicer(inventory_pb2_grpc.InventoryServicer):
    def __init__(self, container: Container):
        self._uow = container.uow
        self._settings = container.settings

    def ReserveSeat(self, request, context):
        cmd = parse(ReserveSeatInput, request)
        seats = services.reserve_seats(self._uow, cmd.seats, str(cmd.user_id), str(cmd.hold_id), cmd.hold_seconds,
                                       self._settings.max_holds_per_user)
        return _seats_reply(seats)

    def ConfirmSeat(self, request, context):
        cmd = parse(ConfirmSeatInput, request)
        return _seats_reply(services.confirm_seats(self._uow, cmd.seats, str(cmd.user_id), str(cmd.hold_id)))

    def ReleaseSeat(self, request, context):
        cmd = parse(ReleaseSeatInput, request)
        released, seats = services.release_seats(self._uow, cmd.seats, str(cmd.hold_id))
        messages = [seat_message(s) for s in seats]
        return inventory_pb2.ReleaseSeatReply(released=released, seat=messages[0], seats=messages)

    def UpdateOwner(self, request, context):
        cmd = parse(UpdateOwnerInput, request)
        seat = services.update_owner(self._uow, str(cmd.seat_id), str(cmd.expected_owner_id),
                                     str(cmd.new_owner_id), cmd.change_key)
        return inventory_pb2.SeatReply(seat=seat_message(seat))

    def ReturnSeats(self, request, context):
        cmd = parse(ReturnSeatsInput, request)
        return _seats_reply(services.return_seats(self._uow, [str(i) for i in cmd.seat_ids], str(cmd.owner_user_id),
                                                  str(cmd.hold_id), cmd.change_key))

    def VerifyTicket(self, request, context):
        cmd = parse(VerifyTicketInput, request)
        return inventory_pb2.SeatReply(seat=seat_message(services.get_seat(self._uow, str(cmd.seat_id))))

    def MarkCheckedIn(self, request, context):
        cmd = parse(MarkCheckedInInput, request)
        outcome = services.mark_checked_in(self._uow, str(cmd.seat_id), str(cmd.hall_id),
                                           _str(cmd.scanner_user_id), str(cmd.holder_user_id), cmd.ticket_version)
        return inventory_pb2.CheckInReply(checked_in=outcome.checked_in, seat=seat_message(outcome.seat),
                                          result=outcome.result.value)

    def ListSeats(self, request, context):
        cmd = parse(ListSeatsInput, request)
        seats = services.list_seats(self._uow, str(cmd.event_id))
        return inventory_pb2.ListSeatsReply(seats=[seat_message(s) for s in seats])

    def ListTickets(self, request, context):
        cmd = parse(ListTicketsInput, request)
        seats = services.list_tickets(self._uow, str(cmd.user_id))
        return inventory_pb2.ListSeatsReply(seats=[seat_message(s) for s in seats])

    def RecordScan(self, request, context):
        cmd = parse(RecordScanInput, request)
        entry_id = services.record_scan(self._uow, cmd.seat_id, cmd.hall_id, cmd.result, cmd.detail,
                                        cmd.scanner_user_id, cmd.ticket_version)
        return inventory_pb2.RecordScanReply(id=entry_id)

    def CreateSeatGrid(self, request, context):
        cmd = parse(CreateSeatGridInput, request)
        created, total = services.create_seat_grid(self._uow, str(cmd.event_id), cmd.grid(), cmd.on_sale)
        return inventory_pb2.CreateSeatGridReply(created=created, total=total)

    def SetEventSale(self, request, context):
        cmd = parse(SetEventSaleInput, request)
        changed, released = services.set_event_sale(self._uow, str(cmd.event_id), cmd.on_sale)
        return inventory_pb2.SetEventSaleReply(changed=changed, released=released)

    def UpdatePrices(self, request, context):
        cmd = parse(UpdatePricesInput, request)
        updated, skipped = services.update_prices(self._uow, str(cmd.event_id), cmd.price, cmd.section,
                                                  [str(i) for i in cmd.seat_ids] or None)
        return inventory_pb2.UpdatePricesReply(updated=updated, skipped=skipped)

    def SalesReport(self, request, context):
        cmd = parse(SalesReportInput, request)
        report = services.sales_report(self._uow, str(cmd.event_id))
        return inventory_pb2.SalesReportReply(
            available=report.available, held=report.held, sold=report.sold, checked_in=report.checked_in,
            total=report.total, face_value_sold=report.face_value_sold,
            sections=[inventory_pb2.SectionSales(
                section=s.section, total=s.total, sold=s.sold, checked_in=s.checked_in, price_min=s.price_min,
                price_max=s.price_max, face_value_sold=s.face_value_sold) for s in report.sections])

    def GateReport(self, request, context):
        cmd = parse(GateReportInput, request)
        report = services.gate_report(self._uow, str(cmd.event_id), cmd.bucket_seconds, cmd.limit, cmd.offset)
        return inventory_pb2.GateReportReply(
            by_result=[inventory_pb2.ResultCount(result=r, count=n) for r, n in report.by_result],
            by_hall=[inventory_pb2.HallResultCount(hall_id=h, result=r, count=n) for h, r, n in report.by_hall],
            check_ins=[inventory_pb2.CheckInBucket(bucket_start=_rfc3339(t), count=n) for t, n in report.check_ins],
            total_buckets=report.total_buckets)


def main() -> None:
    with running(InventorySettings, bootstrap, database=True) as p:
        servicer = InventoryServicer(p.container)
        serve(lambda server: inventory_pb2_grpc.add_InventoryServicer_to_server(servicer, server),
              bind=p.settings.grpc_bind, token=p.settings.internal_service_token,
              max_workers=p.settings.grpc_max_workers, service_names=[SERVICE_NAME], stop=p.stop)


if __name__ == "__main__":
    main()
