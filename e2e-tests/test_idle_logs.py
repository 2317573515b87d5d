"""A quiet system is quiet in its logs: the recovery worker polls order-service's stale query every
RECOVERY_INTERVAL_SECONDS (0.5 s here) and those polls leave no access-log line at INFO, while requests that
do something still do."""
from e2e_support import log_entries, order_row, register_and_login, wait_until


def test_the_workers_polling_leaves_no_info_line_while_real_requests_still_do(api, fresh_event, engines):
    fan = register_and_login(api)
    r = api.post("/reserve", fan.token, json={"seat_id": fresh_event(seats=1).seat_ids[0]})
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]

    # The hold lapses after 3 s and the worker, finding the order through its poll, ends it: the polls reach
    # order-service.
    wait_until(lambda: order_row(engines, order_id)["status"] == "EXPIRED", 15, what="the worker to end the order")
    access = [e for e in log_entries("order-service") if e.get("logger") == "access"]
    assert any(e["method"] == "POST" and e["path"] == f"/internal/orders/{order_id}/transition" for e in access)
    assert [e for e in access if e["path"] == "/internal/orders/stale"] == []
