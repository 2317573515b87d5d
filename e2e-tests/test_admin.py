"""The admin API end to end: an organizer creates a venue, halls and an event with its seat grid, puts it on sale, and
reads the sales and gate reports of what fans did; accounts are flagged and granted credits; every admin action is in
the audit trail; nobody but an admin gets anywhere."""
import time
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from e2e_support import balance, login, operations, register_and_login, topup

STARTS = (datetime.now(timezone.utc) + timedelta(days=30)).replace(microsecond=0).isoformat()


def admin_token(api) -> str:
    return login(api, "admin@demo.test")


def venue_with_halls(api, admin, halls=("Main Floor", "Balcony")) -> tuple[dict, list[dict]]:
    r = api.post("/admin/venues", admin, json={"name": f"Venue {uuid.uuid4().hex[:6]}", "address": "1 River Road"})
    assert r.status_code == 201, r.text
    venue = r.json()
    made = []
    for name in halls:
        r = api.post(f"/admin/venues/{venue['venue_id']}/halls", admin, json={"name": name})
        assert r.status_code == 201, r.text
        made.append(r.json())
    return venue, made


def grid_event(api, admin, hall_id, *, rows=20, per_row=50, price=80, publish=True, key=None) -> dict:
    body = {"name": f"Gala {uuid.uuid4().hex[:6]}", "hall_id": hall_id, "starts_at": STARTS,
            "description": "an evening", "publish": publish,
            "sections": [{"section": "Stalls", "price": price, "rows": [f"R{i}" for i in range(1, rows + 1)],
                          "seats_per_row": per_row}]}
    r = api.post("/admin/events", admin, json=body, headers={"Idempotency-Key": key} if key else {})
    assert r.status_code == 201, r.text
    return r.json()


def seat_map(api, event_id) -> list[dict]:
    r = api.get(f"/events/{event_id}/seats")
    assert r.status_code == 200, r.text
    return r.json()["seats"]


def test_an_organizer_puts_a_20_by_50_event_on_sale_and_reads_its_sales_and_gate_reports(api):
    admin = admin_token(api)
    venue, (main, balcony) = venue_with_halls(api, admin)
    made = grid_event(api, admin, main["hall_id"])
    event = made["event"]
    assert made["seats"] == {"created": 1000, "total": 1000}
    assert (event["status"], event["hall_id"], event["venue_id"]) == ("ON_SALE", main["hall_id"], venue["venue_id"])
    assert event["event_id"] in {e["event_id"] for e in api.get("/events", params={"limit": 200}).json()["events"]}
    seats = seat_map(api, event["event_id"])
    assert len(seats) == 1000 and {s["price"] for s in seats} == {80} and {s["status"] for s in seats} == {"AVAILABLE"}

    fan = register_and_login(api)
    topup(api, fan.user_id, 500)
    seat = next(s for s in seats if (s["row"], s["number"]) == ("R3", 7))
    order = api.post("/reserve", fan.token, json={"seat_id": seat["seat_id"]}).json()
    r = api.post("/pay", fan.token, json={"order_id": order["order_id"]})
    assert r.status_code == 200, r.text
    assert balance(api, fan.token) == 420

    sales = api.get(f"/admin/events/{event['event_id']}/sales", admin)
    assert sales.status_code == 200, sales.text
    report = sales.json()
    assert report["seats"]["total"] == 1000 and report["seats"]["sold"] == 1 and report["seats"]["available"] == 999
    assert report["seats"]["face_value_sold"] == 80
    assert {k: n for k, n in report["orders"]["orders_by_status"].items() if n} == {"CONFIRMED": 1}
    assert report["orders"]["revenue"] == 80 and report["orders"]["seats_sold"] == 1

    scanner = login(api, "scanner@demo.test")
    code = api.get(f"/tickets/{seat['seat_id']}/qr", fan.token).json()["qr"]
    assert api.post("/verify", scanner, json={"qr": code, "hall_id": balcony["hall_id"]}).json()["result"] == \
        "WRONG_HALL"
    assert api.post("/verify", scanner, json={"qr": code, "hall_id": main["hall_id"]}).json()["result"] == "CHECKED_IN"
    gate = api.get(f"/admin/events/{event['event_id']}/gate", admin, params={"bucket_seconds": 60})
    assert gate.status_code == 200, gate.text
    g = gate.json()
    assert g["by_result"] == {"WRONG_HALL": 1, "CHECKED_IN": 1}
    halls = {row["hall_id"]: row for row in g["by_hall"]}
    assert halls[main["hall_id"]]["hall_name"] == "Main Floor"
    assert halls[main["hall_id"]]["results"] == {"CHECKED_IN": 1}
    assert halls[balcony["hall_id"]]["results"] == {"WRONG_HALL": 1}
    assert [b["count"] for b in g["check_ins"]] == [1]

    sales = api.get(f"/admin/events/{event['event_id']}/sales", admin).json()
    assert sales["seats"]["checked_in"] == 1 and sales["seats"]["sold"] == 0


def test_a_draft_event_is_neither_listed_nor_on_sale_until_it_is_published(api, engines):
    admin = admin_token(api)
    _venue, (hall, _other) = venue_with_halls(api, admin)
    made = grid_event(api, admin, hall["hall_id"], rows=2, per_row=5, publish=False)
    event_id = made["event"]["event_id"]
    assert made["event"]["status"] == "DRAFT"
    assert api.get(f"/events/{event_id}").status_code == 404
    assert api.get(f"/events/{event_id}/seats").status_code == 404
    assert event_id not in {e["event_id"] for e in api.get("/events", params={"limit": 200}).json()["events"]}
    assert event_id in {e["event_id"] for e in api.get("/admin/events", admin, params={"status": "DRAFT",
                                                                                       "limit": 200}).json()["events"]}
    with engines["inventory-service"].connect() as conn:
        seat_id = str(conn.execute(sa.text("SELECT seat_id FROM seats WHERE event_id = :e LIMIT 1"),
                                   {"e": event_id}).scalar_one())
    fan = register_and_login(api)
    r = api.post("/reserve", fan.token, json={"seat_id": seat_id})
    assert r.status_code == 409 and r.json()["error"]["code"] == "EVENT_NOT_ON_SALE", r.text

    r = api.post(f"/admin/events/{event_id}/publish", admin)
    assert r.status_code == 200 and r.json()["status"] == "ON_SALE", r.text
    assert api.post(f"/admin/events/{event_id}/publish", admin).json()["status"] == "ON_SALE"     # again: same
    assert api.get(f"/events/{event_id}").status_code == 200
    assert api.post("/reserve", fan.token, json={"seat_id": seat_id}).status_code == 201


def test_creating_an_event_again_with_the_same_idempotency_key_creates_nothing_twice(api, engines):
    admin = admin_token(api)
    _venue, (hall, _other) = venue_with_halls(api, admin)
    key = uuid.uuid4().hex
    first = grid_event(api, admin, hall["hall_id"], rows=3, per_row=4, key=key)
    second = api.post("/admin/events", admin, headers={"Idempotency-Key": key}, json={
        "name": first["event"]["name"], "hall_id": hall["hall_id"], "starts_at": STARTS, "description": "an evening",
        "publish": True, "sections": [{"section": "Stalls", "price": 80, "rows": ["R1", "R2", "R3"],
                                       "seats_per_row": 4}]})
    assert second.status_code == 201, second.text
    assert second.json()["event"]["event_id"] == first["event"]["event_id"]
    assert second.json()["seats"] == {"created": 0, "total": 12}
    with engines["inventory-service"].connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM seats WHERE event_id = :e"),
                            {"e": first["event"]["event_id"]}).scalar_one() == 12


def test_bad_grids_and_dates_are_refused_whole_and_nothing_is_written(api, engines):
    admin = admin_token(api)
    _venue, (hall, _other) = venue_with_halls(api, admin)
    good = {"name": "X", "hall_id": hall["hall_id"], "starts_at": STARTS,
            "sections": [{"section": "S", "price": 10, "rows": ["A"], "seats_per_row": 10}]}
    with engines["event-service"].connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
    section = {"section": "S", "price": 10, "rows": ["A"], "seats_per_row": 10}
    for bad, code in (({**good, "starts_at": "2001-01-01T20:00:00Z"}, "STARTS_IN_THE_PAST"),
                      ({**good, "sections": []}, "INVALID_INPUT"),
                      ({**good, "sections": [{**section, "price": -1}]}, "INVALID_INPUT"),
                      ({**good, "sections": [{**section, "price": 10.0}]}, "INVALID_INPUT"),
                      ({**good, "name": "   "}, "INVALID_INPUT"),
                      ({**good, "sections": [{**section, "rows": ["A", " A "]}]}, "GRID_INVALID"),
                      ({**good, "sections": [section, {**section, "section": " S"}]}, "GRID_INVALID"),
                      ({**good, "sections": [{**section, "rows": [f"R{i}" for i in range(200)],
                                              "seats_per_row": 200}]}, "GRID_TOO_LARGE"),
                      ({**good, "hall_id": "not-a-hall"}, "INVALID_INPUT")):
        r = api.post("/admin/events", admin, json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (bad, r.text)
    r = api.post("/admin/events", admin, json={**good, "hall_id": str(uuid.uuid4())})
    assert r.status_code == 404, r.text
    with engines["event-service"].connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one() == before


def test_new_prices_apply_to_unsold_seats_only(api):
    admin = admin_token(api)
    _venue, (hall, _other) = venue_with_halls(api, admin)
    event_id = grid_event(api, admin, hall["hall_id"], rows=1, per_row=4, price=50)["event"]["event_id"]
    seats = seat_map(api, event_id)
    fan = register_and_login(api)
    topup(api, fan.user_id, 500)
    order = api.post("/reserve", fan.token, json={"seat_id": seats[0]["seat_id"]}).json()
    assert api.post("/pay", fan.token, json={"order_id": order["order_id"]}).status_code == 200
    r = api.post(f"/admin/events/{event_id}/prices", admin, json={"price": 70, "section": "Stalls"})
    assert r.status_code == 200, r.text
    assert (r.json()["updated"], r.json()["skipped"]) == (3, 1)
    prices = {s["seat_id"]: s["price"] for s in seat_map(api, event_id)}
    assert prices[seats[0]["seat_id"]] == 50 and sorted(prices.values()) == [50, 70, 70, 70]


def test_an_admin_flags_a_fan_grants_credits_once_and_reads_the_ledger_and_the_audit_trail(api):
    admin = admin_token(api)
    admin_id = api.get("/me", admin).json()["user_id"]
    fan = register_and_login(api)
    found = api.get("/admin/users", admin, params={"email": fan.email})
    assert found.status_code == 200 and found.json()["user_id"] == fan.user_id, found.text
    assert api.get("/admin/users", admin, params={"email": "nobody@example.com"}).status_code == 404

    r = api.post(f"/admin/users/{fan.user_id}/flag", admin, json={"flagged": True})
    assert r.status_code == 200 and r.json()["is_flagged"] is True, r.text
    assert api.get("/me", fan.token).json()["is_flagged"] is True

    key = uuid.uuid4().hex
    grants = [api.post(f"/admin/users/{fan.user_id}/credits", admin, json={"amount": 300, "reason": "show delayed"},
                       headers={"Idempotency-Key": key}) for _ in range(3)]
    assert all(g.status_code == 200 for g in grants), [g.text for g in grants]
    assert balance(api, fan.token) == 300
    r = api.post(f"/admin/users/{fan.user_id}/credits", admin, json={"amount": 300, "reason": "x"})
    assert r.status_code == 400, r.text            # no Idempotency-Key: refused, nothing granted
    assert balance(api, fan.token) == 300
    entries = api.get(f"/admin/users/{fan.user_id}/ledger", admin).json()["entries"]
    assert [(e["amount"], e["reason"], e["actor_user_id"]) for e in entries] == [(300, "show delayed", admin_id)]

    r = api.post(f"/admin/users/{fan.user_id}/flag", admin, json={"flagged": False})
    assert r.json()["is_flagged"] is False
    trail = api.get("/admin/audit", admin, params={"target_id": fan.user_id}).json()["actions"]
    assert [a["action"] for a in trail] == ["user.unflag", "user.grant", "user.flag"]
    unflag, grant, flag = trail
    assert all(a["admin_id"] == admin_id and a["outcome"] == "SUCCEEDED" for a in trail)
    assert (flag["before"]["is_flagged"], flag["after"]["is_flagged"]) == (False, True)
    assert (grant["before"]["credit_balance"], grant["after"]["credit_balance"]) == (0, 300)
    assert grant["request"] == {"amount": 300, "reason": "show delayed"}


def test_every_admin_route_answers_403_to_fans_and_scanners_and_changes_nothing(api, engines):
    """Swept from the OpenAPI document, so a new admin route is covered without editing this test."""
    fan = register_and_login(api)
    scanner = login(api, "scanner@demo.test")
    admin_routes = [(m, p, op, schema) for m, p, op, schema in operations(api) if p.startswith("/admin")]
    assert len(admin_routes) >= 15

    def counts():
        with engines["event-service"].connect() as e, engines["user-service"].connect() as u, \
                engines["inventory-service"].connect() as i:
            return (e.execute(sa.text("SELECT count(*), max(updated_at) FROM events")).one(),
                    e.execute(sa.text("SELECT count(*) FROM venues")).scalar_one(),
                    u.execute(sa.text("SELECT count(*) FROM admin_actions")).scalar_one(),
                    u.execute(sa.text("SELECT count(*), sum(amount) FROM credit_ledger")).one(),
                    u.execute(sa.text("SELECT count(*) FROM users WHERE is_flagged")).scalar_one(),
                    i.execute(sa.text("SELECT count(*), sum(price) FROM seats")).one())

    before = counts()
    some_id = fan.user_id
    for method, path, _op, schema in admin_routes:
        url = path.replace("{venue_id}", some_id).replace("{event_id}", some_id).replace("{user_id}", some_id)
        body = {"name": "x", "flagged": True, "amount": 5, "reason": "x", "price": 1} if method == "POST" else None
        for token in (fan.token, scanner):
            r = api.call(method, url, token, json=body, headers={"Idempotency-Key": "k"})
            assert r.status_code == 403 and r.json()["error"]["code"] == "WRONG_ROLE", (method, path, r.text)
        assert api.call(method, url, None, json=body).status_code == 401, (method, path)
    time.sleep(0.5)
    assert counts() == before


def test_an_admins_refund_of_a_fans_order_is_in_the_audit_trail_with_its_outcome(api):
    admin = admin_token(api)
    _venue, (hall, _other) = venue_with_halls(api, admin)
    event_id = grid_event(api, admin, hall["hall_id"], rows=1, per_row=2, price=30)["event"]["event_id"]
    seat = seat_map(api, event_id)[0]["seat_id"]
    fan = register_and_login(api)
    topup(api, fan.user_id, 100)
    order = api.post("/reserve", fan.token, json={"seat_id": seat}).json()["order_id"]
    assert api.post("/pay", fan.token, json={"order_id": order}).status_code == 200
    assert api.post(f"/orders/{order}/refund", admin).json()["status"] == "REFUNDED"
    assert api.post(f"/orders/{order}/cancel", admin).status_code == 404      # not an admin route: admin's own only
    [action] = api.get("/admin/audit", admin, params={"target_id": order}).json()["actions"]
    assert (action["action"], action["outcome"], action["after"]["status"]) == ("order.refund", "SUCCEEDED", "REFUNDED")
    assert balance(api, fan.token) == 100
