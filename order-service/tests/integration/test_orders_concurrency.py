"""Concurrent callers of one order against real PostgreSQL (the `together` fixture)."""
import time
import uuid
from datetime import datetime, timedelta, timezone

THREADS = 20


def create(client, **overrides):
    body = {"order_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()), "amount": 50,
            "held_until": (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()}
    body.update(overrides)
    resp = client.post("/internal/orders", json=body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_racing_begin_payment_and_expiry_never_leave_an_order_charging_and_expired(client, together):
    outcomes = set()
    for _ in range(5):
        # The hold ends while the threads arrive: each one lands a few milliseconds before or after it.
        held_until = datetime.now(timezone.utc) + timedelta(milliseconds=150)
        order = create(client, held_until=held_until.isoformat())
        path = f"/internal/orders/{order['order_id']}"

        def call(i):
            def go(c):
                time.sleep(max(0.0, (held_until - datetime.now(timezone.utc)).total_seconds() + (i - 10) / 1000))
                if i % 2:
                    return "expire", c.post(f"{path}/transition", json={"to": "EXPIRED"})
                return "pay", c.post(f"{path}/begin-payment", json={"user_id": order["user_id"]})
            return go

        results = together([call(i) for i in range(THREADS)])
        assert all(isinstance(r, tuple) for r in results), results
        assert all(resp.status_code in (200, 409, 410) for _, resp in results), \
            [(kind, resp.status_code, resp.get_json()) for kind, resp in results]
        paid = [resp for kind, resp in results if kind == "pay" and resp.status_code == 200]
        expired = [resp for kind, resp in results if kind == "expire" and resp.status_code == 200]
        # Whoever came first wins; the other side is refused, never half-applied.
        assert not (paid and expired)
        final = client.get(path).get_json()
        assert not (final["status"] == "EXPIRED" and final["payment_state"] == "CHARGING")
        if paid:
            assert (final["status"], final["payment_state"]) == ("PENDING", "CHARGING")
        else:
            assert (final["status"], final["payment_state"]) == ("EXPIRED", "NONE")
        outcomes.add(final["status"])
    assert outcomes <= {"PENDING", "EXPIRED"}


def test_concurrent_confirms_of_two_orders_for_one_seat_confirm_exactly_one(client, together):
    seat = str(uuid.uuid4())
    orders = [create(client, seat_id=seat) for _ in range(2)]
    results = together([
        (lambda c, oid=o["order_id"]: c.post(f"/internal/orders/{oid}/transition", json={"to": "CONFIRMED"}))
        for o in orders])
    assert sorted(r.status_code for r in results) == [200, 409]
    refused = next(r for r in results if r.status_code == 409)
    assert refused.get_json()["error"]["code"] == "SEAT_ALREADY_CONFIRMED"
    confirmed = client.get(f"/internal/orders?seat_id={seat}&status=CONFIRMED").get_json()["orders"]
    assert len(confirmed) == 1


def test_concurrent_creates_of_one_order_create_it_once(client, together):
    body = {"order_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "seat_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()), "amount": 50,
            "held_until": (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()}
    results = together([lambda c: c.post("/internal/orders", json=body)] * 10)
    assert sorted(r.status_code for r in results) == [200] * 9 + [201]
    assert len({r.get_data() for r in results}) == 1
