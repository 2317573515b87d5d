"""The database function that writes a hold (migration 0007, SeatRepository.hold) decides exactly as the domain's
rule (model.hold_seats) does on the same rows: it writes when, and only when, the domain would hold the seats and
they are on sale; a refusal leaves every seat as it was."""
import uuid

import pytest
import sqlalchemy as sa

from trcommon.errors import AppError
from inventory_service.domain.model import hold_seats, lock_order

pytestmark = pytest.mark.integration

OTHER_USER, OTHER_HOLD = str(uuid.uuid4()), str(uuid.uuid4())

# name: (status, holder/hold of the seat, held_until relative to now in seconds (None: NULL), on_sale)
STATES = {
    "available": ("AVAILABLE", None, None, True),
    "available, off sale": ("AVAILABLE", None, None, False),
    "held by another live hold": ("HELD", "other", 3600, True),
    "held by this very hold": ("HELD", "same", 3600, True),
    "held, lapsed": ("HELD", "other", -1, True),
    "held by this hold, lapsed": ("HELD", "same", -1, True),
    "sold": ("SOLD", "other", None, True),
    "checked in": ("CHECKED_IN", "other", None, True),
}


def _set(container, seat_id, state, user_id, hold_id):
    status, who, until, on_sale = state
    holder, hold = {"other": (OTHER_USER, OTHER_HOLD), "same": (user_id, hold_id), None: (None, None)}[who]
    owner = holder if status in ("SOLD", "CHECKED_IN") else None
    with container.engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE seats SET status = :s, held_by_user_id = CAST(:h AS uuid), hold_id = CAST(:hid AS uuid), "
            "held_until = CASE WHEN CAST(:u AS integer) IS NULL THEN NULL "
            "ELSE statement_timestamp() + make_interval(secs => CAST(:u AS integer)) END, "
            "owner_user_id = CAST(:o AS uuid), on_sale = :on, "
            "checked_in_at = CASE WHEN :s = 'CHECKED_IN' THEN statement_timestamp() END, "
            "checked_in_hall_id = CASE WHEN :s = 'CHECKED_IN' THEN gen_random_uuid() END "
            "WHERE seat_id = CAST(:id AS uuid)"),
            {"s": status, "h": holder if status == "HELD" else None, "hid": hold, "u": until, "o": owner,
             "on": on_sale, "id": seat_id})


def _row(container, seat_id):
    with container.engine.connect() as conn:
        return conn.execute(sa.text("SELECT status, held_by_user_id, hold_id, held_until, owner_user_id, on_sale "
                                    "FROM seats WHERE seat_id = CAST(:id AS uuid)"), {"id": seat_id}).one()


def _decide(container, seat_ids, user_id, hold_id):
    ids = lock_order(seat_ids)
    with container.uow(autocommit=True) as uow:
        found, now, written = uow.seats.hold(ids, user_id, hold_id, 600, 8)
    try:
        domain = hold_seats(found, ids, user_id, hold_id, now, 600)
    except AppError as err:
        domain = err.code
    return found, written, domain


@pytest.mark.parametrize("name", list(STATES))
def test_one_seat_in_every_state(container, new_seat, name):
    user_id, hold_id = str(uuid.uuid4()), str(uuid.uuid4())
    seat = new_seat()
    _set(container, seat, STATES[name], user_id, hold_id)
    before = _row(container, seat)
    found, written, domain = _decide(container, [seat], user_id, hold_id)
    assert [s.seat_id for s in found] == [seat]
    domain_holds = isinstance(domain, list)
    assert written == (domain_holds and STATES[name][3]), (name, domain)
    if written:
        assert _row(container, seat)[:3] == ("HELD", uuid.UUID(user_id), uuid.UUID(hold_id))
    else:
        assert _row(container, seat) == before


@pytest.mark.parametrize("second", ["missing", "other event", "held by another live hold", "available", "sold",
                                    "available, off sale"])
def test_two_seats_are_written_together_or_not_at_all(container, new_seat, second):
    user_id, hold_id = str(uuid.uuid4()), str(uuid.uuid4())
    event = str(uuid.uuid4())
    first = new_seat(event_id=event, number=1)
    if second == "missing":
        other = str(uuid.uuid4())
    elif second == "other event":
        other = new_seat(number=2)
    else:
        other = new_seat(event_id=event, number=2)
        _set(container, other, STATES[second], user_id, hold_id)
    found, written, domain = _decide(container, [first, other], user_id, hold_id)
    expected = second == "available"
    assert written == expected and isinstance(domain, list) == (second in ("available", "available, off sale"))
    rows = [_row(container, s) for s in ([first] if second == "missing" else [first, other])]
    if written:
        assert all(r[0] == "HELD" and r[2] == uuid.UUID(hold_id) for r in rows)
    else:
        assert all(r[2] != uuid.UUID(hold_id) for r in rows)


def test_the_cap_and_a_hold_id_already_used_refuse_free_seats(container, new_seat):
    user_id = str(uuid.uuid4())
    for _ in range(8):
        assert _decide(container, [new_seat()], user_id, str(uuid.uuid4()))[1]
    found, written, domain = _decide(container, [new_seat()], user_id, str(uuid.uuid4()))
    assert not written and isinstance(domain, list)         # free, but a ninth seat is over the cap
    used = str(uuid.uuid4())
    assert _decide(container, [new_seat()], str(uuid.uuid4()), used)[1]
    found, written, domain = _decide(container, [new_seat()], str(uuid.uuid4()), used)
    assert not written and isinstance(domain, list)         # free, but the hold id names another seat
