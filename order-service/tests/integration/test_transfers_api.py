"""The transfer routes through the Flask app against real PostgreSQL. Times are set with the database's own clock
(`now()` in SQL) where a test needs a deadline already passed."""
import logging
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

FIELDS = ("transfer_id", "seat_id", "event_id", "seller_user_id", "buyer_user_id", "amount", "face_value")


def iso(dt: datetime) -> str:
    return dt.isoformat()


def in_minutes(minutes: float) -> str:
    return iso(datetime.now(timezone.utc) + timedelta(minutes=minutes))


def transfer_body(**overrides) -> dict:
    body = {"transfer_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()),
            "seller_user_id": str(uuid.uuid4()), "buyer_user_id": str(uuid.uuid4()), "amount": 80,
            "face_value": 100, "expires_at": in_minutes(15)}
    body.update(overrides)
    return body


def new_transfer(client, **overrides) -> dict:
    resp = client.post("/internal/transfers", json=transfer_body(**overrides))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def path(transfer) -> str:
    return f"/internal/transfers/{transfer['transfer_id']}"


def transition(client, transfer, to, **fields):
    return client.post(f"{path(transfer)}/transition", json={"to": to, **fields})


def begin_confirm(client, transfer, user_id=None):
    return client.post(f"{path(transfer)}/begin-confirm", json={"user_id": user_id or transfer["buyer_user_id"]})


def begin_reverse(client, transfer):
    return client.post(f"{path(transfer)}/begin-reverse")


def mark_released(client, transfer):
    return client.post(f"{path(transfer)}/released")


def get(client, transfer) -> dict:
    resp = client.get(path(transfer))
    assert resp.status_code == 200
    return resp.get_json()


def error_code(resp) -> str:
    return resp.get_json()["error"]["code"]


def completed(client, release_at=None, **overrides) -> dict:
    """A transfer confirmed by its buyer and COMPLETED, its proceeds pending until `release_at`."""
    transfer = new_transfer(client, **overrides)
    assert begin_confirm(client, transfer).status_code == 200
    resp = transition(client, transfer, "COMPLETED", release_at=release_at or in_minutes(60))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def disputed(client, **overrides) -> dict:
    transfer = completed(client, **overrides)
    resp = transition(client, transfer, "DISPUTED", reason="the seat was not the one offered")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def sql(container, statement: str, **params):
    with container.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def lapse(container, transfer):
    """Its confirm deadline passed a minute ago, by the database clock."""
    sql(container, "UPDATE transfers SET expires_at = now() - interval '1 minute' WHERE transfer_id = :id",
        id=transfer["transfer_id"])


def make_quiet(container, transfer, minutes):
    sql(container, "UPDATE transfers SET updated_at = now() - make_interval(mins => :m) WHERE transfer_id = :id",
        m=minutes, id=transfer["transfer_id"])


# --- create ------------------------------------------------------------------------------------------------------

def test_create_transfer_returns_a_pending_transfer_at_its_first_step_with_201(client):
    body = transfer_body()
    resp = client.post("/internal/transfers", json=body)
    assert resp.status_code == 201
    transfer = resp.get_json()
    assert {k: transfer[k] for k in FIELDS} == {k: body[k] for k in FIELDS}
    assert (transfer["status"], transfer["step"]) == ("PENDING_OTP", "INITIATED")
    assert datetime.fromisoformat(transfer["expires_at"]) == datetime.fromisoformat(body["expires_at"])
    assert transfer["expires_at"].endswith("+00:00")
    assert all(transfer[k] is None for k in ("dispute_reason", "resolution", "release_at", "released_at",
                                             "completed_at", "failure_reason"))
    assert transfer["created_at"] == transfer["updated_at"]


def test_a_gift_and_a_price_above_face_value_are_both_recorded_as_asked(client):
    # The price cap is a setting the orchestrator applies; the record keeps what it is given.
    assert new_transfer(client, amount=0)["amount"] == 0
    assert new_transfer(client, amount=150, face_value=100)["amount"] == 150


def test_creating_the_same_transfer_again_returns_the_existing_one_with_200(client):
    body = transfer_body()
    first = client.post("/internal/transfers", json=body)
    again = dict(body, expires_at=iso(datetime.fromisoformat(body["expires_at"])
                                      .astimezone(timezone(timedelta(hours=8)))))
    second = client.post("/internal/transfers", json=again)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.get_json() == first.get_json()


@pytest.mark.parametrize("field,value", [
    ("seat_id", str(uuid.uuid4())), ("event_id", str(uuid.uuid4())), ("seller_user_id", str(uuid.uuid4())),
    ("buyer_user_id", str(uuid.uuid4())), ("amount", 81), ("face_value", 101), ("expires_at", in_minutes(16)),
])
def test_creating_an_existing_transfer_id_with_other_details_is_409_and_changes_nothing(client, field, value):
    body = transfer_body()
    original = client.post("/internal/transfers", json=body).get_json()
    resp = client.post("/internal/transfers", json=dict(body, **{field: value}))
    assert resp.status_code == 409 and error_code(resp) == "TRANSFER_CONFLICT"
    assert client.get(f"/internal/transfers/{body['transfer_id']}").get_json() == original


def test_a_seat_with_an_open_transfer_cannot_be_offered_again_until_that_one_ends(client):
    first = new_transfer(client)
    resp = client.post("/internal/transfers", json=transfer_body(seat_id=first["seat_id"]))
    assert resp.status_code == 409 and error_code(resp) == "TRANSFER_ALREADY_OPEN"
    assert transition(client, first, "CANCELLED").status_code == 200
    second = new_transfer(client, seat_id=first["seat_id"])
    # A late retry of the first create is still answered with the first transfer, now cancelled.
    replay = client.post("/internal/transfers", json={k: first[k] for k in (*FIELDS, "expires_at")})
    assert replay.status_code == 200 and replay.get_json()["status"] == "CANCELLED"
    listed = client.get(f"/internal/transfers?seat_id={first['seat_id']}").get_json()["transfers"]
    assert [t["transfer_id"] for t in listed] == [second["transfer_id"], first["transfer_id"]]


@pytest.mark.parametrize("change", [
    {"transfer_id": "not-a-uuid"}, {"seat_id": None}, {"event_id": ""}, {"buyer_user_id": 42},
    {"amount": -1}, {"amount": 80.5}, {"amount": "80"}, {"amount": True}, {"amount": 2**63},
    {"face_value": -1}, {"face_value": "100"}, {"expires_at": "2030-01-02T20:00:00"}, {"expires_at": 1893614400},
])
def test_malformed_create_bodies_are_400_naming_the_field(client, change):
    resp = client.post("/internal/transfers", json=transfer_body(**change))
    assert resp.status_code == 400 and error_code(resp) == "INVALID_INPUT"
    assert resp.get_json()["error"]["details"][0]["field"] == next(iter(change))


def test_a_seller_offering_a_ticket_to_themselves_is_400_and_nothing_is_stored(client):
    body = transfer_body()
    resp = client.post("/internal/transfers", json=dict(body, buyer_user_id=body["seller_user_id"]))
    assert resp.status_code == 400 and error_code(resp) == "INVALID_INPUT"
    assert "seller cannot be the buyer" in resp.get_json()["error"]["details"][0]["message"]
    assert client.get(f"/internal/transfers/{body['transfer_id']}").status_code == 404


# --- read --------------------------------------------------------------------------------------------------------

def test_get_transfer_returns_the_transfer(client):
    transfer = new_transfer(client)
    assert get(client, transfer) == transfer


@pytest.mark.parametrize("transfer_id", [str(uuid.uuid4()), "not-a-uuid", "1; DROP TABLE transfers"])
def test_unknown_or_malformed_transfer_ids_are_404_on_every_route(client, transfer_id):
    t = {"transfer_id": transfer_id, "buyer_user_id": str(uuid.uuid4())}
    for resp in (client.get(path(t)), begin_confirm(client, t), transition(client, t, "CANCELLED"),
                 begin_reverse(client, t), mark_released(client, t)):
        assert resp.status_code == 404 and error_code(resp) == "TRANSFER_NOT_FOUND"
        assert resp.get_json()["error"]["message"] == f"no transfer {transfer_id}"


def test_listing_by_user_shows_the_transfers_they_sell_or_buy_newest_first(client):
    fan = str(uuid.uuid4())
    sold = new_transfer(client, seller_user_id=fan)
    bought = new_transfer(client, buyer_user_id=fan)
    new_transfer(client)
    resp = client.get(f"/internal/transfers?user_id={fan}")
    assert resp.status_code == 200
    assert [t["transfer_id"] for t in resp.get_json()["transfers"]] == [bought["transfer_id"], sold["transfer_id"]]


def test_listing_filters_by_user_seat_and_status_and_pages(client):
    fan, seat = str(uuid.uuid4()), str(uuid.uuid4())
    first = new_transfer(client, seat_id=seat, seller_user_id=fan)
    transition(client, first, "CANCELLED")
    second = new_transfer(client, seat_id=seat, buyer_user_id=fan)
    transition(client, second, "CANCELLED")
    third = new_transfer(client, seat_id=seat)

    def ids(query):
        resp = client.get(f"/internal/transfers?{query}")
        assert resp.status_code == 200
        return [t["transfer_id"] for t in resp.get_json()["transfers"]]

    assert ids(f"seat_id={seat}") == [third["transfer_id"], second["transfer_id"], first["transfer_id"]]
    assert ids(f"seat_id={seat}&status=PENDING_OTP") == [third["transfer_id"]]
    assert ids(f"seat_id={seat}&user_id={fan}") == [second["transfer_id"], first["transfer_id"]]
    assert ids(f"seat_id={seat}&limit=1&offset=1") == [second["transfer_id"]]
    assert ids(f"user_id={fan}&status=COMPLETED") == []


@pytest.mark.parametrize("query", ["", "status=PENDING_OTP", f"user_id={uuid.uuid4()}&limit=0",
                                   f"user_id={uuid.uuid4()}&limit=201", f"seat_id={uuid.uuid4()}&offset=-1",
                                   "user_id=not-a-uuid", f"user_id={uuid.uuid4()}&status=SHIPPED"])
def test_listing_with_missing_or_bad_filters_is_400(client, query):
    resp = client.get(f"/internal/transfers?{query}")
    assert resp.status_code == 400 and error_code(resp) == "INVALID_INPUT"


# --- begin-confirm -----------------------------------------------------------------------------------------------

def test_begin_confirm_by_either_party_marks_a_live_transfer_confirming_once(client):
    transfer = new_transfer(client)
    resp = begin_confirm(client, transfer, transfer["buyer_user_id"])
    assert resp.status_code == 200
    started = resp.get_json()
    assert (started["status"], started["step"]) == ("PENDING_OTP", "CONFIRMING")
    for user in (transfer["buyer_user_id"], transfer["seller_user_id"]):
        again = begin_confirm(client, transfer, user)
        assert again.status_code == 200 and again.get_json() == started


def test_begin_confirm_by_someone_else_is_404_like_a_missing_transfer_and_changes_nothing(client):
    transfer = new_transfer(client)
    resp = begin_confirm(client, transfer, str(uuid.uuid4()))
    assert resp.status_code == 404 and error_code(resp) == "TRANSFER_NOT_FOUND"
    assert resp.get_json()["error"]["message"] == f"no transfer {transfer['transfer_id']}"
    assert get(client, transfer) == transfer


def test_begin_confirm_on_a_lapsed_transfer_expires_it_and_is_410(client):
    transfer = new_transfer(client, expires_at=in_minutes(-0.1))
    resp = begin_confirm(client, transfer)
    assert resp.status_code == 410 and error_code(resp) == "TRANSFER_EXPIRED"
    stored = get(client, transfer)
    assert (stored["status"], stored["step"], stored["failure_reason"]) == ("EXPIRED", "INITIATED",
                                                                             "not confirmed in time")
    again = begin_confirm(client, transfer)
    assert again.status_code == 410 and error_code(again) == "TRANSFER_EXPIRED"
    assert get(client, transfer) == stored


def test_begin_confirm_returns_a_confirm_under_way_as_it_is_after_the_deadline(client, container):
    transfer = new_transfer(client)
    begin_confirm(client, transfer)
    lapse(container, transfer)
    before = get(client, transfer)
    resp = begin_confirm(client, transfer)
    assert resp.status_code == 200 and resp.get_json() == before
    assert (before["status"], before["step"]) == ("PENDING_OTP", "CONFIRMING")


def test_begin_confirm_returns_a_completed_disputed_or_reversed_transfer_unchanged(client, container):
    done = completed(client)
    lapse(container, done)
    done = get(client, done)
    assert begin_confirm(client, done).get_json() == done
    argued = disputed(client)
    assert begin_confirm(client, argued).get_json() == argued
    begin_reverse(client, argued)
    reversed_ = transition(client, argued, "REVERSED").get_json()
    resp = begin_confirm(client, reversed_, reversed_["seller_user_id"])
    assert resp.status_code == 200 and resp.get_json() == reversed_


def test_begin_confirm_on_a_cancelled_transfer_is_409(client):
    transfer = new_transfer(client)
    transition(client, transfer, "CANCELLED")
    resp = begin_confirm(client, transfer)
    assert resp.status_code == 409 and error_code(resp) == "INVALID_TRANSITION"
    assert get(client, transfer)["status"] == "CANCELLED"


# --- transitions from PENDING_OTP --------------------------------------------------------------------------------

def test_completing_a_confirmed_transfer_records_when_and_when_its_proceeds_release(client):
    transfer = new_transfer(client)
    release_at = in_minutes(60 * 24 * 7)
    refused = transition(client, transfer, "COMPLETED", release_at=release_at)
    assert refused.status_code == 409 and error_code(refused) == "INVALID_TRANSITION"
    begin_confirm(client, transfer)
    missing = transition(client, transfer, "COMPLETED")
    assert missing.status_code == 400 and error_code(missing) == "INVALID_INPUT"
    resp = transition(client, transfer, "COMPLETED", release_at=release_at)
    assert resp.status_code == 200
    done = resp.get_json()
    assert (done["status"], done["step"], done["released_at"]) == ("COMPLETED", "CONFIRMING", None)
    assert datetime.fromisoformat(done["release_at"]) == datetime.fromisoformat(release_at)
    assert done["completed_at"] == done["updated_at"]
    # A repeat changes nothing, whatever release time it names.
    again = transition(client, transfer, "COMPLETED", release_at=in_minutes(1))
    assert again.status_code == 200 and again.get_json() == done


def test_a_confirm_begun_before_the_deadline_still_completes_after_it(client, container):
    transfer = new_transfer(client)
    begin_confirm(client, transfer)
    lapse(container, transfer)
    resp = transition(client, transfer, "COMPLETED", release_at=in_minutes(60))
    assert resp.status_code == 200 and resp.get_json()["status"] == "COMPLETED"


def test_a_pending_transfer_expires_only_after_its_deadline(client, container):
    transfer = new_transfer(client)
    early = transition(client, transfer, "EXPIRED")
    assert early.status_code == 409 and error_code(early) == "INVALID_TRANSITION"
    assert get(client, transfer)["status"] == "PENDING_OTP"
    lapse(container, transfer)
    resp = transition(client, transfer, "EXPIRED", reason="nobody confirmed")
    assert resp.status_code == 200
    assert (resp.get_json()["status"], resp.get_json()["failure_reason"]) == ("EXPIRED", "nobody confirmed")


@pytest.mark.parametrize("to", ["COMPLETED", "CANCELLED"])
def test_completing_or_cancelling_a_lapsed_transfer_expires_it_and_is_410(client, to):
    transfer = new_transfer(client, expires_at=in_minutes(-0.1))
    resp = transition(client, transfer, to, release_at=in_minutes(60))
    assert resp.status_code == 410 and error_code(resp) == "TRANSFER_EXPIRED"
    assert get(client, transfer)["status"] == "EXPIRED"


def test_a_sellers_cancel_expecting_no_confirm_under_way_cannot_overtake_one(client):
    offered = new_transfer(client)
    resp = transition(client, offered, "CANCELLED", reason="changed my mind", expected_step="INITIATED")
    assert resp.status_code == 200
    assert (resp.get_json()["status"], resp.get_json()["failure_reason"]) == ("CANCELLED", "changed my mind")

    confirming = new_transfer(client)
    begin_confirm(client, confirming)
    refused = transition(client, confirming, "CANCELLED", expected_step="INITIATED")
    assert refused.status_code == 409 and error_code(refused) == "INVALID_TRANSITION"
    assert get(client, confirming)["status"] == "PENDING_OTP"
    # The confirm saga itself calls a failed confirm off (after undoing its steps).
    ended = transition(client, confirming, "CANCELLED", reason="move-ticket: NOT_OWNER")
    assert ended.status_code == 200 and ended.get_json()["failure_reason"] == "move-ticket: NOT_OWNER"


@pytest.mark.parametrize("history,to", [
    (["CANCELLED"], "COMPLETED"), (["CANCELLED"], "EXPIRED"), ([], "DISPUTED"), ([], "REVERSED"),
    (["COMPLETED"], "CANCELLED"), (["COMPLETED"], "REVERSED"), (["COMPLETED"], "PENDING_OTP"),
    (["COMPLETED", "DISPUTED"], "CANCELLED"), (["COMPLETED", "DISPUTED", "REVERSED"], "COMPLETED"),
])
def test_refused_transfer_transitions_are_409_naming_the_current_status(client, history, to):
    transfer = new_transfer(client)
    begin_confirm(client, transfer)
    for status in history:
        if status == "REVERSED":
            begin_reverse(client, transfer)
        resp = transition(client, transfer, status, release_at=in_minutes(60), reason="why", resolution="how")
        assert resp.status_code == 200, resp.get_json()
    before = get(client, transfer)
    resp = transition(client, transfer, to, release_at=in_minutes(60), reason="why", resolution="how")
    assert resp.status_code == 409 and error_code(resp) == "INVALID_TRANSITION"
    assert before["status"] in resp.get_json()["error"]["message"]
    assert get(client, transfer) == before


@pytest.mark.parametrize("body", [{"to": "SHIPPED"}, {"to": "DISPUTED", "reason": "r" * 501},
                                  {"to": "COMPLETED", "release_at": "2030-01-02T20:00:00"},
                                  {"to": "COMPLETED", "release_at": 1893614400},
                                  {"to": "COMPLETED", "resolution": "r" * 501},
                                  {"to": "CANCELLED", "expected_step": "PAYING"}, {}])
def test_malformed_transition_bodies_are_400(client, body):
    transfer = new_transfer(client)
    resp = client.post(f"{path(transfer)}/transition", json=body)
    assert resp.status_code == 400 and error_code(resp) == "INVALID_INPUT"
    assert get(client, transfer) == transfer


# --- disputes, reversals and the release of the proceeds ---------------------------------------------------------

def test_a_dispute_inside_the_window_keeps_its_reason(client):
    transfer = completed(client)
    blank = transition(client, transfer, "DISPUTED", reason="   ")
    assert blank.status_code == 400 and error_code(blank) == "INVALID_INPUT"
    resp = transition(client, transfer, "DISPUTED", reason=" never got the seat ")
    assert resp.status_code == 200
    assert (resp.get_json()["status"], resp.get_json()["dispute_reason"]) == ("DISPUTED", "never got the seat")
    again = transition(client, transfer, "DISPUTED", reason="another reason")
    assert again.status_code == 200 and again.get_json() == resp.get_json()


def test_a_dispute_after_the_window_or_the_release_is_410(client):
    closed = completed(client, release_at=in_minutes(-0.1))
    resp = transition(client, closed, "DISPUTED", reason="too late")
    assert resp.status_code == 410 and error_code(resp) == "DISPUTE_WINDOW_CLOSED"
    assert mark_released(client, closed).status_code == 200
    resp = transition(client, closed, "DISPUTED", reason="too late")
    assert resp.status_code == 410 and error_code(resp) == "DISPUTE_WINDOW_CLOSED"
    assert get(client, closed)["status"] == "COMPLETED"


def test_a_reversal_is_begun_once_and_then_ends_the_transfer_reversed(client):
    transfer = disputed(client)
    early = transition(client, transfer, "REVERSED")
    assert early.status_code == 409 and error_code(early) == "INVALID_TRANSITION"
    resp = begin_reverse(client, transfer)
    assert resp.status_code == 200
    started = resp.get_json()
    assert (started["status"], started["step"]) == ("DISPUTED", "REVERSING")
    assert begin_reverse(client, transfer).get_json() == started
    done = transition(client, transfer, "REVERSED", resolution="ticket and credits returned")
    assert done.status_code == 200
    assert (done.get_json()["status"], done.get_json()["resolution"]) == ("REVERSED", "ticket and credits returned")
    again = begin_reverse(client, transfer)
    assert again.status_code == 200 and again.get_json() == done.get_json()


@pytest.mark.parametrize("make", [new_transfer, completed])
def test_begin_reverse_of_a_transfer_that_is_not_disputed_is_409(client, make):
    transfer = make(client)
    resp = begin_reverse(client, transfer)
    assert resp.status_code == 409 and error_code(resp) == "INVALID_TRANSITION"
    assert get(client, transfer) == transfer


def test_closing_a_dispute_keeps_the_resolution_and_the_proceeds_then_release_when_due(client, container):
    transfer = disputed(client)
    # The window ends while the dispute is open: the proceeds stay pending.
    sql(container, "UPDATE transfers SET release_at = now() - interval '1 minute' WHERE transfer_id = :id",
        id=transfer["transfer_id"])
    transfer = get(client, transfer)
    held = mark_released(client, transfer)
    assert held.status_code == 409 and error_code(held) == "INVALID_TRANSITION"
    missing = transition(client, transfer, "COMPLETED")
    assert missing.status_code == 400 and error_code(missing) == "INVALID_INPUT"
    resp = transition(client, transfer, "COMPLETED", resolution="the ticket was already checked in")
    assert resp.status_code == 200
    closed = resp.get_json()
    assert (closed["status"], closed["resolution"], closed["dispute_reason"]) == (
        "COMPLETED", "the ticket was already checked in", transfer["dispute_reason"])
    assert (closed["release_at"], closed["completed_at"]) == (transfer["release_at"], transfer["completed_at"])
    released = mark_released(client, transfer)
    assert released.status_code == 200 and released.get_json()["released_at"] is not None


def test_a_closed_dispute_cannot_be_opened_again(client):
    transfer = disputed(client)
    transition(client, transfer, "COMPLETED", resolution="the seat was the one offered")
    again = transition(client, transfer, "DISPUTED", reason="once more")
    assert again.status_code == 410 and error_code(again) == "DISPUTE_WINDOW_CLOSED"
    assert get(client, transfer)["status"] == "COMPLETED"


def test_proceeds_are_released_once_only_when_due(client):
    not_due = completed(client, release_at=in_minutes(60))
    resp = mark_released(client, not_due)
    assert resp.status_code == 409 and error_code(resp) == "INVALID_TRANSITION"
    assert get(client, not_due)["released_at"] is None

    due = completed(client, release_at=in_minutes(-0.1))
    first = mark_released(client, due)
    assert first.status_code == 200
    released = first.get_json()
    assert released["released_at"] is not None and released["released_at"] == released["updated_at"]
    second = mark_released(client, due)
    assert second.status_code == 200 and second.get_json() == released


@pytest.mark.parametrize("make", [new_transfer, disputed])
def test_proceeds_of_a_transfer_that_is_not_completed_are_never_released(client, container, make):
    transfer = make(client)
    sql(container, "UPDATE transfers SET release_at = now() - interval '1 minute' WHERE transfer_id = :id "
                   "AND release_at IS NOT NULL", id=transfer["transfer_id"])
    resp = mark_released(client, transfer)
    assert resp.status_code == 409 and error_code(resp) == "INVALID_TRANSITION"
    assert get(client, transfer)["released_at"] is None


# --- the recovery pass's query -----------------------------------------------------------------------------------

def test_stale_query_returns_exactly_the_four_kinds_of_transfers_recovery_must_finish(client, container):
    made = {}
    made["lapsed"] = new_transfer(client, expires_at=in_minutes(-10))
    made["live"] = new_transfer(client)
    made["quiet_confirm"] = new_transfer(client)
    begin_confirm(client, made["quiet_confirm"])
    made["fresh_confirm"] = new_transfer(client)
    begin_confirm(client, made["fresh_confirm"])
    made["quiet_reversal"] = disputed(client)
    begin_reverse(client, made["quiet_reversal"])
    made["fresh_reversal"] = disputed(client)
    begin_reverse(client, made["fresh_reversal"])
    made["quiet_dispute"] = disputed(client)
    made["due"] = completed(client, release_at=in_minutes(-5))
    made["released"] = completed(client, release_at=in_minutes(-5))
    mark_released(client, made["released"])
    made["not_due"] = completed(client, release_at=in_minutes(60))
    made["due_but_disputed"] = disputed(client)
    sql(container, "UPDATE transfers SET release_at = now() - interval '5 minutes' WHERE transfer_id = :id",
        id=made["due_but_disputed"]["transfer_id"])
    made["cancelled"] = new_transfer(client, expires_at=in_minutes(-10))
    sql(container, "UPDATE transfers SET status = 'CANCELLED' WHERE transfer_id = :id",
        id=made["cancelled"]["transfer_id"])
    made["expired"] = new_transfer(client, expires_at=in_minutes(-10))
    transition(client, made["expired"], "EXPIRED")
    for name in ("quiet_confirm", "quiet_reversal", "quiet_dispute", "released", "not_due", "due_but_disputed",
                 "cancelled", "expired"):
        make_quiet(container, made[name], 10)
    for name in ("fresh_confirm", "fresh_reversal"):
        make_quiet(container, made[name], 1)
    names = {t["transfer_id"]: name for name, t in made.items()}

    resp = client.get("/internal/transfers/stale?grace_seconds=120&limit=1000")
    assert resp.status_code == 200
    found = [names[t["transfer_id"]] for t in resp.get_json()["transfers"] if t["transfer_id"] in names]
    assert sorted(found) == ["due", "lapsed", "quiet_confirm", "quiet_reversal"]
    # Oldest first by when each became stale: lapsed or quiet for 10 minutes, due for 5.
    assert found[-1] == "due"
    assert len(client.get("/internal/transfers/stale?grace_seconds=0&limit=1").get_json()["transfers"]) == 1


def test_stale_query_is_bounded_by_its_limit_oldest_first(client):
    # Older than any other transfer of the run (each run has a fresh database).
    ids = [new_transfer(client, expires_at=in_minutes(-10_000 - i))["transfer_id"] for i in range(3)]
    resp = client.get("/internal/transfers/stale?limit=2")
    assert resp.status_code == 200
    assert [t["transfer_id"] for t in resp.get_json()["transfers"]] == [ids[2], ids[1]]


def test_the_recovery_passs_every_second_poll_logs_at_debug_and_other_reads_at_info(client, caplog):
    with caplog.at_level(logging.DEBUG, logger="access"):
        client.get("/internal/transfers/stale")
        client.get(f"/internal/transfers?user_id={uuid.uuid4()}")
    assert [(r.levelno, r.path) for r in caplog.records if r.name == "access"] == [
        (logging.DEBUG, "/internal/transfers/stale"), (logging.INFO, "/internal/transfers")]


@pytest.mark.parametrize("query", ["grace_seconds=-1", "grace_seconds=abc", "limit=0", "limit=1001"])
def test_stale_query_with_bad_parameters_is_400(client, query):
    resp = client.get(f"/internal/transfers/stale?{query}")
    assert resp.status_code == 400 and error_code(resp) == "INVALID_INPUT"


# --- the guard and the schema ------------------------------------------------------------------------------------

def test_every_transfer_route_refuses_callers_without_the_internal_credential(app):
    transfer_id = str(uuid.uuid4())
    calls = [("post", "/internal/transfers", transfer_body()), ("get", f"/internal/transfers/{transfer_id}", None),
             ("get", f"/internal/transfers?user_id={transfer_id}", None), ("get", "/internal/transfers/stale", None),
             ("post", f"/internal/transfers/{transfer_id}/begin-confirm", {"user_id": transfer_id}),
             ("post", f"/internal/transfers/{transfer_id}/transition", {"to": "CANCELLED"}),
             ("post", f"/internal/transfers/{transfer_id}/begin-reverse", None),
             ("post", f"/internal/transfers/{transfer_id}/released", None)]
    client = app.test_client()
    for headers in ({}, {"X-Internal-Token": "wrong"}):
        for method, route, body in calls:
            resp = getattr(client, method)(route, json=body, headers=headers)
            assert resp.status_code == 401, (method, route)
            assert error_code(resp) == "INTERNAL_CREDENTIAL_REQUIRED"


@pytest.mark.parametrize("statement", [
    # completed without the moment its proceeds release
    "UPDATE transfers SET status = 'COMPLETED', completed_at = now() WHERE transfer_id = :id",
    # proceeds released from a transfer that is not completed
    "UPDATE transfers SET released_at = now() WHERE transfer_id = :id",
    "UPDATE transfers SET step = 'PAYING' WHERE transfer_id = :id",
    "UPDATE transfers SET amount = -1 WHERE transfer_id = :id",
])
def test_the_database_refuses_a_transfer_row_the_rules_never_write(client, container, statement):
    transfer = new_transfer(client)
    with pytest.raises(IntegrityError):
        sql(container, statement, id=transfer["transfer_id"])
    assert get(client, transfer) == transfer
