"""A ticket checked in at the gate and its transfer: a confirm racing the seller's scan of their own code ends one
way or the other (the seller is in and the transfer called off, or the buyer owns the ticket and the seller's code
is INVALID), never with a checked-in ticket whose transfer says otherwise and a buyer charged for it; a checked-in
ticket cannot be reversed, and its dispute is closed instead. Scans go through POST /verify as at a real gate."""
from __future__ import annotations

import time

import pytest

from trcommon.testing import run_together

from e2e_support import balance, ledger_refs, login, seat_row, wait_until
from test_transfer_crashes import keys, moves, transfer_row
from test_transfers import WINDOW, buyer_with, code_for, confirm, initiate, me, offered, owned_seat

AMOUNT = 30
BUYER_CREDITS = 100
TRIALS = 10


@pytest.fixture(scope="module")
def check_in(api):
    """A scanner at the seat's hall scans a code: the result of POST /verify."""
    scanner = login(api, "scanner@demo.test")

    def scan(code: str, hall_id: str) -> str:
        r = api.post("/verify", scanner, json={"qr": code, "hall_id": hall_id})
        assert r.status_code == 200, r.text
        return r.json()["result"]

    return scan


def code_of(api, fan, seat_id: str) -> str:
    r = api.get(f"/tickets/{seat_id}/qr", fan.token)
    assert r.status_code == 200, r.text
    return r.json()["qr"]


def test_a_confirm_racing_the_sellers_check_in_ends_one_way_or_the_other(api, fresh_event, engines, check_in):
    outcomes, confirm_takes = [], 0.0
    for trial in range(TRIALS):
        ev, seller = owned_seat(api, fresh_event)
        seat_id = ev.seat_ids[0]
        buyer = buyer_with(api, BUYER_CREDITS)
        before, version = me(api, seller), seat_row(engines, seat_id)["ticket_version"]
        transfer_id = offered(api, seller, seat_id, buyer, AMOUNT)
        codes = (code_for(engines, seller.phone, transfer_id), code_for(engines, buyer.phone, transfer_id))
        sellers_code = code_of(api, seller, seat_id)
        # The scan is sent from the confirm's start to a little after the longest confirm seen yet: it lands
        # before the confirm begins, between its debit and the ticket's move, or once the ticket has moved.
        delay = confirm_takes * 1.3 * trial / (TRIALS - 1)

        def gate():
            time.sleep(delay)
            return check_in(sellers_code, ev.hall_id)

        reply, scanned = run_together([
            lambda: confirm(api, engines, buyer, transfer_id, seller, buyer, *codes), gate])
        confirm_takes = max(confirm_takes, reply.elapsed.total_seconds())
        t = transfer_row(engines, transfer_id)
        seat = seat_row(engines, seat_id)
        seller_now = me(api, seller)
        refs = sorted(ledger_refs(engines, f"transfer:{transfer_id}:"))
        if t["status"] == "COMPLETED":
            # The ticket moved first: the seller's code died with it, and the buyer's ticket is still unused.
            assert (scanned, seat["status"]) == ("INVALID", "SOLD"), scanned
            assert reply.status_code == 200, reply.text
            assert (str(seat["owner_user_id"]), seat["ticket_version"]) == (buyer.user_id, version + 1)
            assert balance(api, buyer.token) == BUYER_CREDITS - AMOUNT
            assert seller_now["pending_credits"] == before["pending_credits"] + AMOUNT
            assert refs == keys(transfer_id, "debit", "credit")
            assert moves(engines, transfer_id) == keys(transfer_id, "move-ticket")
        else:
            assert t["status"] == "CANCELLED", t
            assert (scanned, seat["status"]) == ("CHECKED_IN", "CHECKED_IN"), scanned
            assert (reply.status_code, reply.json()["error"]["code"]) == (409, "TICKET_NOT_TRANSFERABLE"), reply.text
            assert (str(seat["owner_user_id"]), seat["ticket_version"]) == (seller.user_id, version)
            assert balance(api, buyer.token) == BUYER_CREDITS
            assert seller_now["pending_credits"] == before["pending_credits"]
            # Charged and refunded, the proceeds credited and cancelled, or nothing at all.
            assert refs in ([], keys(transfer_id, "debit", "refund", "credit", "uncredit")), refs
            assert moves(engines, transfer_id) == []
        assert seller_now["credit_balance"] == before["credit_balance"]
        outcomes.append(t["status"])
        print(f"scan after {delay * 1000:.0f} ms: {scanned}, {t['status']}, {len(refs)} ledger rows "
              f"(the confirm took {reply.elapsed.total_seconds() * 1000:.0f} ms)")
    assert set(outcomes) == {"COMPLETED", "CANCELLED"}, outcomes      # both orders were tried


def test_a_checked_in_ticket_cannot_be_reversed_and_its_dispute_is_closed_instead(api, fresh_event, engines,
                                                                                    check_in):
    ev, seller = owned_seat(api, fresh_event)
    seat_id = ev.seat_ids[0]
    buyer = buyer_with(api, BUYER_CREDITS)
    before = me(api, seller)
    transfer_id = offered(api, seller, seat_id, buyer, AMOUNT)
    r = confirm(api, engines, buyer, transfer_id, seller, buyer)
    assert r.status_code == 200, r.text
    r = api.post("/transfer/dispute", seller.token, json={"transfer_id": transfer_id, "reason": "never paid"})
    assert r.status_code == 200 and r.json()["status"] == "DISPUTED", r.text
    assert check_in(code_of(api, buyer, seat_id), ev.hall_id) == "CHECKED_IN"
    seat, transfer = seat_row(engines, seat_id), transfer_row(engines, transfer_id)

    admin = login(api, "admin@demo.test")
    r = api.post("/transfer/reverse", admin, json={"transfer_id": transfer_id})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "TICKET_CHECKED_IN"), r.text
    # Nothing changed: no reversal began, nothing moved.
    assert seat_row(engines, seat_id) == seat and str(seat["owner_user_id"]) == buyer.user_id
    assert transfer_row(engines, transfer_id) == transfer and transfer["step"] == "CONFIRMING"
    assert sorted(ledger_refs(engines, f"transfer:{transfer_id}:")) == keys(transfer_id, "debit", "credit")
    assert moves(engines, transfer_id) == keys(transfer_id, "move-ticket")
    assert balance(api, buyer.token) == BUYER_CREDITS - AMOUNT
    assert me(api, seller)["pending_credits"] == before["pending_credits"] + AMOUNT

    r = api.post("/transfer/resolve", buyer.token, json={"transfer_id": transfer_id, "resolution": "mine"})
    assert r.status_code == 403, r.text
    r = api.post("/transfer/resolve", admin, json={"transfer_id": transfer_id, "resolution": "the ticket was used"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["resolution"]) == ("COMPLETED", "the ticket was used")
    r = api.post("/transfer/dispute", buyer.token, json={"transfer_id": transfer_id, "reason": "again"})
    assert r.status_code in (409, 410), r.text      # an admin's decision is final

    # The proceeds are released once the window has closed, once.
    wait_until(lambda: transfer_row(engines, transfer_id)["released_at"], WINDOW + 10,
               what="the proceeds to be released")
    after = me(api, seller)
    assert (after["credit_balance"], after["pending_credits"]) == (before["credit_balance"] + AMOUNT,
                                                                   before["pending_credits"])
    assert sorted(ledger_refs(engines, f"transfer:{transfer_id}:")) == keys(
        transfer_id, "debit", "credit", "release", "release:pending")
    assert balance(api, buyer.token) == BUYER_CREDITS - AMOUNT
    assert str(seat_row(engines, seat_id)["owner_user_id"]) == buyer.user_id
    # A checked-in ticket cannot be offered again.
    r = initiate(api, buyer, seat_id, buyer_with(api, 0), 0)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "TICKET_CHECKED_IN"), r.text
