import json
import uuid

import pytest
from pydantic import ValidationError
from trproto import inventory_pb2

from inventory_service.domain.model import ScanResult
from inventory_service.entrypoints.grpc_server import (MarkCheckedInInput, RecordScanInput, ReserveSeatInput,
                                                       parse)
from inventory_service.entrypoints.release_consumer import ReleaseMessage
from trcommon.errors import InvalidInput


def _reserve(**fields):
    base = dict(seat_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), hold_id=str(uuid.uuid4()), hold_seconds=60)
    return inventory_pb2.ReserveSeatRequest(**{**base, **fields})


def test_a_well_formed_reservation_parses():
    request = _reserve()
    cmd = parse(ReserveSeatInput, request)
    assert str(cmd.seat_id) == request.seat_id and cmd.hold_seconds == 60


@pytest.mark.parametrize("fields", [{"seat_id": "not-a-uuid"}, {"user_id": ""}, {"hold_id": "1; DROP TABLE"},
                                    {"hold_seconds": 0}, {"hold_seconds": 3601}])
def test_malformed_ids_and_out_of_range_hold_seconds_are_invalid_input(fields):
    with pytest.raises(InvalidInput) as caught:
        parse(ReserveSeatInput, _reserve(**fields))
    assert (caught.value.code, caught.value.status) == ("INVALID_INPUT", 400)
    assert next(iter(fields)) in caught.value.message


def test_a_party_reservation_names_its_seats_by_seat_ids():
    seats = [str(uuid.uuid4()) for _ in range(8)]
    cmd = parse(ReserveSeatInput, _reserve(seat_id="", seat_ids=seats))
    assert cmd.seats == seats
    assert parse(ReserveSeatInput, _reserve(seat_id=seats[0])).seats == [seats[0]]      # one seat, as before


@pytest.mark.parametrize("fields", [
    {"seat_id": "", "seat_ids": []},                                              # no seat
    {"seat_ids": [str(uuid.uuid4())]},                                            # seat_id and seat_ids
    {"seat_id": "", "seat_ids": [str(uuid.uuid4()) for _ in range(9)]},           # more than 8
    {"seat_id": "", "seat_ids": ["7eff1b59-bb1a-5e39-9907-da92a3edd548"] * 2},    # a seat twice
    {"seat_id": "", "seat_ids": ["7eff1b59-bb1a-5e39-9907-da92a3edd548", "7EFF1B59-BB1A-5E39-9907-DA92A3EDD548"]},
    {"seat_id": "", "seat_ids": [str(uuid.uuid4()), "A-1-1"]},
])
def test_a_reservation_names_one_to_eight_distinct_seats_one_way(fields):
    with pytest.raises(InvalidInput) as caught:
        parse(ReserveSeatInput, _reserve(**fields))
    assert (caught.value.code, caught.value.status) == ("INVALID_INPUT", 400)


def test_a_check_in_may_omit_the_scanner():
    cmd = parse(MarkCheckedInInput, inventory_pb2.MarkCheckedInRequest(
        seat_id=str(uuid.uuid4()), hall_id=str(uuid.uuid4()), holder_user_id=str(uuid.uuid4()), ticket_version=1))
    assert cmd.scanner_user_id is None


def test_a_check_in_names_the_codes_holder_and_version():
    for fields in ({"ticket_version": 1}, {"holder_user_id": str(uuid.uuid4())}):
        with pytest.raises(InvalidInput):
            parse(MarkCheckedInInput, inventory_pb2.MarkCheckedInRequest(
                seat_id=str(uuid.uuid4()), hall_id=str(uuid.uuid4()), **fields))


def test_a_scan_of_an_unknown_code_is_logged_but_its_result_must_be_known():
    cmd = parse(RecordScanInput, inventory_pb2.RecordScanRequest(seat_id="garbage", result="INVALID"))
    assert (cmd.seat_id, cmd.hall_id, cmd.result) == ("garbage", None, ScanResult.INVALID)
    with pytest.raises(InvalidInput):
        parse(RecordScanInput, inventory_pb2.RecordScanRequest(result="LET_THEM_IN"))


def test_a_release_message_needs_ids_and_a_zoned_held_until():
    ids = {k: str(uuid.uuid4()) for k in ("seat_id", "hold_id", "order_id")}
    message = ReleaseMessage.model_validate_json(json.dumps({**ids, "held_until": "2030-01-01T20:00:00Z"}))
    assert str(message.hold_id) == ids["hold_id"]
    for body in (b"not json", b"[]", json.dumps({**ids, "held_until": "2030-01-01T20:00:00"}).encode(),
                 json.dumps({**ids, "seat_id": "x", "held_until": "2030-01-01T20:00:00Z"}).encode()):
        with pytest.raises(ValidationError):
            ReleaseMessage.model_validate_json(body)
