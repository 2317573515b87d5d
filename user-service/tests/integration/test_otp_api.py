import time
import uuid
from concurrent.futures import ThreadPoolExecutor

DEBIT, SEND, VERIFY = "/internal/credits/debit", "/internal/otp/send", "/internal/otp/verify"


def _purpose() -> str:
    return f"order:{uuid.uuid4()}"


def _debit(client, user, amount, reference, purpose, code=None):
    body = {"user_id": user["user_id"], "amount": amount, "reference": reference, "reason": "ticket purchase",
            "otp_purpose": purpose}
    if code is not None:
        body["otp_code"] = code
    return client.post(DEBIT, json=body)


def _send(client, user, purpose):
    return client.post(SEND, json={"user_id": user["user_id"], "purpose": purpose})


def _verify(client, user, purpose, code):
    return client.post(VERIFY, json={"user_id": user["user_id"], "purpose": purpose, "code": code})


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_flagged_users_debit_without_a_code_is_428_and_a_code_goes_to_the_sms_outbox(client, users):
    user = users.new(credits=100, flagged=True)
    purpose, reference = _purpose(), f"{uuid.uuid4()}:debit"
    resp = _debit(client, user, 40, reference, purpose)
    assert resp.status_code == 428
    error = resp.get_json()["error"]
    assert error["code"] == "OTP_REQUIRED" and error["details"]["otp_purpose"] == purpose
    [body] = users.outbox(user["phone"])
    assert body == f"TicketRemaster code {users.latest_code(user['phone'])} ({purpose}). It expires in 5 minutes."
    assert users.balance(user["user_id"]) == 100
    assert users.sql("SELECT count(*) FROM credit_ledger WHERE reference = :r", {"r": reference})[0][0] == 0


def test_codes_are_stored_only_as_hashes(client, users):
    user = users.new(flagged=True)
    purpose = _purpose()
    assert _send(client, user, purpose).status_code == 202
    code = users.latest_code(user["phone"])
    rows = users.sql("SELECT otp_codes::text FROM otp_codes WHERE user_id = :u", {"u": user["user_id"]})
    assert len(rows) == 1 and code not in rows[0][0]


def test_the_right_code_lets_the_debit_through_once_and_cannot_be_replayed(client, users):
    user = users.new(credits=100, flagged=True)
    purpose, reference = _purpose(), f"{uuid.uuid4()}:debit"
    _debit(client, user, 40, reference, purpose)
    code = users.latest_code(user["phone"])
    resp = _debit(client, user, 40, reference, purpose, code)
    assert resp.status_code == 200 and resp.get_json()["applied"] is True
    assert users.balance(user["user_id"]) == 60
    # A retry of the applied debit is answered from the ledger and asks for no code.
    again = _debit(client, user, 40, reference, purpose)
    assert again.status_code == 200 and again.get_json()["applied"] is False
    # The used code does not pay for anything else.
    replay = _debit(client, user, 40, f"{uuid.uuid4()}:debit", purpose, code)
    assert replay.status_code == 403 and replay.get_json()["error"]["code"] == "OTP_INVALID"
    assert _verify(client, user, purpose, code).status_code == 403
    assert users.balance(user["user_id"]) == 60


def test_a_wrong_code_is_403_and_debits_nothing(client, users):
    user = users.new(credits=100, flagged=True)
    purpose, reference = _purpose(), f"{uuid.uuid4()}:debit"
    _debit(client, user, 40, reference, purpose)
    resp = _debit(client, user, 40, reference, purpose, _wrong(users.latest_code(user["phone"])))
    assert resp.status_code == 403
    assert resp.get_json()["error"] == {"code": "OTP_INVALID", "message": "wrong code; 4 tries left"}
    assert users.balance(user["user_id"]) == 100


def test_a_user_who_is_not_flagged_is_debited_without_a_code(client, users):
    user = users.new(credits=100)
    resp = _debit(client, user, 40, f"{uuid.uuid4()}:debit", _purpose())
    assert resp.status_code == 200 and resp.get_json()["applied"] is True
    assert users.outbox(user["phone"]) == []


def test_an_expired_code_is_410(make_client, users):
    client = make_client(otp_ttl_seconds=1)
    user = users.new(credits=100, flagged=True)
    purpose, reference = _purpose(), f"{uuid.uuid4()}:debit"
    _debit(client, user, 40, reference, purpose)
    assert "It expires in 1 second." in users.outbox(user["phone"])[0]
    time.sleep(1.1)
    resp = _debit(client, user, 40, reference, purpose, users.latest_code(user["phone"]))
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "OTP_EXPIRED"
    assert users.balance(user["user_id"]) == 100


def test_a_code_for_one_purpose_is_refused_for_another(client, users):
    user = users.new(flagged=True)
    transfer_a, transfer_b = f"transfer:{uuid.uuid4()}", f"transfer:{uuid.uuid4()}"
    _send(client, user, transfer_a)
    code_a = users.latest_code(user["phone"])
    _send(client, user, transfer_b)
    code_b = users.latest_code(user["phone"])
    assert _verify(client, user, transfer_b, code_a).status_code == 403
    assert _verify(client, user, transfer_a, code_b).status_code == 403
    assert _verify(client, user, transfer_a, code_a).status_code == 200
    assert _verify(client, user, transfer_b, code_b).status_code == 200


def test_another_users_code_is_refused(client, users):
    alice, bob = users.new(), users.new()
    purpose = f"transfer:{uuid.uuid4()}"
    _send(client, alice, purpose)
    _send(client, bob, purpose)
    assert _verify(client, bob, purpose, users.latest_code(alice["phone"])).status_code == 403


def test_after_five_wrong_codes_even_the_right_one_is_429_locked(client, users):
    user = users.new(credits=100, flagged=True)
    purpose, reference = _purpose(), f"{uuid.uuid4()}:debit"
    _debit(client, user, 40, reference, purpose)
    code = users.latest_code(user["phone"])
    for left in (4, 3, 2, 1, 0):
        resp = _debit(client, user, 40, reference, purpose, _wrong(code))
        assert resp.status_code == 403 and str(left) in resp.get_json()["error"]["message"]
    for attempt in (code, _wrong(code)):
        resp = _debit(client, user, 40, reference, purpose, attempt)
        assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "OTP_LOCKED"
        assert _verify(client, user, purpose, attempt).status_code == 429
    assert users.balance(user["user_id"]) == 100


def test_a_thousand_guesses_get_five_tries_and_no_code_accepted(client, users):
    user = users.new(flagged=True)
    purpose = _purpose()
    _send(client, user, purpose)
    code = users.latest_code(user["phone"])
    guesses = [f"{n:06d}" for n in range(1001) if f"{n:06d}" != code][:1000]
    statuses = [_verify(client, user, purpose, guess).status_code for guess in guesses]
    assert statuses.count(403) == 5 and statuses.count(429) == len(guesses) - 5 and 200 not in statuses


def test_concurrent_uses_of_one_code_succeed_once(client, users):
    user = users.new(flagged=True)
    purpose = _purpose()
    _send(client, user, purpose)
    code = users.latest_code(user["phone"])
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda _: _verify(users.clone(client), user, purpose, code).status_code, range(10)))
    assert sorted(statuses) == [200] + [403] * 9


def test_a_new_code_for_the_same_purpose_replaces_the_previous_one(client, users):
    user = users.new(flagged=True)
    purpose = _purpose()
    _send(client, user, purpose)
    old = users.latest_code(user["phone"])
    _send(client, user, purpose)
    new = users.latest_code(user["phone"])
    if old != new:
        assert _verify(client, user, purpose, old).status_code == 403
    assert _verify(client, user, purpose, new).status_code == 200


def test_sends_are_capped_per_user_per_hour(client, users, settings):
    user, other = users.new(), users.new()
    for _ in range(settings.otp_sends_per_hour):
        resp = _send(client, user, _purpose())
        assert resp.status_code == 202 and resp.get_json()["sent"] is True
    resp = _send(client, user, _purpose())
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "OTP_SEND_LIMIT"
    assert 3500 <= int(resp.headers["Retry-After"]) <= 3601
    assert len(users.outbox(user["phone"])) == settings.otp_sends_per_hour
    # A flagged debit asking for a code is held to the same cap.
    users.sql("UPDATE users SET is_flagged = true WHERE user_id = :u", {"u": user["user_id"]})
    resp = _debit(client, user, 1, f"{uuid.uuid4()}:debit", _purpose())
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "OTP_SEND_LIMIT"
    assert _send(client, other, _purpose()).status_code == 202


def test_concurrent_sends_never_exceed_the_cap(client, users, settings):
    user = users.new()
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda _: _send(users.clone(client), user, _purpose()).status_code, range(20)))
    assert statuses.count(202) == settings.otp_sends_per_hour
    assert statuses.count(429) == 20 - settings.otp_sends_per_hour


def test_a_debit_refused_for_lack_of_credits_leaves_the_code_usable(client, users):
    user = users.new(credits=10, flagged=True)
    purpose, reference = _purpose(), f"{uuid.uuid4()}:debit"
    _debit(client, user, 40, reference, purpose)
    code = users.latest_code(user["phone"])
    assert _debit(client, user, 40, reference, purpose, code).status_code == 402
    client.post("/internal/credits/credit", json={"user_id": user["user_id"], "amount": 30,
                                                  "reference": f"topup:{uuid.uuid4()}", "reason": "top-up"})
    resp = _debit(client, user, 40, reference, purpose, code)
    assert resp.status_code == 200 and resp.get_json()["balance"] == 0


def test_verify_without_a_sent_code_is_403(client, users):
    user = users.new()
    resp = _verify(client, user, _purpose(), "123456")
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "OTP_INVALID"


def test_otp_requests_are_validated(client, users):
    user = users.new()
    for path, body in ((SEND, {"user_id": user["user_id"], "purpose": "no spaces allowed"}),
                       (SEND, {"user_id": "nope", "purpose": _purpose()}),
                       (VERIFY, {"user_id": user["user_id"], "purpose": _purpose(), "code": "12345"}),
                       (VERIFY, {"user_id": user["user_id"], "purpose": _purpose(), "code": 123456}),
                       (DEBIT, {"user_id": user["user_id"], "amount": 1, "reference": "r", "reason": "x",
                                "otp_purpose": _purpose(), "otp_code": "abcdef"})):
        resp = client.post(path, json=body)
        assert resp.status_code == 400, (path, body)
    for path, body in ((SEND, {"user_id": str(uuid.uuid4()), "purpose": _purpose()}),
                       (VERIFY, {"user_id": str(uuid.uuid4()), "purpose": _purpose(), "code": "123456"})):
        resp = client.post(path, json=body)
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "USER_NOT_FOUND"


def test_concurrent_twins_of_a_flagged_debit_are_applied_once_and_all_answered(client, users):
    user = users.new(credits=100, flagged=True)
    purpose, reference = _purpose(), f"{uuid.uuid4()}:debit"
    _debit(client, user, 40, reference, purpose)
    code = users.latest_code(user["phone"])

    def pay(_):
        resp = _debit(users.clone(client), user, 40, reference, purpose, code)
        return resp.status_code, resp.get_json().get("applied")

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(pay, range(10)))
    assert [status for status, _ in results] == [200] * 10
    assert sum(applied for _, applied in results) == 1
    assert users.balance(user["user_id"]) == 60
