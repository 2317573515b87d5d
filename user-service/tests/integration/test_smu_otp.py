"""OTP_PROVIDER=smu against a local stand-in of the SMU OTP API (the only fake allowed: a third party)."""
import json
import uuid

import pytest

SEND, VERIFY, DEBIT = "/internal/otp/send", "/internal/otp/verify", "/internal/credits/debit"
API_KEY = "smu-test-key"


class SmuStandIn:
    """Keeps one code per phone, like the SMU API: a new send replaces it, a good verify consumes it."""

    def __init__(self, stand_in):
        self.codes, self.counter = {}, 0
        self.server = stand_in(self.handle)
        self.url = self.server.url

    def handle(self, method, path, headers, body):
        if headers.get("X-API-Key") != API_KEY:
            return 401, {"success": False, "message": "bad key"}
        data = json.loads(body)
        if path == "/sendOTP":
            self.counter += 1
            self.codes[data["phone"]] = f"{(314159 + self.counter * 7919) % 10**6:06d}"
            return 200, {"success": True}
        if path == "/verifyOTP":
            if self.codes.get(data["phone"]) == data["otp"]:
                del self.codes[data["phone"]]
                return 200, {"success": True}
            return 400, {"success": False, "message": "invalid otp"}
        return 404, {"message": "not found"}

    def calls(self, path):
        return [json.loads(r["body"]) for r in self.server.requests if r["path"] == path]


@pytest.fixture
def smu(stand_in):
    return SmuStandIn(stand_in)


@pytest.fixture
def smu_client(make_client, smu):
    return make_client(otp_provider="smu", smu_otp_base_url=smu.url, smu_otp_api_key=API_KEY)


def _purpose():
    return f"transfer:{uuid.uuid4()}"


def _verify(client, user, purpose, code):
    return client.post(VERIFY, json={"user_id": user["user_id"], "purpose": purpose, "code": code})


def test_a_send_posts_the_users_phone_with_the_api_key_and_writes_no_outbox_row(smu_client, smu, users):
    user = users.new()
    resp = smu_client.post(SEND, json={"user_id": user["user_id"], "purpose": _purpose()})
    assert resp.status_code == 202
    assert smu.calls("/sendOTP") == [{"phone": user["phone"]}]
    assert smu.server.requests[0]["headers"]["X-API-Key"] == API_KEY
    assert users.outbox(user["phone"]) == []
    (code_hash,), = users.sql("SELECT code_hash FROM otp_codes WHERE user_id = :u", {"u": user["user_id"]})
    assert code_hash is None


def test_the_right_code_is_accepted_once_and_wrong_codes_count_toward_the_lock(smu_client, smu, users):
    user = users.new()
    purpose = _purpose()
    smu_client.post(SEND, json={"user_id": user["user_id"], "purpose": purpose})
    code = smu.codes[user["phone"]]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert _verify(smu_client, user, purpose, wrong).status_code == 403
    assert smu.calls("/verifyOTP") == [{"phone": user["phone"], "otp": wrong}]
    assert _verify(smu_client, user, purpose, code).status_code == 200
    # Single use is ours to enforce, whatever the provider would say.
    smu.codes[user["phone"]] = code
    assert _verify(smu_client, user, purpose, code).status_code == 403
    (attempts, used), = users.sql("SELECT attempts, used_at IS NOT NULL FROM otp_codes WHERE user_id = :u",
                                  {"u": user["user_id"]})
    assert (attempts, used) == (1, True)


def test_a_locked_code_is_refused_without_asking_the_provider(smu_client, smu, users):
    user = users.new()
    purpose = _purpose()
    smu_client.post(SEND, json={"user_id": user["user_id"], "purpose": purpose})
    code = smu.codes[user["phone"]]
    for _ in range(5):
        assert _verify(smu_client, user, purpose, f"{(int(code) + 1) % 10**6:06d}").status_code == 403
    assert _verify(smu_client, user, purpose, code).status_code == 429
    assert len(smu.calls("/verifyOTP")) == 5


def test_a_code_sent_for_one_purpose_is_refused_for_another(smu_client, smu, users):
    # SMU keeps one code per phone, so the second send retires the first purpose's code on our side.
    user = users.new()
    first, second = _purpose(), _purpose()
    smu_client.post(SEND, json={"user_id": user["user_id"], "purpose": first})
    smu_client.post(SEND, json={"user_id": user["user_id"], "purpose": second})
    code = smu.codes[user["phone"]]
    assert _verify(smu_client, user, first, code).status_code == 403
    assert _verify(smu_client, user, second, code).status_code == 200


def test_a_flagged_debit_works_through_the_smu_provider(smu_client, smu, users):
    user = users.new(credits=100, flagged=True)
    purpose = f"order:{uuid.uuid4()}"
    body = {"user_id": user["user_id"], "amount": 25, "reference": f"{purpose}:debit", "reason": "ticket",
            "otp_purpose": purpose}
    assert smu_client.post(DEBIT, json=body).status_code == 428
    resp = smu_client.post(DEBIT, json={**body, "otp_code": smu.codes[user["phone"]]})
    assert resp.status_code == 200 and resp.get_json()["balance"] == 75


def test_an_unreachable_provider_is_503_and_the_send_is_not_counted(make_client, closed_port_url, users):
    client = make_client(otp_provider="smu", smu_otp_base_url=closed_port_url, smu_otp_api_key=API_KEY)
    user = users.new()
    resp = client.post(SEND, json={"user_id": user["user_id"], "purpose": _purpose()})
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "OTP_PROVIDER_UNAVAILABLE"
    assert users.sql("SELECT count(*) FROM otp_codes WHERE user_id = :u", {"u": user["user_id"]})[0][0] == 0


def test_a_rejected_api_key_is_503_not_the_users_fault(make_client, smu, users):
    client = make_client(otp_provider="smu", smu_otp_base_url=smu.url, smu_otp_api_key="wrong-key")
    user = users.new()
    resp = client.post(SEND, json={"user_id": user["user_id"], "purpose": _purpose()})
    assert resp.status_code == 503
