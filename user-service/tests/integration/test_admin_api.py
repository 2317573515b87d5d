"""The admin-facing routes: flags, grants with their admin, a user's ledger, and the audit trail of admin actions."""
import uuid

import pytest

from orchestrator_service.adapters.services import UserService
from trcommon.http_client import ServiceClient
from trcommon.testing import served_over_http
from trcontracts import users as contract


def _id() -> str:
    return str(uuid.uuid4())


def _grant(client, user_id, amount=100, reference=None, actor=None, reason="goodwill"):
    body = {"user_id": user_id, "amount": amount, "reference": reference or f"grant:{_id()}:{_id()}",
            "reason": reason}
    if actor is not None:
        body["actor_user_id"] = actor
    return client.post("/internal/credits/credit", json=body)


def _action(**overrides) -> dict:
    return {"action_id": _id(), "admin_id": _id(), "action": "user.flag", "target_type": "user",
            "target_id": _id(), "request": {"flagged": True}, "before": {"is_flagged": False}, **overrides}


def _count_actions(users, action_id) -> int:
    return users.sql("SELECT count(*) FROM admin_actions WHERE action_id = :a", {"a": action_id})[0][0]


# --- flags -------------------------------------------------------------------------------------------------------

def test_flagging_a_user_sets_is_flagged_and_a_repeat_changes_nothing(client, users):
    user = users.new()
    first = client.post(f"/internal/users/{user['user_id']}/flag", json={"flagged": True})
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["is_flagged"] is True
    again = client.post(f"/internal/users/{user['user_id']}/flag", json={"flagged": True})
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert client.get(f"/internal/users/{user['user_id']}").get_json()["is_flagged"] is True
    cleared = client.post(f"/internal/users/{user['user_id']}/flag", json={"flagged": False})
    assert cleared.status_code == 200 and cleared.get_json()["is_flagged"] is False


def test_an_admin_can_be_flagged_too(client, users):
    user = users.new()
    users.sql("UPDATE users SET role = 'admin' WHERE user_id = :u", {"u": user["user_id"]})
    resp = client.post(f"/internal/users/{user['user_id']}/flag", json={"flagged": True})
    assert resp.status_code == 200 and resp.get_json()["is_flagged"] is True


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_flagging_an_unknown_user_is_404(client, user_id):
    resp = client.post(f"/internal/users/{user_id}/flag", json={"flagged": True})
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "USER_NOT_FOUND"


@pytest.mark.parametrize("body", [{}, {"flagged": "yes"}, {"flagged": 1}, {"flagged": None}])
def test_a_flag_that_is_not_a_boolean_is_refused_and_changes_nothing(client, users, body):
    user = users.new()
    resp = client.post(f"/internal/users/{user['user_id']}/flag", json=body)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_INPUT"
    assert client.get(f"/internal/users/{user['user_id']}").get_json()["is_flagged"] is False


# --- grants and the ledger ---------------------------------------------------------------------------------------

def test_a_grant_stores_its_admin_on_the_ledger_row_and_is_applied_once(client, users):
    user, admin = users.new(), _id()
    reference = f"grant:{admin}:{_id()}"
    first = _grant(client, user["user_id"], 250, reference, admin)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["applied"] is True and first.get_json()["balance"] == 250
    for _ in range(2):
        again = _grant(client, user["user_id"], 250, reference, admin)
        assert again.status_code == 200 and again.get_json()["applied"] is False
    assert users.balance(user["user_id"]) == 250
    entries = client.get(f"/internal/credits/ledger?user_id={user['user_id']}").get_json()["entries"]
    assert [(e["reference"], e["amount"], e["actor_user_id"], e["reason"]) for e in entries] == [
        (reference, 250, admin, "goodwill")]


def test_a_grant_reference_reused_by_another_admin_is_a_conflict(client, users):
    user = users.new()
    reference = f"grant:{_id()}:{_id()}"
    assert _grant(client, user["user_id"], 100, reference, _id()).status_code == 200
    resp = _grant(client, user["user_id"], 100, reference, _id())
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "REFERENCE_CONFLICT"
    assert users.balance(user["user_id"]) == 100


def test_a_credit_without_an_actor_has_none(client, users):
    user = users.new()
    assert _grant(client, user["user_id"]).status_code == 200
    entries = client.get(f"/internal/credits/ledger?user_id={user['user_id']}").get_json()["entries"]
    assert entries[0]["actor_user_id"] is None


@pytest.mark.parametrize("actor", ["not-a-uuid", 5, ""])
def test_a_grant_with_a_malformed_actor_is_refused(client, users, actor):
    user = users.new()
    assert _grant(client, user["user_id"], actor=actor).status_code == 400
    assert users.balance(user["user_id"]) == 0


def test_a_debit_takes_no_actor(client, users):
    user = users.new(credits=100)
    resp = client.post("/internal/credits/debit", json={
        "user_id": user["user_id"], "amount": 10, "reference": f"t:{_id()}", "reason": "x", "actor_user_id": _id()})
    # An unknown field is ignored, as everywhere in the internal API; the debit row names no admin.
    assert resp.status_code == 200
    entries = client.get(f"/internal/credits/ledger?user_id={user['user_id']}").get_json()["entries"]
    assert all(e["actor_user_id"] is None for e in entries)


def test_a_users_ledger_pages_newest_first_without_gaps_or_repeats(client, users):
    user = users.new()
    references = []
    for i in range(7):
        references.append(f"grant:{_id()}:{i}")
        assert _grant(client, user["user_id"], 10 + i, references[-1], _id()).status_code == 200
    whole = client.get(f"/internal/credits/ledger?user_id={user['user_id']}&limit=50").get_json()["entries"]
    assert [e["reference"] for e in whole] == references[::-1]
    paged = []
    for offset in range(0, 8, 3):
        page = client.get(f"/internal/credits/ledger?user_id={user['user_id']}&limit=3&offset={offset}")
        paged += page.get_json()["entries"]
    assert paged == whole


# --- the admin audit trail ---------------------------------------------------------------------------------------

def test_recording_an_admin_action_answers_201_pending_and_a_repeat_200_with_the_stored_record(client, users):
    body = _action()
    first = client.post("/internal/admin-actions", json=body)
    assert first.status_code == 201, first.get_json()
    record = first.get_json()
    assert record["outcome"] == "PENDING" and record["finished_at"] is None and record["after"] is None
    assert {k: record[k] for k in body} == body
    repeat = client.post("/internal/admin-actions", json={**body, "action": "event.cancel", "request": {"x": 1}})
    assert repeat.status_code == 200 and repeat.get_json() == record
    assert _count_actions(users, body["action_id"]) == 1


def test_finishing_an_action_records_its_outcome_once_and_the_first_finish_wins(client):
    body = _action()
    client.post("/internal/admin-actions", json=body)
    url = f"/internal/admin-actions/{body['action_id']}/finish"
    done = client.post(url, json={"outcome": "SUCCEEDED", "after": {"is_flagged": True}})
    assert done.status_code == 200, done.get_json()
    record = done.get_json()
    assert record["outcome"] == "SUCCEEDED" and record["after"] == {"is_flagged": True}
    assert record["finished_at"] is not None and record["error_code"] is None
    late = client.post(url, json={"outcome": "FAILED", "error_code": "USER_NOT_FOUND"})
    assert late.status_code == 200 and late.get_json() == record


def test_a_failed_action_keeps_its_error_code(client):
    body = _action()
    client.post("/internal/admin-actions", json=body)
    resp = client.post(f"/internal/admin-actions/{body['action_id']}/finish",
                       json={"outcome": "FAILED", "error_code": "EVENT_NOT_FOUND"})
    assert resp.status_code == 200
    assert (resp.get_json()["outcome"], resp.get_json()["error_code"]) == ("FAILED", "EVENT_NOT_FOUND")


@pytest.mark.parametrize("action_id", [str(uuid.uuid4()), "nope"])
def test_finishing_an_unknown_action_is_404(client, action_id):
    resp = client.post(f"/internal/admin-actions/{action_id}/finish", json={"outcome": "SUCCEEDED"})
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "ADMIN_ACTION_NOT_FOUND"


@pytest.mark.parametrize("finish", [
    {"outcome": "PENDING"}, {"outcome": "DONE"}, {}, {"outcome": "SUCCEEDED", "error_code": "X"},
    {"outcome": "FAILED", "error_code": ""}, {"outcome": "FAILED", "error_code": "x" * 65},
    {"outcome": "SUCCEEDED", "after": [1, 2]},
])
def test_a_bad_finish_is_refused_and_leaves_the_action_pending(client, finish):
    body = _action()
    client.post("/internal/admin-actions", json=body)
    resp = client.post(f"/internal/admin-actions/{body['action_id']}/finish", json=finish)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_INPUT"
    listed = client.get(f"/internal/admin-actions?target_id={body['target_id']}").get_json()["actions"]
    assert [a["outcome"] for a in listed] == ["PENDING"]


@pytest.mark.parametrize("change", [
    {"action_id": "nope"}, {"admin_id": "x"}, {"action": ""}, {"action": "a" * 65}, {"target_type": ""},
    {"target_type": "t" * 33}, {"target_id": ""}, {"target_id": "i" * 201}, {"request": None}, {"request": []},
    {"before": "text"}, {"request": {"note": "a\x00b"}},
])
def test_a_bad_admin_action_is_refused_and_nothing_is_recorded(client, users, change):
    body = _action(**change)
    resp = client.post("/internal/admin-actions", json=body)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_INPUT", resp.get_json()
    if isinstance(body["action_id"], str) and len(body["action_id"]) == 36:
        assert _count_actions(users, body["action_id"]) == 0


def test_an_oversized_request_is_refused_and_nothing_is_recorded(client, users):
    body = _action(request={"blob": "x" * (contract.ADMIN_ACTION_JSON_MAX + 1)})
    resp = client.post("/internal/admin-actions", json=body)
    assert resp.status_code in (400, 413) and resp.get_json()["error"]["code"] in ("INVALID_INPUT",
                                                                                   "PAYLOAD_TOO_LARGE")
    assert _count_actions(users, body["action_id"]) == 0


def test_the_audit_trail_lists_newest_first_filtered_and_paged(client):
    admin, other_admin, target = _id(), _id(), _id()
    mine = [_action(admin_id=admin, target_id=target, action=f"user.grant{i}") for i in range(4)]
    theirs = _action(admin_id=other_admin, target_id=target, action="user.flag")
    for body in (*mine, theirs):
        assert client.post("/internal/admin-actions", json=body).status_code == 201

    def ids(query):
        resp = client.get(f"/internal/admin-actions?{query}")
        assert resp.status_code == 200, resp.get_json()
        return [a["action_id"] for a in resp.get_json()["actions"]]

    newest_first = [b["action_id"] for b in mine][::-1]
    assert ids(f"admin_id={admin}") == newest_first
    assert ids(f"target_type=user&target_id={target}") == [theirs["action_id"], *newest_first]
    assert ids(f"target_id={target}&action=user.flag") == [theirs["action_id"]]
    assert ids(f"admin_id={admin}&limit=3") + ids(f"admin_id={admin}&limit=3&offset=3") == newest_first
    assert ids(f"admin_id={_id()}") == []


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "offset=-1", "limit=x", "admin_id=nope",
                                   "target_type=" + "t" * 33, "target_id=a%00b", "action=%00", "target_type=%01"])
def test_a_bad_audit_trail_query_is_400(client, query):
    resp = client.get(f"/internal/admin-actions?{query}")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_INPUT"


@pytest.mark.parametrize("path", ["/internal/users/by-email?email=a%00b@example.com",
                                  "/internal/credits/ledger?reference=grant%00x"])
def test_a_query_with_a_control_character_is_400_not_a_database_error(client, path):
    resp = client.get(path)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_INPUT"


# --- the orchestrator's client -----------------------------------------------------------------------------------

@pytest.fixture
def user_service(client, settings):
    with served_over_http(client.application) as url:
        yield UserService(ServiceClient("user-service", url, settings.internal_service_token, 5.0))


def test_the_orchestrators_client_drives_every_admin_route(user_service, users):
    user, admin = users.new(), _id()
    assert user_service.set_flag(user["user_id"], True).is_flagged is True
    key = _id()
    change = user_service.grant(user["user_id"], 75, f"grant:{admin}:{key}", "compensation", admin)
    assert (change.applied, change.balance) == (True, 75)
    assert user_service.grant(user["user_id"], 75, f"grant:{admin}:{key}", "compensation", admin).applied is False
    ledger = user_service.user_ledger(user["user_id"], 10, 0)
    assert [(e.amount, e.actor_user_id) for e in ledger] == [(75, admin)]

    action_id = _id()
    recorded = user_service.record_admin_action({
        "action_id": action_id, "admin_id": admin, "action": "user.grant", "target_type": "user",
        "target_id": user["user_id"], "request": {"amount": 75}, "before": None})
    assert recorded.outcome == contract.AdminActionOutcome.PENDING
    assert user_service.record_admin_action({
        "action_id": action_id, "admin_id": admin, "action": "user.grant", "target_type": "user",
        "target_id": user["user_id"], "request": {"amount": 75}}) == recorded
    finished = user_service.finish_admin_action(action_id, "SUCCEEDED", after={"credit_balance": 75})
    assert finished.outcome == contract.AdminActionOutcome.SUCCEEDED and finished.finished_at is not None
    assert user_service.finish_admin_action(action_id, "FAILED", error_code="X") == finished
    assert [a.action_id for a in user_service.admin_actions(admin_id=admin)] == [action_id]
    assert user_service.admin_actions(target_type="user", target_id=user["user_id"], limit=1) == [finished]
    assert user_service.notifications(user["user_id"], 10, 0) == []
