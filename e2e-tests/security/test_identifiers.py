"""Identifiers and query integers at the edge (issue: hardening): every id in a public path is a UUID or a 400 naming
it, refused before any remote call; someone else's order, transfer or ticket is answered exactly like a missing one;
query-string integers are plain bounded decimals or a 400 naming the parameter — never a 500."""
import json
import uuid

from e2e_support import log_entries, register_and_login, topup

ID_PATHS = {"event_id": ("/events/{}", "/events/{}/seats"), "order_id": ("/orders/{}",),
            "transfer_id": ("/transfers/{}",), "seat_id": ("/tickets/{}/qr",)}


def _bad_ids(marker: str) -> list[str]:
    """Values that are no UUID, each carrying `marker` (a UUID of its own) so that any trace of it can be found."""
    return [f"{marker}%3Fx%3D1", f"{marker}%2Cseats", f"{marker}%23x", f"{marker}x", marker.replace("-", ""),
            f"%7B{marker}%7D", f"urn:uuid:{marker}", f"{marker[:-1]}%25"]


def _requests_seen(service: str, marker: str) -> list[dict]:
    compact = marker.replace("-", "")
    return [e for e in log_entries(service)
            if marker in json.dumps(e) or compact in json.dumps(e)]


def test_an_id_in_a_path_that_is_no_uuid_is_a_400_naming_it_and_reaches_no_service(api, fan):
    marker = str(uuid.uuid4())
    refused = 0
    for name, templates in ID_PATHS.items():
        for template in templates:
            for bad in _bad_ids(marker):
                r = api.get(template.format(bad), fan.token)
                assert r.status_code == 400, (template, bad, r.status_code, r.text)
                error = r.json()["error"]
                assert error["code"] == "INVALID_INPUT" and error["details"][0]["field"] == name, (template, bad)
                refused += 1
    assert refused == 5 * 8
    # The orchestrator logged each refusal; no service behind it ever saw one of these values.
    for service in ("event-service", "order-service", "user-service", "inventory-service"):
        assert _requests_seen(service, marker) == [], service


def test_an_escaped_slash_in_a_path_separates_segments_and_never_reaches_another_fans_data(api, fan, fresh_event):
    """The edge's WSGI server decodes `%2F` before routing (as PEP 3333 has it), so `/orders/<id>%2Fx` is the path
    `/orders/<id>/x`: no route (a 404 in the error format), and an id followed by `%2Fseats` is that event's seat
    map, the same answer as the literal path. Nothing is a 500, and the fan's own checks apply as on any path."""
    ev = fresh_event(seats=1)
    escaped, literal = api.get(f"/events/{ev.event_id}%2Fseats"), api.get(f"/events/{ev.event_id}/seats")
    assert escaped.status_code == literal.status_code == 200 and escaped.json() == literal.json()
    for path in (f"/orders/{uuid.uuid4()}%2Fx", f"/tickets/{uuid.uuid4()}%2Fx/qr", f"/transfers/{uuid.uuid4()}%2F"):
        r = api.get(path, fan.token)
        assert r.status_code == 404 and r.json()["error"]["code"], (path, r.status_code, r.text)


def test_an_upper_case_uuid_is_the_same_id(api, fresh_event):
    ev = fresh_event(seats=1)
    r = api.get(f"/events/{ev.event_id.upper()}")
    assert r.status_code == 200 and r.json()["event_id"] == ev.event_id
    assert api.get(f"/events/{ev.event_id.upper()}/seats").json()["event_id"] == ev.event_id


def test_ids_in_bodies_that_are_no_uuid_are_400_naming_them(api, fan):
    marker = str(uuid.uuid4())
    for path, field in (("/reserve", "seat_id"), ("/pay", "order_id"), ("/transfer/cancel", "transfer_id")):
        for bad in (f"{marker}?x=1", f"{marker}/x", marker.replace("-", ""), f"{{{marker}}}"):
            r = api.post(path, fan.token, json={field: bad})
            assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == field, (path, bad, r.text)
    for service in ("order-service", "inventory-service", "user-service"):
        assert _requests_seen(service, marker) == [], service


def _same_404(answers) -> None:
    assert [r.status_code for r in answers] == [404] * len(answers), [r.text for r in answers]
    assert len({json.dumps(r.json(), sort_keys=True) for r in answers}) == 1, [r.text for r in answers]


def test_someone_elses_order_transfer_or_ticket_is_answered_exactly_like_a_missing_one(api, fresh_event):
    """No existence oracle: a stranger cannot tell another fan's id from an id that names nothing."""
    ev = fresh_event(seats=2, price=50)
    seller, buyer, stranger = (register_and_login(api) for _ in range(3))
    topup(api, seller.user_id, 100)
    order_id = api.post("/reserve", seller.token, json={"seat_id": ev.seat_ids[0]}).json()["order_id"]
    assert api.post("/pay", seller.token, json={"order_id": order_id}).status_code == 200
    r = api.post("/transfer/initiate", seller.token,
                 json={"seat_id": ev.seat_ids[0], "buyer_email": buyer.email, "amount": 0})
    assert r.status_code == 201, r.text
    transfer_id = r.json()["transfer_id"]

    _same_404([api.get(f"/orders/{order_id}", stranger.token), api.get(f"/orders/{uuid.uuid4()}", stranger.token)])
    _same_404([api.get(f"/transfers/{transfer_id}", stranger.token),
               api.get(f"/transfers/{uuid.uuid4()}", stranger.token)])
    _same_404([api.get(f"/tickets/{ev.seat_ids[0]}/qr", stranger.token),
               api.get(f"/tickets/{uuid.uuid4()}/qr", stranger.token)])
    for path in ("/transfer/cancel", "/transfer/codes"):
        _same_404([api.post(path, stranger.token, json={"transfer_id": transfer_id}),
                   api.post(path, stranger.token, json={"transfer_id": str(uuid.uuid4())})])
    # The owners still see their own.
    assert api.get(f"/orders/{order_id}", seller.token).status_code == 200
    assert api.get(f"/transfers/{transfer_id}", buyer.token).status_code == 200


PAGED = ("/events", "/venues", "/me/orders", "/me/transfers")
NOT_A_PAGE_INTEGER = ["1.0", "1.5", " 5", "+5", "5_0", "0x10", "1e3", "abc", "", "-1", "9" * 20, str(2**63),
                      str(2**64), "99999999999999999999999999"]


def test_query_integers_that_are_not_bounded_decimals_are_400_naming_the_parameter(api, fan):
    answers = 0
    for path in PAGED:
        for param in ("limit", "offset"):
            for value in NOT_A_PAGE_INTEGER:
                r = api.get(path, fan.token, params={param: value})
                assert r.status_code == 400, (path, param, value, r.status_code, r.text)
                assert r.json()["error"]["details"][0]["field"] == param, (path, param, value)
                answers += 1
        for limit, offset in (("1", "0"), ("200", "1000000")):
            assert api.get(path, fan.token, params={"limit": limit, "offset": offset}).status_code == 200, path
    assert answers == len(PAGED) * 2 * len(NOT_A_PAGE_INTEGER)
