"""One request id follows a purchase across HTTP, gRPC and AMQP, so an operator can trace it in the logs."""
import uuid

from e2e_support import log_entries, register_and_login, topup, wait_until


def _lines_with(process: str, request_id: str) -> list[dict]:
    return [e for e in log_entries(process) if e.get("request_id") == request_id]


def test_the_callers_request_id_reaches_every_service_and_the_hold_timer(api, fresh_event):
    ev = fresh_event(seats=1)
    fan = register_and_login(api)
    topup(api, fan.user_id, 100)
    reserve_id, pay_id = f"trace-{uuid.uuid4().hex}", f"trace-{uuid.uuid4().hex}"
    r = api.post("/reserve", fan.token, json={"seat_id": ev.seat_ids[0]}, headers={"X-Request-ID": reserve_id})
    assert r.status_code == 201 and r.headers["X-Request-ID"] == reserve_id
    r = api.post("/pay", fan.token, json={"order_id": r.json()["order_id"]}, headers={"X-Request-ID": pay_id})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == pay_id

    for process in ("orchestrator-service", "order-service", "inventory-service"):
        assert _lines_with(process, reserve_id), process
    for process in ("orchestrator-service", "order-service", "user-service", "inventory-service"):
        assert _lines_with(process, pay_id), process
    # The hold's timer message carries the reserve's id to the release consumer (the seat was sold meanwhile,
    # so the consumer finds nothing to release, and says so under the same id).
    wait_until(lambda: _lines_with("inventory-release-consumer", reserve_id), 10, what="the timer's log line")


def test_a_request_without_an_id_gets_one(api):
    r = api.get("/events")
    assert len(r.headers["X-Request-ID"]) >= 16
