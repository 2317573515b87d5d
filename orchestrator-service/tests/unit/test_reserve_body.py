"""The edge's rules for POST /reserve: one seat, or 1-8 distinct seats of a party, named one way."""
import pytest
from pydantic import ValidationError

from orchestrator_service.domain.purchase import purchase_reason
from orchestrator_service.entrypoints.schemas import ReserveBody
from trcommon.errors import InvalidInput


def test_a_reservation_names_one_seat_or_one_to_eight_distinct_seats_not_both():
    a, b = "7eff1b59-bb1a-5e39-9907-da92a3edd548", "aaaca392-274c-554e-8efe-74003bc8555a"
    assert ReserveBody.model_validate({"seat_id": a.upper()}).seats() == [a]
    assert ReserveBody.model_validate({"seat_ids": [b, a]}).seats() == [b, a]
    for body in ({}, {"seat_id": a, "seat_ids": [b]}):
        with pytest.raises(InvalidInput) as caught:
            ReserveBody.model_validate(body).seats()
        assert caught.value.details == [{"field": "seat_ids", "message": "give either seat_id or seat_ids"}]
    for body in ({"seat_ids": [a, a.upper()]}, {"seat_ids": []}, {"seat_ids": [a] + [None] * 8}, {"seat_id": None},
                 {"seat_ids": [f"{i:08x}-0000-4000-8000-000000000000" for i in range(9)]}):
        with pytest.raises(ValidationError):
            ReserveBody.model_validate(body)


def test_the_ledger_says_how_many_seats_one_debit_paid_for():
    assert purchase_reason(1) == "seat purchase"
    assert purchase_reason(4) == "purchase of 4 seats"
