"""The orchestrator dies at each step boundary of the event-cancellation saga (docs/sagas.md): the recovery worker
finishes the cancellation from the step the event records, and every fan ends refunded once and told once."""
from collections import Counter

import pytest
import sqlalchemy as sa

from e2e_support import balance, dies, ledger_refs, register_and_login, topup, wait_until
from orchestrator_service.service_layer.event_cancel import EVENT_CANCEL
from test_admin import admin_token, grid_event, seat_map, venue_with_halls
from test_event_cancel import buy, wait_for_kinds


def event_status(engines, event_id: str) -> str:
    with engines["event-service"].connect() as conn:
        return conn.execute(sa.text("SELECT status FROM events WHERE event_id = :e"), {"e": event_id}).scalar_one()


def test_every_step_boundary_of_the_cancellation_has_a_crash_case():
    assert EVENT_CANCEL.failpoints() == (
        "event-cancel:close-sales:begun", "event-cancel:close-sales", "event-cancel:notify",
        "event-cancel:end-transfers", "event-cancel:end-holds", "event-cancel:refund")


@pytest.mark.parametrize("failpoint", EVENT_CANCEL.failpoints())
def test_a_cancellation_dying_at_any_step_is_finished_by_recovery_once(failpoint, api, crashing_api, engines):
    admin = admin_token(api)
    _venue, (hall, _other) = venue_with_halls(api, admin)
    event = grid_event(api, admin, hall["hall_id"], rows=1, per_row=4, price=40)["event"]
    seats = [s["seat_id"] for s in seat_map(api, event["event_id"])]
    payer, seller, buyer = (register_and_login(api) for _ in range(3))
    for fan in (payer, seller, buyer):
        topup(api, fan.user_id, 500)
    orders = [buy(api, payer, seats[:2]), buy(api, seller, seats[2:3])]
    offer = api.post("/transfer/initiate", seller.token, json={"seat_id": seats[2], "buyer_email": buyer.email,
                                                               "amount": 10})
    assert offer.status_code == 201, offer.text
    offer = offer.json()

    crashing = crashing_api(failpoint)
    dies(lambda: crashing.post(f"/admin/events/{event['event_id']}/cancel", admin, json={"reason": "flood"}))
    # Read where it is recorded (the public API may show a cached event for EVENT_CACHE_SECONDS).
    wait_until(lambda: event_status(engines, event["event_id"]) == "CANCELLED", 30,
               interval=0.2, what="the recovery worker to finish the cancellation")

    for fan in (payer, seller, buyer):
        assert balance(api, fan.token) == 500
    for order in orders:
        assert ledger_refs(engines, f"order:{order['order_id']}:refund") == [f"order:{order['order_id']}:refund"]
    assert api.get(f"/transfers/{offer['transfer_id']}", seller.token).json()["status"] == "CANCELLED"
    expected = {payer.user_id: Counter(ORDER_CONFIRMED=1, REFUND_MADE=1, EVENT_CANCELLED=1),
                seller.user_id: Counter(ORDER_CONFIRMED=1, REFUND_MADE=1, EVENT_CANCELLED=1),
                buyer.user_id: Counter(TRANSFER_OFFERED=1, TRANSFER_CANCELLED=1, EVENT_CANCELLED=1)}
    for fan in (payer, seller, buyer):
        assert wait_for_kinds(api, fan, expected[fan.user_id]) == expected[fan.user_id]

    again = api.post(f"/admin/events/{event['event_id']}/cancel", admin, json={"reason": "flood"})
    assert again.status_code == 200 and again.json()["event"]["status"] == "CANCELLED", again.text
    for fan in (payer, seller, buyer):
        assert balance(api, fan.token) == 500
