"""The orchestrator dies at each step boundary of the purchase and refund sagas (a failpoint exits the process the way SIGKILL
would, docs/sagas.md); the recovery worker must bring every saga to a consistent end, and the seat back on sale
when nobody paid for it. The boundaries come from the saga's step list: a new step needs its case here."""
import pytest

from e2e_support import (balance, dies, ledger_refs, order_row, register_and_login, released_by_timer, seat_row,
                         topup, wait_until)
from orchestrator_service.service_layer.purchase import PURCHASE
from orchestrator_service.service_layer.refunds import REFUND

HOLD_TTL = 3


def _seat_back_on_sale(api, seat_id):
    """Another fan can hold the seat once the dead saga's hold has lapsed."""
    other = register_and_login(api)
    return wait_until(lambda: api.post("/reserve", other.token, json={"seat_id": seat_id}).status_code == 201,
                      HOLD_TTL + 5, interval=0.3, what="the seat to be on sale again")


def dying_after_the_hold_before_the_order_leaves_no_order_and_the_seat_returns(api, crashing, fresh_event, engines):
    ev, fan = fresh_event(seats=1), register_and_login(api)
    dies(lambda: crashing.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}))
    assert seat_row(engines, ev.seat_ids[0])["status"] == "HELD"
    assert api.get("/me/orders", fan.token).json()["orders"] == []
    _seat_back_on_sale(api, ev.seat_ids[0])


def _reserve_dies_then_the_order_expires_and_the_seat_returns(api, crashing, fresh_event, engines, timer: bool):
    ev, fan = fresh_event(seats=1), register_and_login(api)
    dies(lambda: crashing.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}))
    [order] = api.get("/me/orders", fan.token).json()["orders"]
    wait_until(lambda: order_row(engines, order["order_id"])["status"] == "EXPIRED", HOLD_TTL + 5,
               what="the order to expire")
    if timer:
        wait_until(lambda: released_by_timer({ev.seat_ids[0]}), 10, what="the hold's timer to release the seat")
    _seat_back_on_sale(api, ev.seat_ids[0])


def dying_after_the_order_before_the_timer_expires_the_order_and_the_seat_returns(api, crashing, fresh_event,
                                                                                  engines):
    _reserve_dies_then_the_order_expires_and_the_seat_returns(api, crashing, fresh_event, engines, timer=False)


def dying_after_the_timer_expires_the_order_through_its_timer_and_the_seat_returns(api, crashing, fresh_event,
                                                                                   engines):
    _reserve_dies_then_the_order_expires_and_the_seat_returns(api, crashing, fresh_event, engines, timer=True)


def _reserved(api, fresh_event, credits=100, price=60):
    ev = fresh_event(seats=1, price=price)
    fan = register_and_login(api)
    topup(api, fan.user_id, credits)
    order = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}).json()
    return ev, fan, order["order_id"]


def dying_after_payment_began_before_the_debit_charges_nothing(api, crashing, fresh_event, engines):
    ev, fan, order_id = _reserved(api, fresh_event)
    dies(lambda: crashing.post("/pay", fan.token, json={"order_id": order_id}))
    final = wait_until(lambda: (o := order_row(engines, order_id))["status"] != "PENDING" and o, HOLD_TTL + 10,
                       what="the saga to end")
    assert final["status"] == "FAILED"
    assert balance(api, fan.token) == 100 and ledger_refs(engines, f"order:{order_id}") == []
    _seat_back_on_sale(api, ev.seat_ids[0])


def dying_after_the_debit_ends_confirmed_or_refunded(api, crashing, fresh_event, engines):
    ev, fan, order_id = _reserved(api, fresh_event)
    dies(lambda: crashing.post("/pay", fan.token, json={"order_id": order_id}))
    assert ledger_refs(engines, f"order:{order_id}:debit")
    final = wait_until(lambda: (o := order_row(engines, order_id))["status"] != "PENDING" and o, HOLD_TTL + 10,
                       what="the saga to end")
    if final["status"] == "CONFIRMED":
        assert seat_row(engines, ev.seat_ids[0])["status"] == "SOLD" and balance(api, fan.token) == 40
    else:
        assert final["status"] == "FAILED" and balance(api, fan.token) == 100
        assert seat_row(engines, ev.seat_ids[0])["status"] != "SOLD"


def dying_after_the_seat_was_confirmed_ends_confirmed_and_charged_once(api, crashing, fresh_event, engines):
    ev, fan, order_id = _reserved(api, fresh_event)
    dies(lambda: crashing.post("/pay", fan.token, json={"order_id": order_id}))
    assert seat_row(engines, ev.seat_ids[0])["status"] == "SOLD"
    wait_until(lambda: order_row(engines, order_id)["status"] == "CONFIRMED", 10, what="the order to be confirmed")
    assert balance(api, fan.token) == 40
    assert ledger_refs(engines, f"order:{order_id}") == [f"order:{order_id}:debit"]
    r = api.post("/pay", fan.token, json={"order_id": order_id})
    assert r.status_code == 200 and r.json()["status"] == "CONFIRMED"
    assert balance(api, fan.token) == 40


CASES = {
    "purchase:hold": dying_after_the_hold_before_the_order_leaves_no_order_and_the_seat_returns,
    "purchase:order": dying_after_the_order_before_the_timer_expires_the_order_and_the_seat_returns,
    "purchase:timer": dying_after_the_timer_expires_the_order_through_its_timer_and_the_seat_returns,
    "purchase:debit:begun": dying_after_payment_began_before_the_debit_charges_nothing,
    "purchase:debit": dying_after_the_debit_ends_confirmed_or_refunded,
    "purchase:confirm-seat": dying_after_the_seat_was_confirmed_ends_confirmed_and_charged_once,
}


# Party orders (three seats under one hold) at the boundaries where several seats make a difference: a hold that
# lapses with no order, a timer that must release every seat, a debit of the sum that must end with every seat
# sold or none.
def a_party_hold_with_no_order_returns_every_seat(api, crashing, fresh_event, engines):
    ev, fan = fresh_event(seats=3), register_and_login(api)
    dies(lambda: crashing.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids}))
    assert {seat_row(engines, s)["status"] for s in ev.seat_ids} == {"HELD"}
    assert api.get("/me/orders", fan.token).json()["orders"] == []
    other = register_and_login(api)
    wait_until(lambda: api.post("/reserve", other.token, json={"seat_ids": ev.seat_ids}).status_code == 201,
               HOLD_TTL + 5, interval=0.3, what="the whole party to be on sale again")


def a_party_whose_timer_was_published_is_released_whole_by_it(api, crashing, fresh_event, engines):
    ev, fan = fresh_event(seats=3), register_and_login(api)
    dies(lambda: crashing.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids}))
    [order] = api.get("/me/orders", fan.token).json()["orders"]
    assert order["seat_ids"] == sorted(ev.seat_ids)
    wait_until(lambda: order_row(engines, order["order_id"])["status"] == "EXPIRED", HOLD_TTL + 5,
               what="the order to expire")
    wait_until(lambda: released_by_timer(set(ev.seat_ids)) == set(ev.seat_ids), 10,
               what="the hold's one timer to release every seat")


def a_party_debited_converges_with_every_seat_sold_or_none(api, crashing, fresh_event, engines):
    ev = fresh_event(seats=3, price=60)
    fan = register_and_login(api)
    topup(api, fan.user_id, 200)
    order_id = api.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids}).json()["order_id"]
    dies(lambda: crashing.post("/pay", fan.token, json={"order_id": order_id}))
    assert ledger_refs(engines, f"order:{order_id}:debit")
    final = wait_until(lambda: (o := order_row(engines, order_id))["status"] != "PENDING" and o, HOLD_TTL + 10,
                       what="the saga to end")
    statuses = [seat_row(engines, s)["status"] for s in ev.seat_ids]
    if final["status"] == "CONFIRMED":
        assert statuses == ["SOLD"] * 3 and balance(api, fan.token) == 200 - 180
    else:
        assert final["status"] == "FAILED" and balance(api, fan.token) == 200 and "SOLD" not in statuses


PARTY_CASES = {
    "purchase:hold": a_party_hold_with_no_order_returns_every_seat,
    "purchase:timer": a_party_whose_timer_was_published_is_released_whole_by_it,
    "purchase:debit": a_party_debited_converges_with_every_seat_sold_or_none,
}


@pytest.mark.parametrize("failpoint", sorted(PARTY_CASES))
def test_the_orchestrator_dying_during_a_party_purchase_converges(failpoint, api, crashing_api, fresh_event, engines):
    PARTY_CASES[failpoint](api, crashing_api(failpoint), fresh_event, engines)


def test_every_step_boundary_of_the_purchase_saga_has_a_crash_case():
    assert set(CASES) == set(PURCHASE.failpoints())


@pytest.mark.parametrize("failpoint", PURCHASE.failpoints())
def test_the_orchestrator_dying_at_a_step_boundary_converges(failpoint, api, crashing_api, fresh_event, engines):
    CASES[failpoint](api, crashing_api(failpoint), fresh_event, engines)


# --- the refund saga ----------------------------------------------------------------------------------------------

def a_refund_dying_at_any_step_is_finished_by_recovery_once(api, crashing, fresh_event, engines):
    """Whether it died after recording REFUNDING, after taking the seats back or after the credit, the recovery
    worker finishes it: REFUNDED, the credits back once, every seat on sale with one new ticket_version."""
    ev = fresh_event(seats=3, price=60)
    fan = register_and_login(api)
    topup(api, fan.user_id, 200)
    order = api.post("/reserve", fan.token, json={"seat_ids": ev.seat_ids[:2]}).json()
    assert api.post("/pay", fan.token, json={"order_id": order["order_id"]}).status_code == 200
    dies(lambda: crashing.post(f"/orders/{order['order_id']}/refund", fan.token))
    assert order_row(engines, order["order_id"])["status"] == "REFUNDING"
    wait_until(lambda: order_row(engines, order["order_id"])["status"] == "REFUNDED", 15,
               what="the recovery worker to finish the refund")
    assert balance(api, fan.token) == 200
    assert ledger_refs(engines, f"order:{order['order_id']}:refund") == [f"order:{order['order_id']}:refund"]
    assert all((seat_row(engines, s)["status"], seat_row(engines, s)["ticket_version"]) == ("AVAILABLE", 2)
               for s in order["seat_ids"])
    again = api.post(f"/orders/{order['order_id']}/refund", fan.token)       # the fan's retry: the same end
    assert again.status_code == 200 and again.json()["status"] == "REFUNDED"
    assert balance(api, fan.token) == 200


REFUND_CASES = {point: a_refund_dying_at_any_step_is_finished_by_recovery_once for point in REFUND.failpoints()}


def test_every_step_boundary_of_the_refund_saga_has_a_crash_case():
    assert set(REFUND_CASES) == set(REFUND.failpoints()) == {"refund:take-back:begun", "refund:take-back",
                                                              "refund:refund"}


@pytest.mark.parametrize("failpoint", REFUND.failpoints())
def test_the_orchestrator_dying_during_a_refund_converges(failpoint, api, crashing_api, fresh_event, engines):
    REFUND_CASES[failpoint](api, crashing_api(failpoint), fresh_event, engines)
