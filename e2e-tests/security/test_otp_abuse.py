"""OTP abuse (../shared/RELIABILITY.md case 22) against the running system: guessing one code, replaying a used
one, an expired one, a code used for another order or transfer, and a flood of send requests. The codes are read
from the SMS outbox as a developer would (README, Using the API). Each test prints its figure."""
from __future__ import annotations

import dataclasses
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from e2e_support import (E2E_ENV, OTP_SMS_LIKE, Api, balance, ledger_refs, login, register_and_login, seat_row, topup)
from trcommon.devstack import Stack, free_port
from trcommon.errors import AppError
from trcontracts import users as user_api

K = 5               # OTP_MAX_ATTEMPTS
SEND_CAP = 10       # OTP_SENDS_PER_HOUR


def flagged_fan(api, engines, credits=1000):
    fan = register_and_login(api)
    topup(api, fan.user_id, credits)
    with engines["user-service"].begin() as conn:
        conn.execute(sa.text("UPDATE users SET is_flagged = true WHERE user_id = :u"), {"u": fan.user_id})
    return fan


def code_for(engines, phone: str, purpose: str) -> str:
    """The latest code sent to `phone` for `purpose` (`order:<id>` or `transfer:<id>`), from the SMS outbox."""
    with engines["user-service"].connect() as conn:
        body = conn.execute(sa.text("SELECT body FROM sms_outbox WHERE phone = :p AND body LIKE :t ORDER BY id DESC "
                                    "LIMIT 1"), {"p": phone, "t": f"%({purpose})%"}).scalar_one()
    return re.search(r"\b(\d{6})\b", body).group(1)


def otp_row(engines, user_id: str, purpose: str) -> dict:
    with engines["user-service"].connect() as conn:
        return dict(conn.execute(sa.text("SELECT attempts, used_at FROM otp_codes WHERE user_id = :u AND purpose = :p "
                                         "AND superseded_at IS NULL ORDER BY created_at DESC LIMIT 1"),
                                 {"u": user_id, "p": purpose}).mappings().one())


def error_code(reply) -> str | None:
    return reply.json()["error"]["code"] if reply.status_code >= 400 else None


def pending_order(api, fan, seat_id) -> str:
    """A held seat whose /pay answered 428: a code for `order:<id>` is in the outbox."""
    r = api.post("/reserve", fan.token, json={"seat_id": seat_id})
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    r = api.post("/pay", fan.token, json={"order_id": order_id})
    assert (r.status_code, error_code(r)) == (428, "OTP_REQUIRED"), r.text
    return order_id


def pay(api, fan, order_id, code):
    return api.post("/pay", fan.token, json={"order_id": order_id, "otp_code": code})


def sellers_seats(api, fresh_event, seats=1):
    """A fan who has bought `seats` seats of a fresh event (unflagged: no code needed), and those seats."""
    ev = fresh_event(seats=seats, price=50)
    seller = register_and_login(api)
    topup(api, seller.user_id, 50 * seats)
    for seat in ev.seat_ids:
        order = api.post("/reserve", seller.token, json={"seat_id": seat}).json()
        assert api.post("/pay", seller.token, json={"order_id": order["order_id"]}).status_code == 200
    return seller, ev.seat_ids


def offer(api, seller, seat_id, buyer, amount=10) -> str:
    r = api.post("/transfer/initiate", seller.token,
                 json={"seat_id": seat_id, "buyer_email": buyer.email, "amount": amount})
    assert r.status_code == 201, r.text
    return r.json()["transfer_id"]


def confirm(api, who, transfer_id, seller_code, buyer_code):
    return api.post("/transfer/confirm", who.token,
                    json={"transfer_id": transfer_id, "seller_otp": seller_code, "buyer_otp": buyer_code})


def transfer_codes(engines, transfer_id, seller, buyer) -> tuple[str, str]:
    purpose = f"transfer:{transfer_id}"
    return code_for(engines, seller.phone, purpose), code_for(engines, buyer.phone, purpose)


def test_a_thousand_guesses_at_one_code_get_five_checks_then_even_the_right_code_is_locked(
        api, orchestrator, fresh_event, engines):
    # Codes live OTP_TTL_SECONDS (60 s here) and this orchestrator's transfers wait 120 s for them: the guesses
    # meet a live code and a live transfer.
    patient = orchestrator(TRANSFER_TTL_SECONDS="120")
    seller, seats = sellers_seats(api, fresh_event)
    buyer = register_and_login(api)
    topup(api, buyer.user_id, 100)
    transfer_id = offer(patient, seller, seats[0], buyer)
    seller_code, buyer_code = transfer_codes(engines, transfer_id, seller, buyer)

    # 1,000 distinct guesses at the buyer's code with the seller's right one, the right buyer code among them
    # (the 500th), sent 16 at a time.
    wrong = [f"{n:06d}" for n in range(1000) if f"{n:06d}" != buyer_code][:999]
    guesses = wrong[:499] + [buyer_code] + wrong[499:]
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda g: confirm(patient, buyer, transfer_id, seller_code, g), guesses))
    took = time.monotonic() - started
    answers = [(r.status_code, error_code(r)) for r in replies]
    checked = answers.count((403, "OTP_INVALID"))
    locked = answers.count((429, "OTP_LOCKED"))
    counted = otp_row(engines, buyer.user_id, f"transfer:{transfer_id}")["attempts"]
    print(f"\n1000 guesses at one transfer code in {took:.1f} s: checked (403 OTP_INVALID) {checked}, refused as "
          f"locked (429 OTP_LOCKED) {locked}, accepted {answers.count((200, None))}, other "
          f"{len(answers) - checked - locked - answers.count((200, None))}; attempts recorded {counted} (K={K}); "
          f"the right code (guess 500): {answers[499]}")
    assert checked <= K and counted == K, answers[:20]
    assert checked + locked == len(guesses), sorted(set(answers))
    assert answers[499] == (429, "OTP_LOCKED")

    # After the lockout the right code does not work either, and nothing moved.
    r = confirm(patient, buyer, transfer_id, seller_code, buyer_code)
    assert (r.status_code, error_code(r)) == (429, "OTP_LOCKED"), r.text
    assert patient.get(f"/transfers/{transfer_id}", buyer.token).json()["status"] == "PENDING_OTP"
    assert str(seat_row(engines, seats[0])["owner_user_id"]) == seller.user_id
    assert balance(api, buyer.token) == 100 and ledger_refs(engines, f"transfer:{transfer_id}:") == []
    # The seller's code, presented with every guess, was never used or counted against them.
    assert otp_row(engines, seller.user_id, f"transfer:{transfer_id}") == {"attempts": 0, "used_at": None}
    # A new code (a send, capped per hour) is the way on: K guesses per code sent.
    assert patient.post("/transfer/codes", buyer.token, json={"transfer_id": transfer_id}).status_code == 202
    r = confirm(patient, buyer, transfer_id, seller_code, code_for(engines, buyer.phone, f"transfer:{transfer_id}"))
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text


def test_guesses_at_a_payment_code_lock_it_after_five(api, fresh_event, engines):
    fan = flagged_fan(api, engines)
    seat = fresh_event(seats=1)
    order_id = pending_order(api, fan, seat.seat_ids[0])
    code = code_for(engines, fan.phone, f"order:{order_id}")
    wrong = [f"{n:06d}" for n in range(30) if f"{n:06d}" != code][:20]
    with ThreadPoolExecutor(8) as pool:           # the hold lives 3 s here: the guesses must land within it
        answers = [(r.status_code, error_code(r)) for r in pool.map(lambda g: pay(api, fan, order_id, g), wrong)]
    right = pay(api, fan, order_id, code)
    print(f"\n{len(wrong)} guesses at one payment code: checked {answers.count((403, 'OTP_INVALID'))}, locked "
          f"{answers.count((429, 'OTP_LOCKED'))}; then the right code: {right.status_code} {error_code(right)}")
    assert answers.count((403, "OTP_INVALID")) <= K and answers.count((429, "OTP_LOCKED")) == len(wrong) - K, answers
    assert (right.status_code, error_code(right)) == (429, "OTP_LOCKED"), right.text
    assert otp_row(engines, fan.user_id, f"order:{order_id}")["attempts"] == K
    assert balance(api, fan.token) == 1000 and ledger_refs(engines, f"order:{order_id}:") == []


def test_a_used_code_replayed_charges_and_moves_nothing_more(api, fresh_event, engines):
    replays, effects = 0, []      # effects: what a replay changed
    # A payment: the same /pay with the used code, again and at once, answers the stored confirmation.
    fan = flagged_fan(api, engines)
    ev = fresh_event(seats=1)
    order_id = pending_order(api, fan, ev.seat_ids[0])
    code = code_for(engines, fan.phone, f"order:{order_id}")
    first = pay(api, fan, order_id, code)
    assert first.status_code == 200 and first.json()["status"] == "CONFIRMED", first.text
    with ThreadPoolExecutor(8) as pool:
        again = list(pool.map(lambda _: pay(api, fan, order_id, code), range(10)))
    replays += len(again)
    assert all(r.status_code == 200 and r.json() == first.json() for r in again), [r.text for r in again]
    if ledger_refs(engines, f"order:{order_id}:") != [f"order:{order_id}:debit"] or balance(api, fan.token) != 950:
        effects.append("the order was charged again")
    # The code itself is spent: user-service refuses it for its own purpose.
    with pytest.raises(AppError) as refused:
        api.users.call(user_api.OTP_VERIFY, {"user_id": fan.user_id, "purpose": f"order:{order_id}", "code": code})
    replays += 1
    assert refused.value.code == "OTP_INVALID" and "used" in refused.value.message, refused.value

    # A transfer: the used codes replayed after it completed, and after an admin reversed it.
    seller, seats = sellers_seats(api, fresh_event)
    buyer = register_and_login(api)
    topup(api, buyer.user_id, 100)
    transfer_id = offer(api, seller, seats[0], buyer, amount=30)
    codes = transfer_codes(engines, transfer_id, seller, buyer)
    assert confirm(api, buyer, transfer_id, *codes).json()["status"] == "COMPLETED"
    replies = [confirm(api, who, transfer_id, *codes) for who in (buyer, seller, buyer)]
    replays += len(replies)
    assert all(r.status_code == 200 and r.json()["status"] == "COMPLETED" for r in replies), [r.text for r in replies]
    assert api.post("/transfer/dispute", buyer.token, json={"transfer_id": transfer_id, "reason": "replay test"}
                    ).status_code == 200
    admin = login(api, "admin@demo.test")
    assert api.post("/transfer/reverse", admin, json={"transfer_id": transfer_id}).json()["status"] == "REVERSED"
    after = [confirm(api, who, transfer_id, *codes) for who in (buyer, seller)]
    replays += len(after)
    assert all(r.json().get("status") == "REVERSED" or r.status_code >= 400 for r in after), [r.text for r in after]
    refs = sorted(ref.rsplit(":", 1)[1] for ref in ledger_refs(engines, f"transfer:{transfer_id}:"))
    if refs != ["credit", "debit", "refund", "uncredit"] or balance(api, buyer.token) != 100:
        effects.append(f"credits moved again: {refs}")
    if str(seat_row(engines, seats[0])["owner_user_id"]) != seller.user_id:
        effects.append("the ticket moved again")
    print(f"\nused codes replayed: {replays} replays (11 of a payment code, 5 of a transfer's codes, after it "
          f"completed and after its reversal), accepted with an effect {len(effects)}")
    assert effects == [], effects


@pytest.fixture
def short_lived_codes(stack, databases, amqp_url):
    """A user-service whose codes live 1 s (OTP_TTL_SECONDS) and an orchestrator in front of it, beside the
    stack (same databases and broker)."""
    ports = dataclasses.replace(stack.ports, orchestrator=free_port(), user=free_port())
    s = Stack(db_urls=databases, amqp_url=amqp_url, ports=ports, log_dir=stack.log_dir,
              env={**E2E_ENV, "OTP_TTL_SECONDS": "1"})
    s.start(["user-service", "orchestrator-service"])
    try:
        s.wait_healthy(60)
        yield Api(s.base_url)
    finally:
        s.stop()


def test_an_expired_code_is_refused_for_a_payment_and_a_transfer(api, short_lived_codes, fresh_event, engines):
    quick = short_lived_codes
    fan = flagged_fan(api, engines)
    ev = fresh_event(seats=1)
    order_id = pending_order(quick, fan, ev.seat_ids[0])         # the hold lives 3 s, the code 1 s
    code = code_for(engines, fan.phone, f"order:{order_id}")
    time.sleep(1.3)
    paid = pay(quick, fan, order_id, code)

    seller, seats = sellers_seats(api, fresh_event)
    buyer = register_and_login(api)
    topup(api, buyer.user_id, 100)
    transfer_id = offer(quick, seller, seats[0], buyer)
    codes = transfer_codes(engines, transfer_id, seller, buyer)
    time.sleep(1.3)
    confirmed = confirm(quick, buyer, transfer_id, *codes)
    answers = [(paid.status_code, error_code(paid)), (confirmed.status_code, error_code(confirmed))]
    print(f"\nexpired codes (OTP_TTL_SECONDS=1, used 1.3 s after the send): payment -> {answers[0]}, "
          f"transfer -> {answers[1]}; accepted {sum(s < 400 for s, _ in answers)}")
    assert answers == [(410, "OTP_EXPIRED")] * 2, [paid.text, confirmed.text]
    assert [p["code"] for p in confirmed.json()["error"]["details"]["parties"]] == ["OTP_EXPIRED"] * 2
    assert balance(api, fan.token) == 1000 and ledger_refs(engines, f"order:{order_id}:") == []
    assert balance(api, buyer.token) == 100 and ledger_refs(engines, f"transfer:{transfer_id}:") == []
    # Fresh codes, used in time, work: expiry refused only the old ones.
    for party in (seller, buyer):
        assert api.post("/transfer/codes", party.token, json={"transfer_id": transfer_id}).status_code == 202
    r = confirm(api, buyer, transfer_id, *transfer_codes(engines, transfer_id, seller, buyer))
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text


def test_a_code_works_only_for_its_own_order_or_transfer(api, fresh_event, engines):
    seller, seats = sellers_seats(api, fresh_event, seats=2)
    buyer = flagged_fan(api, engines)
    first, second = (offer(api, seller, seat, buyer) for seat in seats)
    ev = fresh_event(seats=2)
    order_a, order_b = (pending_order(api, buyer, seat) for seat in ev.seat_ids)
    codes = {"first": transfer_codes(engines, first, seller, buyer),
             "second": transfer_codes(engines, second, seller, buyer),
             "order_a": code_for(engines, buyer.phone, f"order:{order_a}"),
             "order_b": code_for(engines, buyer.phone, f"order:{order_b}")}
    # Each attempt: what it was, and the reply; an attempt whose digits happen to equal the right code's (one in a
    # million) would be no cross use, so it is left out.
    attempts = []

    def cross(what, wrong_digits, right_digits, call):
        if wrong_digits != right_digits:
            attempts.append((what, call()))

    cross("transfer 1's codes for transfer 2", codes["first"], codes["second"],
          lambda: confirm(api, buyer, second, *codes["first"]))
    cross("transfer 2's codes for transfer 1", codes["second"], codes["first"],
          lambda: confirm(api, seller, first, *codes["second"]))
    cross("order A's code for order B", codes["order_a"], codes["order_b"],
          lambda: pay(api, buyer, order_b, codes["order_a"]))
    cross("order B's code for order A", codes["order_b"], codes["order_a"],
          lambda: pay(api, buyer, order_a, codes["order_b"]))
    cross("the buyer's transfer code for order A", codes["first"][1], codes["order_a"],
          lambda: pay(api, buyer, order_a, codes["first"][1]))
    cross("order A's code as the buyer's transfer code", codes["order_a"], codes["first"][1],
          lambda: confirm(api, buyer, first, codes["first"][0], codes["order_a"]))
    accepted = [what for what, r in attempts if r.status_code < 400]
    print(f"\ncross-purpose uses: {len(attempts)} attempts, accepted {len(accepted)}; answers "
          f"{sorted({(r.status_code, error_code(r)) for _, r in attempts})}")
    assert accepted == [] and all(error_code(r) == "OTP_INVALID" for _, r in attempts), \
        [(what, r.text) for what, r in attempts]
    assert ledger_refs(engines, f"transfer:{first}:") == ledger_refs(engines, f"transfer:{second}:") == []
    assert balance(api, buyer.token) == 1000

    # Each code still does its own job (a wrong try counted one of its five); the orders first, their holds are short.
    assert pay(api, buyer, order_a, codes["order_a"]).json()["status"] == "CONFIRMED"
    assert pay(api, buyer, order_b, codes["order_b"]).json()["status"] == "CONFIRMED"
    assert confirm(api, buyer, first, *codes["first"]).json()["status"] == "COMPLETED"
    assert confirm(api, buyer, second, *codes["second"]).json()["status"] == "COMPLETED"


def test_a_hundred_send_requests_in_an_hour_send_at_most_the_cap_and_the_refusals_say_when(
        api, fresh_event, engines):
    seller, seats = sellers_seats(api, fresh_event, seats=3)
    buyer = register_and_login(api)
    topup(api, buyer.user_id, 100)
    transfers = [offer(api, seller, seat, buyer) for seat in seats[:2]]     # each sends the buyer a code
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda i: api.post("/transfer/codes", buyer.token,
                                                   json={"transfer_id": transfers[i % 2]}), range(100)))
    sent = sum(r.status_code == 202 for r in replies)
    refused = [r for r in replies if (r.status_code, error_code(r)) == (429, "OTP_SEND_LIMIT")]
    with engines["user-service"].connect() as conn:
        sms = conn.execute(sa.text("SELECT count(*) FROM sms_outbox WHERE phone = :p AND body LIKE :otp "
                                   "AND created_at > now() - interval '1 hour'"),
                           {"p": buyer.phone, "otp": OTP_SMS_LIKE}).scalar_one()
    waits = sorted({int(r.headers["Retry-After"]) for r in refused})
    print(f"\n100 code requests by one fan at once (over 2 transfers, after the 2 codes their offers sent): "
          f"{sent} sent, {len(refused)} refused 429 OTP_SEND_LIMIT with Retry-After {waits[0]}-{waits[-1]} s; "
          f"codes by SMS to the fan in the hour {sms} (cap {SEND_CAP})")
    assert sms == SEND_CAP and sent == SEND_CAP - len(transfers) and len(refused) == 100 - sent, \
        sorted({(r.status_code, error_code(r)) for r in replies})
    for r in refused:
        assert int(r.headers["Retry-After"]) == r.json()["error"]["retry_after"], r.headers
    assert 3000 <= waits[0] <= waits[-1] <= 3601
    # Another seller's offer would send the fan a code too: it is refused the same way, and leaves nothing open.
    r = api.post("/transfer/initiate", seller.token, json={"seat_id": seats[2], "buyer_email": buyer.email,
                                                           "amount": 10})
    assert (r.status_code, error_code(r)) == (429, "OTP_SEND_LIMIT") and int(r.headers["Retry-After"]) >= 3000, r.text
    assert offer(api, seller, seats[2], register_and_login(api))
    # The cap refuses new codes, not the fan: the last code sent for each transfer still confirms it.
    for transfer_id in transfers:
        r = confirm(api, buyer, transfer_id, *transfer_codes(engines, transfer_id, seller, buyer))
        assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text
