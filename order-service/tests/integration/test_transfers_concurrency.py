"""Concurrent callers of transfers against real PostgreSQL (the `together` fixture): the seat's unique index and
the transfer's row lock decide, never the order in which the threads happen to run."""
import time
import uuid
from datetime import datetime, timedelta, timezone

THREADS = 20


def body(**overrides) -> dict:
    b = {"transfer_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()),
         "seller_user_id": str(uuid.uuid4()), "buyer_user_id": str(uuid.uuid4()), "amount": 80, "face_value": 100,
         "expires_at": (datetime.now(timezone.utc) + timedelta(minutes=15)).isoformat()}
    b.update(overrides)
    return b


def create(client, **overrides) -> dict:
    resp = client.post("/internal/transfers", json=body(**overrides))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def later(**kw) -> str:
    return (datetime.now(timezone.utc) + timedelta(**kw)).isoformat()


def described(results) -> list:
    return [r if isinstance(r, BaseException) else (r.status_code, r.get_json()) for r in results]


def test_of_twenty_concurrent_creates_for_one_seat_with_different_ids_exactly_one_succeeds(client, together):
    seat = str(uuid.uuid4())
    results = together([lambda c: c.post("/internal/transfers", json=body(seat_id=seat))] * THREADS)
    assert not any(isinstance(r, BaseException) for r in results), results
    assert sorted(r.status_code for r in results) == [201] + [409] * (THREADS - 1), described(results)
    assert {r.get_json()["error"]["code"] for r in results if r.status_code == 409} == {"TRANSFER_ALREADY_OPEN"}
    stored = client.get(f"/internal/transfers?seat_id={seat}").get_json()["transfers"]
    winner = next(r.get_json() for r in results if r.status_code == 201)
    assert stored == [winner]


def test_concurrent_creates_of_one_transfer_create_it_once(client, together):
    same = body()
    results = together([lambda c: c.post("/internal/transfers", json=same)] * 10)
    assert not any(isinstance(r, BaseException) for r in results), results
    assert sorted(r.status_code for r in results) == [200] * 9 + [201], described(results)
    assert len({r.get_data() for r in results}) == 1
    assert len(client.get(f"/internal/transfers?seat_id={same['seat_id']}").get_json()["transfers"]) == 1


def test_twenty_concurrent_confirms_and_completions_of_one_transfer_complete_it_once(client, together):
    for round_ in range(5):
        transfer = create(client)
        path = f"/internal/transfers/{transfer['transfer_id']}"
        if round_ % 2:
            # Half the rounds start with the confirm already begun, so every completion may succeed.
            assert client.post(f"{path}/begin-confirm", json={"user_id": transfer["buyer_user_id"]}).status_code == 200

        def call(i):
            if i % 2:
                return lambda c: ("complete", c.post(f"{path}/transition",
                                                     json={"to": "COMPLETED", "release_at": later(days=7)}))
            party = transfer["buyer_user_id"] if i % 4 else transfer["seller_user_id"]
            return lambda c: ("confirm", c.post(f"{path}/begin-confirm", json={"user_id": party}))

        results = together([call(i) for i in range(THREADS)])
        assert all(isinstance(r, tuple) for r in results), results
        answers = [(kind, resp.status_code, resp.get_json()) for kind, resp in results]
        for kind, status, answer in answers:
            if kind == "confirm" or status == 200:
                assert status == 200, answers
                assert answer["step"] == "CONFIRMING" and answer["status"] in ("PENDING_OTP", "COMPLETED")
            else:
                # Only a completion that came before every confirm is refused.
                assert (status, answer["error"]["code"]) == (409, "INVALID_TRANSITION"), answers
                assert "confirm has not begun" in answer["error"]["message"]
        final = client.post(f"{path}/transition", json={"to": "COMPLETED", "release_at": later(days=1)}).get_json()
        assert final["status"] == "COMPLETED"
        # Completed once: every answer that saw it COMPLETED shows the same completion, and no later call moved it.
        done = [answer for _, _, answer in answers if answer.get("status") == "COMPLETED"]
        assert all(answer == final for answer in done), answers
        if round_ % 2:
            assert done, answers
        assert client.get(path).get_json() == final


def test_a_sellers_cancel_racing_confirms_either_wins_whole_never_both(client, together):
    outcomes = set()
    for _ in range(5):
        transfer = create(client)
        path = f"/internal/transfers/{transfer['transfer_id']}"
        calls = [lambda c: ("cancel", c.post(f"{path}/transition",
                                             json={"to": "CANCELLED", "expected_step": "INITIATED"}))]
        calls += [lambda c: ("confirm", c.post(f"{path}/begin-confirm",
                                               json={"user_id": transfer["buyer_user_id"]}))] * 9
        results = together(calls)
        assert all(isinstance(r, tuple) for r in results), results
        answers = [(kind, resp.status_code, resp.get_json()) for kind, resp in results]
        cancelled = any(kind == "cancel" and status == 200 for kind, status, _ in answers)
        confirmed = [status for kind, status, _ in answers if kind == "confirm" and status == 200]
        final = client.get(path).get_json()
        if cancelled:
            assert not confirmed and final["status"] == "CANCELLED" and final["step"] == "INITIATED", answers
            assert {(s, a["error"]["code"]) for k, s, a in answers if k == "confirm"} == {(409, "INVALID_TRANSITION")}
        else:
            assert len(confirmed) == 9 and (final["status"], final["step"]) == ("PENDING_OTP", "CONFIRMING"), answers
        outcomes.add(final["status"])
    assert outcomes <= {"CANCELLED", "PENDING_OTP"}


def test_a_dispute_racing_the_end_of_the_window_and_the_release_never_leaves_released_proceeds_disputed(
        client, together):
    for _ in range(5):
        transfer = create(client)
        path = f"/internal/transfers/{transfer['transfer_id']}"
        client.post(f"{path}/begin-confirm", json={"user_id": transfer["buyer_user_id"]})
        release_at = datetime.now(timezone.utc) + timedelta(milliseconds=150)
        done = client.post(f"{path}/transition", json={"to": "COMPLETED", "release_at": release_at.isoformat()})
        assert done.status_code == 200

        def call(i):
            def go(c):
                # Each thread lands a few milliseconds before or after the end of the window.
                time.sleep(max(0.0, (release_at - datetime.now(timezone.utc)).total_seconds() + (i - 10) / 1000))
                if i % 2:
                    return "release", c.post(f"{path}/released")
                return "dispute", c.post(f"{path}/transition", json={"to": "DISPUTED", "reason": f"claim {i}"})
            return go

        results = together([call(i) for i in range(THREADS)])
        assert all(isinstance(r, tuple) for r in results), results
        answers = [(kind, resp.status_code, resp.get_json()) for kind, resp in results]
        for kind, status, answer in answers:
            refused = (410, "DISPUTE_WINDOW_CLOSED") if kind == "dispute" else (409, "INVALID_TRANSITION")
            assert status == 200 or (status, answer["error"]["code"]) == refused, answers
        disputes = [a for k, s, a in answers if k == "dispute" and s == 200]
        releases = [a for k, s, a in answers if k == "release" and s == 200]
        # Whoever came first wins; the other side is refused, never half-applied.
        assert not (disputes and releases), answers
        final = client.get(path).get_json()
        if disputes:
            assert final["status"] == "DISPUTED" and final["released_at"] is None
            # Decided by the database clock, inside the window; the first claim is the one kept.
            assert all(a == final for a in disputes)
            assert datetime.fromisoformat(final["updated_at"]) < datetime.fromisoformat(final["release_at"])
        elif releases:
            assert final["status"] == "COMPLETED" and all(a == final for a in releases)
            assert datetime.fromisoformat(final["released_at"]) >= datetime.fromisoformat(final["release_at"])
        else:
            assert final["status"] == "COMPLETED" and final["released_at"] is None
