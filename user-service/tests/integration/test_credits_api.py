import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

DEBIT, CREDIT, LEDGER = "/internal/credits/debit", "/internal/credits/credit", "/internal/credits/ledger"


def _ref() -> str:
    return f"order:{uuid.uuid4()}:debit"


def _debit(client, user_id, amount, reference, **extra):
    return client.post(DEBIT, json={"user_id": user_id, "amount": amount, "reference": reference,
                                    "reason": "ticket purchase", **extra})


def test_a_debit_takes_the_credits_and_records_one_negative_ledger_entry(client, users):
    user = users.new(credits=100)
    reference = _ref()
    resp = _debit(client, user["user_id"], 30, reference)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body == {"entry_id": body["entry_id"], "user_id": user["user_id"], "amount": -30, "balance": 70,
                    "reference": reference, "account": "spendable", "applied": True}
    assert users.balance(user["user_id"]) == 70
    entries = client.get(LEDGER, query_string={"reference": reference}).get_json()["entries"]
    assert [(e["entry_id"], e["amount"], e["balance_after"], e["reason"]) for e in entries] == \
        [(body["entry_id"], -30, 70, "ticket purchase")]


def test_the_same_debit_reference_again_returns_the_original_entry_and_charges_nothing(client, users):
    user = users.new(credits=100)
    reference = _ref()
    first = _debit(client, user["user_id"], 30, reference).get_json()
    for _ in range(3):
        again = _debit(client, user["user_id"], 30, reference)
        assert again.status_code == 200
        assert again.get_json() == {**first, "applied": False}
    assert users.balance(user["user_id"]) == 70


def test_a_debit_after_its_deadline_is_410_and_charges_nothing(client, users):
    from datetime import datetime, timedelta, timezone

    user = users.new(credits=100)
    past = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    resp = _debit(client, user["user_id"], 30, _ref(), not_after=past)
    assert resp.status_code == 410
    assert resp.get_json()["error"]["code"] == "HOLD_EXPIRED"
    assert users.balance(user["user_id"]) == 100


def test_a_debit_before_its_deadline_applies_and_its_replay_answers_after_the_deadline(client, users):
    import time
    from datetime import datetime, timedelta, timezone

    user = users.new(credits=100)
    reference = _ref()
    deadline = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    first = _debit(client, user["user_id"], 30, reference, not_after=deadline)
    assert first.status_code == 200 and first.get_json()["applied"] is True
    time.sleep(1.1)
    again = _debit(client, user["user_id"], 30, reference, not_after=deadline)
    assert again.status_code == 200 and again.get_json()["applied"] is False
    assert users.balance(user["user_id"]) == 70


def test_a_retry_is_answered_from_the_ledger_even_when_the_balance_no_longer_covers_it(client, users):
    user = users.new(credits=50)
    reference = _ref()
    assert _debit(client, user["user_id"], 50, reference).get_json()["applied"] is True
    again = _debit(client, user["user_id"], 50, reference)
    assert again.status_code == 200 and again.get_json()["applied"] is False


def test_a_reference_reused_for_another_amount_user_or_direction_is_409(client, users):
    user, other = users.new(credits=100), users.new(credits=100)
    reference = _ref()
    assert _debit(client, user["user_id"], 30, reference).status_code == 200
    for resp in (_debit(client, user["user_id"], 31, reference), _debit(client, other["user_id"], 30, reference),
                 client.post(CREDIT, json={"user_id": user["user_id"], "amount": 30, "reference": reference,
                                           "reason": "refund"})):
        assert resp.status_code == 409
        assert resp.get_json()["error"]["code"] == "REFERENCE_CONFLICT"
    assert users.balance(user["user_id"]) == 70 and users.balance(other["user_id"]) == 100


def test_a_debit_beyond_the_balance_is_402_and_leaves_no_trace(client, users):
    user = users.new(credits=20)
    reference = _ref()
    resp = _debit(client, user["user_id"], 21, reference)
    assert resp.status_code == 402
    assert resp.get_json()["error"]["code"] == "INSUFFICIENT_CREDITS"
    assert users.balance(user["user_id"]) == 20
    assert client.get(LEDGER, query_string={"reference": reference}).get_json()["entries"] == []
    # The reference was not used up by the refusal.
    users.client.post(CREDIT, json={"user_id": user["user_id"], "amount": 1, "reference": _ref(), "reason": "t"})
    assert _debit(client, user["user_id"], 21, reference).get_json()["applied"] is True


@pytest.mark.parametrize("amount", [0, -5, "5", 1.5, 5.0, True, None, 10**13])
def test_the_amount_must_be_a_positive_integer(client, users, amount):
    user = users.new(credits=100)
    for path in (DEBIT, CREDIT):
        resp = client.post(path, json={"user_id": user["user_id"], "amount": amount, "reference": _ref(),
                                       "reason": "x"})
        assert resp.status_code == 400
        error = resp.get_json()["error"]
        detail = error["details"][0]
        # A zero debit is a gift's confirmation and needs every party's code: said of the whole body.
        assert error["code"] == "INVALID_INPUT" and (detail["field"] == "amount" or (
            amount == 0 and path == DEBIT and "amount must be greater than 0" in detail["message"]))
    assert users.balance(user["user_id"]) == 100


@pytest.mark.parametrize("missing", ["user_id", "reference", "reason"])
def test_user_reference_and_reason_are_required(client, users, missing):
    body = {"user_id": users.new()["user_id"], "amount": 1, "reference": _ref(), "reason": "x"}
    del body[missing]
    resp = client.post(CREDIT, json=body)
    assert resp.status_code == 400 and resp.get_json()["error"]["details"][0]["field"] == missing


def test_debits_and_credits_for_an_unknown_user_are_404(client):
    for path in (DEBIT, CREDIT):
        resp = client.post(path, json={"user_id": str(uuid.uuid4()), "amount": 1, "reference": _ref(),
                                       "reason": "x"})
        assert resp.status_code == 404
        assert resp.get_json()["error"]["code"] == "USER_NOT_FOUND"


def test_a_credit_adds_credits_once_per_reference(client, users):
    user = users.new()
    reference = f"order:{uuid.uuid4()}:refund"
    body = {"user_id": user["user_id"], "amount": 50, "reference": reference, "reason": "refund"}
    first = client.post(CREDIT, json=body).get_json()
    assert (first["amount"], first["balance"], first["applied"]) == (50, 50, True)
    assert client.post(CREDIT, json=body).get_json() == {**first, "applied": False}
    assert users.balance(user["user_id"]) == 50


def test_the_ledger_lists_a_users_entries_newest_first(client, users):
    user = users.new(credits=100)
    references = [_ref() for _ in range(3)]
    for reference in references:
        _debit(client, user["user_id"], 10, reference)
    resp = client.get(LEDGER, query_string={"user_id": user["user_id"], "limit": 3})
    entries = resp.get_json()["entries"]
    assert [e["reference"] for e in entries] == references[::-1]
    assert [e["balance_after"] for e in entries] == [70, 80, 90]
    assert client.get(LEDGER).status_code == 400


def test_fifty_concurrent_debits_against_a_balance_for_ten_let_exactly_ten_through(client, users):
    user = users.new(credits=10 * 7)
    seen_balances, done = [], threading.Event()

    def watch():
        while not done.is_set():
            seen_balances.append(users.balance(user["user_id"]))

    def buy(_):
        return _debit(users.clone(client), user["user_id"], 7, _ref()).status_code

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(buy, range(50)))
    finally:
        done.set()
        watcher.join()
    assert statuses.count(200) == 10 and statuses.count(402) == 40
    assert users.balance(user["user_id"]) == 0
    assert min(seen_balances) >= 0
    assert users.ledger_sum(user["user_id"]) == 0
    debits = users.sql("SELECT count(*) FROM credit_ledger WHERE user_id = :u AND amount < 0", {"u": user["user_id"]})
    assert debits[0][0] == 10


def test_concurrent_retries_of_one_debit_apply_it_once(client, users):
    user = users.new(credits=100)
    reference = _ref()

    def pay(_):
        resp = _debit(users.clone(client), user["user_id"], 40, reference)
        return resp.status_code, resp.get_json()["applied"]

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(pay, range(20)))
    assert all(status == 200 for status, _ in results)
    assert sum(applied for _, applied in results) == 1
    assert users.balance(user["user_id"]) == 60


def test_every_balance_equals_the_sum_of_its_ledger_entries(users):
    users.new(credits=5)
    mismatches = users.sql("""
        SELECT u.user_id FROM users u LEFT JOIN credit_ledger l ON l.user_id = u.user_id
        GROUP BY u.user_id, u.credit_balance, u.pending_credits
        HAVING u.credit_balance <> coalesce(sum(l.amount) FILTER (WHERE l.account = 'spendable'), 0)
            OR u.pending_credits <> coalesce(sum(l.amount) FILTER (WHERE l.account = 'pending'), 0)""")
    assert mismatches == []
    assert users.sql("SELECT count(*) FROM credit_ledger WHERE balance_after IS NULL")[0][0] == 0
