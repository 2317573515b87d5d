"""Fan-to-fan transfers through the public API: both parties prove themselves with a code, the price is capped at
face value, the seller's proceeds stay pending through the dispute window, an admin can reverse, and no credit
is ever lost (docs/sagas.md: the confirm, reversal and release sagas)."""
from __future__ import annotations

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from trcommon import demo

from e2e_support import (E2E_ENV, OTP_SMS_LIKE, balance, ledger_refs, login, register_and_login, seat_row, topup, wait_until)

WINDOW = float(E2E_ENV["TRANSFER_DISPUTE_WINDOW_SECONDS"])
TTL = float(E2E_ENV["TRANSFER_TTL_SECONDS"])


def code_for(engines, phone: str, transfer_id: str) -> str:
    """The code sent to `phone` for this transfer, read from the SMS outbox as a developer would."""
    with engines["user-service"].connect() as conn:
        body = conn.execute(sa.text("SELECT body FROM sms_outbox WHERE phone = :p AND body LIKE :t ORDER BY id DESC "
                                    "LIMIT 1"), {"p": phone, "t": f"%transfer:{transfer_id}%"}).scalar_one()
    return re.search(r"\b(\d{6})\b", body).group(1)


def owner(engines, seat_id: str) -> str:
    return str(seat_row(engines, seat_id)["owner_user_id"])


def me(api, fan) -> dict:
    return api.get("/me", fan.token).json()


def owned_seat(api, fresh_event, price=50, credits=1000):
    """A fan who has bought a seat, and the event it belongs to."""
    ev = fresh_event(seats=3, price=price)
    seller = register_and_login(api)
    topup(api, seller.user_id, credits)
    order = api.post("/reserve", seller.token, json={"seat_id": ev.seat_ids[0]}).json()
    r = api.post("/pay", seller.token, json={"order_id": order["order_id"]})
    assert r.status_code == 200, r.text
    return ev, seller


def buyer_with(api, credits):
    buyer = register_and_login(api)
    if credits:
        topup(api, buyer.user_id, credits)
    return buyer


def initiate(api, seller, seat_id, buyer, amount):
    return api.post("/transfer/initiate", seller.token,
                    json={"seat_id": seat_id, "buyer_email": buyer.email, "amount": amount})


def offered(api, seller, seat_id, buyer, amount):
    r = initiate(api, seller, seat_id, buyer, amount)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "PENDING_OTP" and body["expires_at"]
    return body["transfer_id"]


def confirm(api, engines, who, transfer_id, seller, buyer, seller_code=None, buyer_code=None):
    return api.post("/transfer/confirm", who.token, json={
        "transfer_id": transfer_id,
        "seller_otp": seller_code or code_for(engines, seller.phone, transfer_id),
        "buyer_otp": buyer_code or code_for(engines, buyer.phone, transfer_id)})


def other_code(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_a_transfer_moves_the_ticket_and_the_credits_and_releases_the_proceeds_after_the_window(
        api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event, price=50)
    buyer = buyer_with(api, 200)
    version = seat_row(engines, ev.seat_ids[0])["ticket_version"]
    seller_before = me(api, seller)
    transfer_id = offered(api, seller, ev.seat_ids[0], buyer, 40)
    [ticket] = [t for t in api.get("/me/tickets", seller.token).json()["tickets"] if t["seat_id"] == ev.seat_ids[0]]
    assert ticket["pending_transfer"]["transfer_id"] == transfer_id

    r = confirm(api, engines, buyer, transfer_id, seller, buyer)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text

    tickets = api.get("/me/tickets", buyer.token).json()["tickets"]
    assert [(t["seat_id"], t["status"]) for t in tickets] == [(ev.seat_ids[0], "SOLD")]
    assert tickets[0]["ticket_version"] == version + 1 and tickets[0]["pending_transfer"] is None
    assert ev.seat_ids[0] not in {t["seat_id"] for t in api.get("/me/tickets", seller.token).json()["tickets"]}
    assert balance(api, buyer.token) == 160
    after = me(api, seller)
    assert after["credit_balance"] == seller_before["credit_balance"]
    assert after["pending_credits"] == seller_before["pending_credits"] + 40

    # Once the dispute window has closed, the proceeds become spendable, once.
    wait_until(lambda: me(api, seller)["pending_credits"] == seller_before["pending_credits"], WINDOW + 10,
               what="the proceeds to be released")
    assert me(api, seller)["credit_balance"] == seller_before["credit_balance"] + 40
    assert sorted(ledger_refs(engines, f"transfer:{transfer_id}:")) == sorted(
        [f"transfer:{transfer_id}:debit", f"transfer:{transfer_id}:credit", f"transfer:{transfer_id}:release",
         f"transfer:{transfer_id}:release:pending"])
    t = api.get(f"/transfers/{transfer_id}", seller.token).json()
    assert t["status"] == "COMPLETED" and t["released_at"]
    assert [x["transfer_id"] for x in api.get("/me/transfers", buyer.token).json()["transfers"]] == [transfer_id]


def test_a_gift_moves_the_ticket_and_no_credits(api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event)
    buyer = buyer_with(api, 0)
    transfer_id = offered(api, seller, ev.seat_ids[0], buyer, 0)
    r = confirm(api, engines, seller, transfer_id, seller, buyer)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text
    assert owner(engines, ev.seat_ids[0]) == buyer.user_id
    assert balance(api, buyer.token) == 0 and me(api, seller)["pending_credits"] == 0


def test_a_wrong_code_on_either_side_moves_nothing_and_five_lock_that_code(api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event)
    buyer = buyer_with(api, 100)
    transfer_id = offered(api, seller, ev.seat_ids[0], buyer, 30)
    seller_code = code_for(engines, seller.phone, transfer_id)
    buyer_code = code_for(engines, buyer.phone, transfer_id)
    for wrong_side in ("seller", "buyer"):
        r = confirm(api, engines, buyer, transfer_id, seller, buyer,
                    seller_code=other_code(seller_code) if wrong_side == "seller" else seller_code,
                    buyer_code=other_code(buyer_code) if wrong_side == "buyer" else buyer_code)
        assert r.status_code == 403 and r.json()["error"]["code"] == "OTP_INVALID", r.text
    assert api.get(f"/transfers/{transfer_id}", buyer.token).json()["status"] == "PENDING_OTP"
    assert owner(engines, ev.seat_ids[0]) == seller.user_id
    assert balance(api, buyer.token) == 100 and ledger_refs(engines, f"transfer:{transfer_id}:") == []
    for _ in range(4):      # the buyer's code has had 1 wrong try; 4 more lock it
        confirm(api, engines, buyer, transfer_id, seller, buyer, seller_code=seller_code,
                buyer_code=other_code(buyer_code))
    r = confirm(api, engines, buyer, transfer_id, seller, buyer, seller_code=seller_code, buyer_code=buyer_code)
    assert r.status_code == 429 and r.json()["error"]["code"] == "OTP_LOCKED", r.text
    assert balance(api, buyer.token) == 100 and owner(engines, ev.seat_ids[0]) == seller.user_id


def test_codes_are_bound_to_their_transfer(api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event)
    buyer = buyer_with(api, 100)
    first = offered(api, seller, ev.seat_ids[0], buyer, 10)
    codes = (code_for(engines, seller.phone, first), code_for(engines, buyer.phone, first))
    assert api.post("/transfer/cancel", seller.token, json={"transfer_id": first}).json()["status"] == "CANCELLED"
    second = offered(api, seller, ev.seat_ids[0], buyer, 10)
    r = confirm(api, engines, buyer, second, seller, buyer, seller_code=codes[0], buyer_code=codes[1])
    if codes != (code_for(engines, seller.phone, second), code_for(engines, buyer.phone, second)):
        assert r.status_code == 403, r.text
    # The first transfer is over: its codes complete nothing.
    r = confirm(api, engines, buyer, first, seller, buyer, seller_code=codes[0], buyer_code=codes[1])
    assert r.status_code in (409, 410), r.text
    assert owner(engines, ev.seat_ids[0]) == seller.user_id


def test_a_payment_code_does_not_confirm_a_transfer(api, fresh_event, engines):
    flagged = login(api, "flagged@demo.test")
    phone = next(u[4] for u in demo.USERS if u[0] == "flagged@demo.test")
    ev = fresh_event(seats=1, price=10)
    order = api.post("/reserve", flagged, json={"seat_id": ev.seat_ids[0]}).json()
    assert api.post("/pay", flagged, json={"order_id": order["order_id"]}).status_code == 428
    with engines["user-service"].connect() as conn:
        body = conn.execute(sa.text("SELECT body FROM sms_outbox WHERE phone = :p AND body LIKE :otp "
                                    "ORDER BY id DESC LIMIT 1"), {"p": phone, "otp": OTP_SMS_LIKE}).scalar_one()
    payment_code = re.search(r"\b(\d{6})\b", body).group(1)
    ev2, seller = owned_seat(api, fresh_event)
    buyer = buyer_with(api, 100)
    transfer_id = offered(api, seller, ev2.seat_ids[0], buyer, 10)
    if payment_code != code_for(engines, buyer.phone, transfer_id):
        r = confirm(api, engines, buyer, transfer_id, seller, buyer, buyer_code=payment_code)
        assert r.status_code == 403, r.text
    assert balance(api, buyer.token) == 100


def test_an_unconfirmed_transfer_expires_and_the_seat_can_be_offered_again(api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event)
    buyer = buyer_with(api, 100)
    transfer_id = offered(api, seller, ev.seat_ids[0], buyer, 10)
    wait_until(lambda: api.get(f"/transfers/{transfer_id}", seller.token).json()["status"] == "EXPIRED", TTL + 10,
               what="the transfer to expire")
    r = confirm(api, engines, buyer, transfer_id, seller, buyer)
    assert r.status_code in (409, 410), r.text
    assert balance(api, buyer.token) == 100
    offered(api, seller, ev.seat_ids[0], buyer, 10)


def test_a_party_whose_code_expired_gets_a_new_one_that_works(api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event)
    buyer = buyer_with(api, 100)
    transfer_id = offered(api, seller, ev.seat_ids[0], buyer, 20)
    old = code_for(engines, buyer.phone, transfer_id)
    r = api.post("/transfer/codes", buyer.token, json={"transfer_id": transfer_id})
    assert r.status_code == 202 and r.json()["sent"] is True, r.text
    new = code_for(engines, buyer.phone, transfer_id)
    if new != old:      # the new code replaces the old one
        assert confirm(api, engines, buyer, transfer_id, seller, buyer, buyer_code=old).status_code == 403
    assert confirm(api, engines, buyer, transfer_id, seller, buyer, buyer_code=new).status_code == 200
    r = api.post("/transfer/codes", buyer.token, json={"transfer_id": transfer_id})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "TRANSFER_NOT_PENDING"), r.text
    stranger = register_and_login(api)
    assert api.post("/transfer/codes", stranger.token, json={"transfer_id": transfer_id}).status_code == 404


def test_refusals_change_nothing(api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event, price=50)
    buyer = buyer_with(api, 100)
    stranger = register_and_login(api)
    cases = [
        (seller, {"amount": 51}, 400, "PRICE_ABOVE_FACE_VALUE"),
        (seller, {"amount": -1}, 400, "INVALID_INPUT"),
        (seller, {"amount": 10.5}, 400, "INVALID_INPUT"),
        (seller, {"amount": "10"}, 400, "INVALID_INPUT"),
        (stranger, {}, 403, "NOT_TICKET_OWNER"),
        (seller, {"buyer_email": seller.email}, 400, "CANNOT_TRANSFER_TO_SELF"),
        (seller, {"buyer_email": f"nobody-{uuid.uuid4().hex[:8]}@example.com"}, 404, "BUYER_NOT_FOUND"),
        (seller, {"buyer_email": "scanner@demo.test"}, 400, "BUYER_NOT_A_FAN"),
    ]
    for who, change, status, code in cases:
        body = {"seat_id": ev.seat_ids[0], "buyer_email": buyer.email, "amount": 10, **change}
        r = api.post("/transfer/initiate", who.token, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (change, r.text)
    # A seat that is only held, and a seat the caller has nothing to do with.
    held = api.post("/reserve", seller.token, json={"seat_id": ev.seat_ids[1]}).json()
    assert held["status"] == "PENDING"
    r = initiate(api, seller, ev.seat_ids[1], buyer, 10)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "TICKET_NOT_TRANSFERABLE"), r.text
    r = api.post("/transfer/initiate", seller.token, json={"seat_id": str(uuid.uuid4()), "buyer_email": buyer.email,
                                                          "amount": 1})
    assert r.status_code == 404, r.text
    with engines["order-service"].connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM transfers WHERE seat_id IN (:a, :b)"),
                             {"a": ev.seat_ids[0], "b": ev.seat_ids[1]}).scalar_one()
    assert count == 0

    transfer_id = offered(api, seller, ev.seat_ids[0], buyer, 10)
    r = initiate(api, seller, ev.seat_ids[0], buyer_with(api, 0), 10)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "TRANSFER_ALREADY_OPEN"), r.text
    # A third fan can neither see, confirm, cancel nor dispute it; a fan cannot reverse.
    assert api.get(f"/transfers/{transfer_id}", stranger.token).status_code == 404
    for path, extra in (("/transfer/confirm", {"seller_otp": "123456", "buyer_otp": "123456"}),
                        ("/transfer/cancel", {}), ("/transfer/dispute", {"reason": "mine"})):
        r = api.post(path, stranger.token, json={"transfer_id": transfer_id, **extra})
        assert r.status_code == 404, (path, r.text)
    r = api.post("/transfer/cancel", buyer.token, json={"transfer_id": transfer_id})
    assert r.status_code == 403, r.text
    r = api.post("/transfer/reverse", seller.token, json={"transfer_id": transfer_id})
    assert r.status_code == 403, r.text
    assert api.get(f"/transfers/{transfer_id}", seller.token).json()["status"] == "PENDING_OTP"


def test_not_enough_credits_is_402_and_the_same_codes_work_after_a_top_up(api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event)
    buyer = buyer_with(api, 0)
    transfer_id = offered(api, seller, ev.seat_ids[0], buyer, 30)
    codes = (code_for(engines, seller.phone, transfer_id), code_for(engines, buyer.phone, transfer_id))
    r = confirm(api, engines, buyer, transfer_id, seller, buyer, *codes)
    assert r.status_code == 402 and r.json()["error"]["code"] == "INSUFFICIENT_CREDITS", r.text
    assert owner(engines, ev.seat_ids[0]) == seller.user_id
    topup(api, buyer.user_id, 100)
    r = confirm(api, engines, buyer, transfer_id, seller, buyer, *codes)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text
    assert balance(api, buyer.token) == 70


def test_a_dispute_then_a_reversal_gives_everything_back(api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event)
    buyer = buyer_with(api, 100)
    before = me(api, seller)
    transfer_id = offered(api, seller, ev.seat_ids[0], buyer, 45)
    assert confirm(api, engines, buyer, transfer_id, seller, buyer).status_code == 200
    version = seat_row(engines, ev.seat_ids[0])["ticket_version"]
    r = api.post("/transfer/dispute", buyer.token, json={"transfer_id": transfer_id, "reason": "wrong seat"})
    assert r.status_code == 200 and r.json()["status"] == "DISPUTED", r.text
    admin = login(api, "admin@demo.test")
    r = api.post("/transfer/reverse", admin, json={"transfer_id": transfer_id})
    assert r.status_code == 200 and r.json()["status"] == "REVERSED", r.text
    assert owner(engines, ev.seat_ids[0]) == seller.user_id
    assert seat_row(engines, ev.seat_ids[0])["ticket_version"] == version + 1
    assert balance(api, buyer.token) == 100
    assert me(api, seller)["pending_credits"] == before["pending_credits"]
    assert me(api, seller)["credit_balance"] == before["credit_balance"]
    # Repeating the reversal changes nothing; the window passing releases nothing.
    assert api.post("/transfer/reverse", admin, json={"transfer_id": transfer_id}).json()["status"] == "REVERSED"
    assert "release" not in " ".join(ledger_refs(engines, f"transfer:{transfer_id}:"))


def test_a_dispute_after_the_window_is_refused(api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event)
    buyer = buyer_with(api, 100)
    transfer_id = offered(api, seller, ev.seat_ids[0], buyer, 5)
    assert confirm(api, engines, buyer, transfer_id, seller, buyer).status_code == 200
    wait_until(lambda: api.get(f"/transfers/{transfer_id}", seller.token).json()["released_at"], WINDOW + 10,
               what="the proceeds to be released")
    r = api.post("/transfer/dispute", seller.token, json={"transfer_id": transfer_id, "reason": "too late"})
    assert r.status_code in (409, 410), r.text


def test_twenty_concurrent_confirms_move_the_ticket_and_the_credits_once(api, fresh_event, engines):
    ev, seller = owned_seat(api, fresh_event)
    buyer = buyer_with(api, 100)
    transfer_id = offered(api, seller, ev.seat_ids[0], buyer, 25)
    codes = (code_for(engines, seller.phone, transfer_id), code_for(engines, buyer.phone, transfer_id))
    barrier = threading.Barrier(20)

    def attempt(i):
        barrier.wait()
        who = buyer if i % 2 else seller
        return confirm(api, engines, who, transfer_id, seller, buyer, *codes)

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(attempt, range(20)))
    assert all(r.status_code == 200 and r.json()["status"] == "COMPLETED" for r in replies), \
        {r.status_code: r.text for r in replies}
    assert balance(api, buyer.token) == 75
    assert owner(engines, ev.seat_ids[0]) == buyer.user_id
    assert sorted(ledger_refs(engines, f"transfer:{transfer_id}:")) == [f"transfer:{transfer_id}:credit",
                                                                         f"transfer:{transfer_id}:debit"]


def test_two_transfers_racing_for_one_seat_open_one(api, fresh_event):
    ev, seller = owned_seat(api, fresh_event)
    buyers = [buyer_with(api, 0) for _ in range(6)]
    barrier = threading.Barrier(6)

    def attempt(buyer):
        barrier.wait()
        return initiate(api, seller, ev.seat_ids[0], buyer, 0).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(attempt, buyers))
    assert codes == [201] + [409] * 5
