"""Pending credits: a seller's transfer proceeds, credited to a second balance and released to the spendable one
when the dispute window ends, or cancelled by a reversal (docs/design.md, money)."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

DEBIT, CREDIT = "/internal/credits/debit", "/internal/credits/credit"
RELEASE, LEDGER = "/internal/credits/release", "/internal/credits/ledger"


def _transfer() -> str:
    return f"transfer:{uuid.uuid4()}"


def _credit(client, user_id, amount, reference, account="pending"):
    return client.post(CREDIT, json={"user_id": user_id, "amount": amount, "reference": reference,
                                     "reason": "transfer proceeds", "account": account})


def _debit(client, user_id, amount, reference, account="pending"):
    return client.post(DEBIT, json={"user_id": user_id, "amount": amount, "reference": reference,
                                    "reason": "transfer reversed", "account": account})


def _release(client, user_id, amount, reference):
    return client.post(RELEASE, json={"user_id": user_id, "amount": amount, "reference": reference})


def _entries(client, reference):
    return client.get(LEDGER, query_string={"reference": reference}).get_json()["entries"]


def _assert_sums_hold(users, user_id):
    assert users.balance(user_id) == users.ledger_sum(user_id, "spendable")
    assert users.pending(user_id) == users.ledger_sum(user_id, "pending")


def test_a_pending_credit_adds_to_the_pending_credits_only(client, users):
    seller = users.new(credits=10)
    reference = f"{_transfer()}:credit"
    resp = _credit(client, seller["user_id"], 80, reference)
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["amount"], body["balance"], body["account"], body["applied"]) == (80, 80, "pending", True)
    profile = client.get(f"/internal/users/{seller['user_id']}").get_json()
    assert (profile["credit_balance"], profile["pending_credits"]) == (10, 80)
    assert [(e["amount"], e["balance_after"], e["account"]) for e in _entries(client, reference)] == \
        [(80, 80, "pending")]
    assert _credit(client, seller["user_id"], 80, reference).get_json() == {**body, "applied": False}
    assert users.pending(seller["user_id"]) == 80
    _assert_sums_hold(users, seller["user_id"])


def test_a_release_moves_pending_credits_to_spendable_once_as_two_ledger_rows(client, users):
    seller = users.new(credits=10)
    transfer = _transfer()
    _credit(client, seller["user_id"], 80, f"{transfer}:credit")
    reference = f"{transfer}:release"
    resp = _release(client, seller["user_id"], 80, reference)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body == {"entry_id": body["entry_id"], "user_id": seller["user_id"], "amount": 80, "balance": 90,
                    "reference": reference, "account": "spendable", "applied": True}
    [pending_row] = _entries(client, f"{reference}:pending")
    assert (pending_row["amount"], pending_row["balance_after"], pending_row["account"]) == (-80, 0, "pending")
    for _ in range(3):
        again = _release(client, seller["user_id"], 80, reference)
        assert again.status_code == 200 and again.get_json() == {**body, "applied": False}
    profile = client.get(f"/internal/users/{seller['user_id']}").get_json()
    assert (profile["credit_balance"], profile["pending_credits"]) == (90, 0)
    _assert_sums_hold(users, seller["user_id"])


def test_ten_concurrent_releases_of_one_reference_apply_it_once(client, users):
    seller = users.new()
    _credit(client, seller["user_id"], 100, f"{_transfer()}:credit")
    reference = f"{_transfer()}:release"

    def release(_):
        resp = _release(users.clone(client), seller["user_id"], 60, reference)
        return resp.status_code, resp.get_json().get("applied")

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(release, range(10)))
    assert [status for status, _ in results] == [200] * 10
    assert sum(applied for _, applied in results) == 1
    assert (users.balance(seller["user_id"]), users.pending(seller["user_id"])) == (60, 40)
    rows = users.sql("SELECT reference FROM credit_ledger WHERE reference LIKE :r ORDER BY reference",
                     {"r": f"{reference}%"})
    assert [r[0] for r in rows] == [reference, f"{reference}:pending"]
    _assert_sums_hold(users, seller["user_id"])


def test_a_release_beyond_the_pending_credits_is_402_and_changes_nothing(client, users):
    seller = users.new(credits=500)
    _credit(client, seller["user_id"], 30, f"{_transfer()}:credit")
    reference = f"{_transfer()}:release"
    resp = _release(client, seller["user_id"], 31, reference)
    assert resp.status_code == 402
    assert resp.get_json()["error"]["code"] == "INSUFFICIENT_PENDING_CREDITS"
    assert (users.balance(seller["user_id"]), users.pending(seller["user_id"])) == (500, 30)
    assert _entries(client, reference) == [] and _entries(client, f"{reference}:pending") == []
    # The refusal did not use the reference up.
    _credit(client, seller["user_id"], 1, f"{_transfer()}:credit")
    assert _release(client, seller["user_id"], 31, reference).get_json()["applied"] is True
    assert (users.balance(seller["user_id"]), users.pending(seller["user_id"])) == (531, 0)


def test_cancelling_pending_credits_takes_only_from_them_and_never_below_zero(client, users):
    seller = users.new(credits=500)
    transfer = _transfer()
    _credit(client, seller["user_id"], 40, f"{transfer}:credit")
    refused = _debit(client, seller["user_id"], 41, f"{transfer}:uncredit")
    assert refused.status_code == 402
    assert refused.get_json()["error"]["code"] == "INSUFFICIENT_PENDING_CREDITS"
    assert (users.balance(seller["user_id"]), users.pending(seller["user_id"])) == (500, 40)
    assert _entries(client, f"{transfer}:uncredit") == []
    resp = _debit(client, seller["user_id"], 40, f"{transfer}:uncredit")
    body = resp.get_json()
    assert (resp.status_code, body["amount"], body["balance"], body["account"]) == (200, -40, 0, "pending")
    assert (users.balance(seller["user_id"]), users.pending(seller["user_id"])) == (500, 0)
    _assert_sums_hold(users, seller["user_id"])


def test_a_release_racing_a_cancellation_of_the_same_proceeds_lets_exactly_one_through(client, users):
    seller = users.new()
    transfer = _transfer()
    _credit(client, seller["user_id"], 50, f"{transfer}:credit")

    def act(n):
        other = users.clone(client)
        if n % 2:
            return _release(other, seller["user_id"], 50, f"{transfer}:release:{n}").status_code
        return _debit(other, seller["user_id"], 50, f"{transfer}:uncredit:{n}").status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(act, range(10)))
    assert statuses.count(200) == 1 and statuses.count(402) == 9
    assert users.pending(seller["user_id"]) == 0
    assert users.balance(seller["user_id"]) in (0, 50)
    _assert_sums_hold(users, seller["user_id"])


def test_a_reference_reused_for_another_account_or_operation_is_409_and_changes_nothing(client, users):
    seller = users.new(credits=100)
    _credit(client, seller["user_id"], 100, f"{_transfer()}:credit")
    spent = f"{_transfer()}:credit"
    assert _credit(client, seller["user_id"], 20, spent, account="spendable").status_code == 200
    twin = f"{_transfer()}:release"
    assert _debit(client, seller["user_id"], 20, f"{twin}:pending").status_code == 200
    conflicts = (
        _credit(client, seller["user_id"], 20, spent),                   # the same change, another account
        _release(client, seller["user_id"], 20, spent),                  # a plain credit is not a release
        _release(client, seller["user_id"], 20, twin),                   # its pending row's reference is taken
        _debit(client, seller["user_id"], 20, f"{twin}:pending", account="spendable"),
    )
    for resp in conflicts:
        assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "REFERENCE_CONFLICT"
    assert (users.balance(seller["user_id"]), users.pending(seller["user_id"])) == (120, 80)
    assert _entries(client, twin) == []
    _assert_sums_hold(users, seller["user_id"])


@pytest.mark.parametrize("account", ["frozen", "", None, 1])
def test_the_account_is_spendable_or_pending(client, users, account):
    user = users.new()
    for path in (CREDIT, DEBIT):
        resp = client.post(path, json={"user_id": user["user_id"], "amount": 1, "reference": _transfer(),
                                       "reason": "x", "account": account})
        assert resp.status_code == 400 and resp.get_json()["error"]["details"][0]["field"] == "account"


def test_a_release_reference_leaves_room_for_its_pending_row(client, users):
    seller = users.new()
    _credit(client, seller["user_id"], 5, f"{_transfer()}:credit")
    longest = f"{_transfer()}:release:".ljust(192, "r")
    resp = _release(client, seller["user_id"], 5, longest + "r")
    assert resp.status_code == 400 and resp.get_json()["error"]["details"][0]["field"] == "reference"
    assert _release(client, seller["user_id"], 5, longest).status_code == 200
    assert len(_entries(client, f"{longest}:pending")) == 1


def test_a_release_for_an_unknown_user_is_404(client):
    resp = _release(client, str(uuid.uuid4()), 5, f"{_transfer()}:release")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "USER_NOT_FOUND"
