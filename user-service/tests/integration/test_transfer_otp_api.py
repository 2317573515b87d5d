"""A transfer's debit of its buyer carries both parties' codes (`otp_parties`): all are checked in the debit's
transaction, used only if it applies, and a wrong one is counted against its own holder."""
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

DEBIT, CREDIT, SEND, LEDGER = ("/internal/credits/debit", "/internal/credits/credit", "/internal/otp/send",
                               "/internal/credits/ledger")


class Transfer:
    """A seller, a buyer with credits, a transfer id and both parties' codes for it."""

    def __init__(self, client, users, buyer_credits=100, buyer_flagged=False):
        self.client, self.users = client, users
        self.seller, self.buyer = users.new(), users.new(credits=buyer_credits, flagged=buyer_flagged)
        self.purpose = f"transfer:{uuid.uuid4()}"
        self.reference = f"{self.purpose}:debit"
        self.seller_code = send(client, users, self.seller, self.purpose)
        self.buyer_code = send(client, users, self.buyer, self.purpose)

    def confirm(self, seller_code=None, buyer_code=None, client=None, amount=40, purpose=None, order=None, **extra):
        codes = {"seller": (self.seller, seller_code or self.seller_code),
                 "buyer": (self.buyer, buyer_code or self.buyer_code)}
        parties = [{"user_id": codes[who][0]["user_id"], "code": codes[who][1]} for who in order or codes]
        return (client or self.client).post(DEBIT, json={
            "user_id": self.buyer["user_id"], "amount": amount, "reference": self.reference,
            "reason": "ticket transfer", "otp_purpose": purpose or self.purpose, "otp_parties": parties, **extra})

    def code_state(self, user, purpose=None) -> tuple[int, bool]:
        """(wrong tries, used) of the user's current code for the purpose."""
        return tuple(self.users.sql(
            "SELECT attempts, used_at IS NOT NULL FROM otp_codes WHERE user_id = :u AND purpose = :p "
            "AND superseded_at IS NULL ORDER BY created_at DESC LIMIT 1",
            {"u": user["user_id"], "p": purpose or self.purpose})[0])

    def states(self):
        return self.code_state(self.seller), self.code_state(self.buyer)

    def debits(self) -> int:
        return self.users.sql("SELECT count(*) FROM credit_ledger WHERE reference = :r", {"r": self.reference})[0][0]


def send(client, users, user, purpose) -> str:
    assert client.post(SEND, json={"user_id": user["user_id"], "purpose": purpose}).status_code == 202
    return users.latest_code(user["phone"])


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def refused_parties(resp) -> list[tuple[str, str]]:
    return [(p["user_id"], p["code"]) for p in resp.get_json()["error"]["details"]["parties"]]


def test_a_transfer_debit_with_both_right_codes_applies_and_uses_both(client, users):
    t = Transfer(client, users)
    resp = t.confirm()
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["amount"], body["balance"], body["account"], body["applied"]) == (-40, 60, "spendable", True)
    assert t.states() == ((0, True), (0, True))
    again = t.confirm()
    assert again.status_code == 200 and again.get_json() == {**body, "applied": False}
    assert users.balance(t.buyer["user_id"]) == 60 and t.debits() == 1
    # Used codes pay for nothing else.
    t.reference = f"{t.purpose}:another"
    resp = t.confirm()
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "OTP_INVALID"
    assert users.balance(t.buyer["user_id"]) == 60


def test_one_wrong_code_refuses_the_debit_counts_that_try_and_uses_no_code(client, users):
    t = Transfer(client, users)
    resp = t.confirm(seller_code=wrong(t.seller_code))
    assert resp.status_code == 403
    error = resp.get_json()["error"]
    assert error == {"code": "OTP_INVALID", "message": "wrong code; 4 tries left", "details": {"parties": [
        {"user_id": t.seller["user_id"], "code": "OTP_INVALID", "message": "wrong code; 4 tries left"}]}}
    assert t.states() == ((1, False), (0, False))
    assert users.balance(t.buyer["user_id"]) == 100 and t.debits() == 0
    # Both wrong: each is counted against its own code, and both are named.
    resp = t.confirm(seller_code=wrong(t.seller_code), buyer_code=wrong(t.buyer_code))
    assert resp.status_code == 403
    assert refused_parties(resp) == [(t.seller["user_id"], "OTP_INVALID"), (t.buyer["user_id"], "OTP_INVALID")]
    assert t.states() == ((2, False), (1, False))
    # Neither code was used up by the refusals.
    assert t.confirm().get_json()["applied"] is True
    assert t.states() == ((2, True), (1, True)) and users.balance(t.buyer["user_id"]) == 60


def test_the_first_refusal_in_the_order_given_is_the_answer(client, users):
    t = Transfer(client, users)
    resp = t.confirm(buyer_code=wrong(t.buyer_code), seller_code=wrong(t.seller_code), order=["buyer", "seller"])
    assert resp.status_code == 403 and "4 tries left" in resp.get_json()["error"]["message"]
    assert refused_parties(resp) == [(t.buyer["user_id"], "OTP_INVALID"), (t.seller["user_id"], "OTP_INVALID")]


def test_five_wrong_tries_lock_that_partys_code_and_only_that_one(client, users):
    t = Transfer(client, users)
    for left in (4, 3, 2, 1, 0):
        resp = t.confirm(seller_code=wrong(t.seller_code))
        assert resp.status_code == 403 and f"{left} tr" in resp.get_json()["error"]["message"]
    resp = t.confirm()
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "OTP_LOCKED"
    assert refused_parties(resp) == [(t.seller["user_id"], "OTP_LOCKED")]
    assert t.states() == ((5, False), (0, False))
    # Another party's wrong code in the same request is still counted, and named after the lock.
    resp = t.confirm(buyer_code=wrong(t.buyer_code))
    assert resp.status_code == 429
    assert refused_parties(resp) == [(t.seller["user_id"], "OTP_LOCKED"), (t.buyer["user_id"], "OTP_INVALID")]
    assert t.states() == ((5, False), (1, False))
    assert users.balance(t.buyer["user_id"]) == 100 and t.debits() == 0
    # A new code for the seller ends the lock; the buyer's code was never used.
    t.seller_code = send(client, users, t.seller, t.purpose)
    assert t.confirm().get_json()["applied"] is True


def test_codes_for_another_transfer_or_an_order_are_refused(client, users):
    t = Transfer(client, users)
    other = f"transfer:{uuid.uuid4()}"
    other_codes = (send(client, users, t.seller, other), send(client, users, t.buyer, other))
    resp = t.confirm(*other_codes)
    assert resp.status_code == 403
    assert refused_parties(resp) == [(t.seller["user_id"], "OTP_INVALID"), (t.buyer["user_id"], "OTP_INVALID")]
    # A code for a payment does not confirm a transfer either.
    order_code = send(client, users, t.buyer, f"order:{uuid.uuid4()}")
    resp = t.confirm(buyer_code=order_code)
    assert resp.status_code == 403 and refused_parties(resp) == [(t.buyer["user_id"], "OTP_INVALID")]
    # This transfer's codes do not confirm one for which no code was sent.
    resp = t.confirm(purpose=f"transfer:{uuid.uuid4()}")
    assert resp.status_code == 403 and resp.get_json()["error"]["message"] == "no code was sent for this purpose"
    assert users.balance(t.buyer["user_id"]) == 100 and t.debits() == 0
    assert t.confirm().get_json()["applied"] is True
    assert t.states() == ((1, True), (2, True))
    # The other transfer's codes were never what was checked: untouched.
    assert t.code_state(t.seller, other) == (0, False) and t.code_state(t.buyer, other) == (0, False)


def test_right_codes_with_too_few_credits_are_402_use_nothing_and_pay_after_a_top_up(client, users):
    t = Transfer(client, users, buyer_credits=10)
    resp = t.confirm()
    assert resp.status_code == 402 and resp.get_json()["error"]["code"] == "INSUFFICIENT_CREDITS"
    assert t.states() == ((0, False), (0, False)) and t.debits() == 0
    client.post(CREDIT, json={"user_id": t.buyer["user_id"], "amount": 30, "reference": f"topup:{uuid.uuid4()}",
                              "reason": "top-up"})
    resp = t.confirm()
    assert resp.status_code == 200 and resp.get_json()["balance"] == 0
    assert t.states() == ((0, True), (0, True))


def test_twenty_concurrent_confirms_of_one_transfer_debit_once_and_are_all_answered(client, users):
    t = Transfer(client, users)

    def confirm(n):
        # Half name the parties the other way round: the codes are still locked in one order.
        resp = t.confirm(client=users.clone(client), order=["buyer", "seller"] if n % 2 else None)
        return resp.status_code, resp.get_json().get("applied")

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(confirm, range(20)))
    assert [status for status, _ in results] == [200] * 20
    assert sum(applied for _, applied in results) == 1
    assert users.balance(t.buyer["user_id"]) == 60 and t.debits() == 1
    assert t.states() == ((0, True), (0, True))


def test_an_expired_code_is_410_naming_its_holder_and_uses_neither(make_client, client, users):
    t = Transfer(client, users)
    t.seller_code = send(make_client(otp_ttl_seconds=1), users, t.seller, t.purpose)
    time.sleep(1.1)
    resp = t.confirm()
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "OTP_EXPIRED"
    assert refused_parties(resp) == [(t.seller["user_id"], "OTP_EXPIRED")]
    assert t.states() == ((0, False), (0, False)) and t.debits() == 0


def test_a_transfer_debit_after_its_deadline_is_410_and_uses_no_code(client, users):
    t = Transfer(client, users)
    past = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    resp = t.confirm(not_after=past)
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "HOLD_EXPIRED"
    assert t.states() == ((0, False), (0, False))
    future = (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat()
    assert t.confirm(not_after=future).get_json()["applied"] is True


def test_a_flagged_buyers_party_code_is_the_code_their_debit_needs(client, users):
    t = Transfer(client, users, buyer_flagged=True)
    resp = t.confirm()
    assert resp.status_code == 200 and resp.get_json()["applied"] is True
    assert len(users.outbox(t.buyer["phone"])) == 1


def test_a_flagged_buyer_who_is_not_a_party_still_needs_their_own_code(client, users):
    t = Transfer(client, users, buyer_flagged=True)
    body = {"user_id": t.buyer["user_id"], "amount": 40, "reference": t.reference, "reason": "ticket transfer",
            "otp_purpose": t.purpose, "otp_parties": [{"user_id": t.seller["user_id"], "code": t.seller_code}]}
    resp = client.post(DEBIT, json=body)
    assert resp.status_code == 428 and resp.get_json()["error"]["code"] == "OTP_REQUIRED"
    assert t.code_state(t.seller) == (0, False)
    resp = client.post(DEBIT, json={**body, "otp_code": users.latest_code(t.buyer["phone"])})
    assert resp.status_code == 200 and resp.get_json()["applied"] is True
    assert t.code_state(t.seller) == (0, True)


def _body(user_id, **extra):
    return {"user_id": user_id, "amount": 1, "reference": f"transfer:{uuid.uuid4()}:debit", "reason": "x", **extra}


@pytest.mark.parametrize("case", ["no purpose", "empty", "three", "twice", "code twice", "bad code"])
def test_otp_parties_are_validated(client, users, case):
    buyer, seller, third = (str(uuid.uuid4()) for _ in range(3))
    purpose = f"transfer:{uuid.uuid4()}"

    def party(user_id, code="123456"):
        return {"user_id": user_id, "code": code}

    extra = {
        "no purpose": {"otp_parties": [party(seller)]},
        "empty": {"otp_purpose": purpose, "otp_parties": []},
        "three": {"otp_purpose": purpose, "otp_parties": [party(seller), party(buyer), party(third)]},
        "twice": {"otp_purpose": purpose, "otp_parties": [party(seller), party(seller)]},
        "code twice": {"otp_purpose": purpose, "otp_code": "123456", "otp_parties": [party(buyer)]},
        "bad code": {"otp_purpose": purpose, "otp_parties": [party(seller, "12345")]},
    }[case]
    resp = client.post(DEBIT, json=_body(buyer, **extra))
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_INPUT"


def test_an_unknown_party_is_404_before_any_code_is_looked_at(client, users):
    t = Transfer(client, users)
    body = {"user_id": t.buyer["user_id"], "amount": 40, "reference": t.reference, "reason": "ticket transfer",
            "otp_purpose": t.purpose, "otp_parties": [{"user_id": str(uuid.uuid4()), "code": t.seller_code},
                                                      {"user_id": t.buyer["user_id"], "code": wrong(t.buyer_code)}]}
    resp = client.post(DEBIT, json=body)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "USER_NOT_FOUND"
    assert t.code_state(t.buyer) == (0, False)


def test_a_gifts_zero_debit_records_both_parties_confirmation_and_moves_nothing(client, users):
    t = Transfer(client, users, buyer_credits=0)
    resp = t.confirm(amount=0)
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["amount"], resp.get_json()["applied"]) == (0, True)
    assert t.states() == ((0, True), (0, True)) and t.debits() == 1
    assert users.balance(t.buyer["user_id"]) == 0
    wrong_gift = Transfer(client, users, buyer_credits=0)
    resp = wrong_gift.confirm(amount=0, buyer_code=wrong(wrong_gift.buyer_code))
    assert resp.status_code == 403 and wrong_gift.debits() == 0


def test_a_zero_debit_without_every_partys_code_is_refused(client, users):
    buyer = users.new(credits=10)
    resp = client.post(DEBIT, json={"user_id": buyer["user_id"], "amount": 0, "reference": "transfer:x:debit",
                                    "reason": "gift"})
    assert resp.status_code == 400
