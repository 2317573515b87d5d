"""Case 19 of the reliability cases (docs/security.md): broken object-level authorization. User A uses user B's
ids — orders, seats (tickets and their gate codes), transfers — on every route of the OpenAPI document that
takes one, in its path or in its body: every answer is 403/404 (409/410 for a write on a seat or offer that is
not free), carries none of B's data, and nothing changes in any database."""
from __future__ import annotations

import json
import uuid

from e2e_support import books, changes, operations, register_and_login, topup

# An answer that refuses without saying more (writes may also find the seat or offer not free).
REFUSED_READ = {403, 404}
REFUSED_WRITE = {403, 404, 409, 410}


def victim_with_everything(api, fresh_event):
    """B owns a paid ticket that B is offering to C, and holds a second seat with an unpaid order."""
    ev = fresh_event(seats=4, price=60)
    b, c = register_and_login(api), register_and_login(api)
    topup(api, b.user_id, 1000)
    paid = api.post("/reserve", b.token, json={"seat_id": ev.seat_ids[0]}).json()["order_id"]
    assert api.post("/pay", b.token, json={"order_id": paid}).status_code == 200
    pending = api.post("/reserve", b.token, json={"seat_id": ev.seat_ids[1]}).json()["order_id"]
    r = api.post("/transfer/initiate", b.token, json={"seat_id": ev.seat_ids[0], "buyer_email": c.email, "amount": 10})
    assert r.status_code == 201, r.text
    ids = {"order_id": [paid, pending], "seat_id": ev.seat_ids[:2], "transfer_id": [r.json()["transfer_id"]]}
    return ev, b, c, ids


def secret_values(*fans) -> set[str]:
    return {v for f in fans for v in (f.user_id, f.email, f.phone)}


def carries_data(r, secrets: set[str]) -> bool:
    """Anything but an error document, or an error that names the other fans."""
    try:
        body = r.json()
    except ValueError:
        return True
    return not (isinstance(body, dict) and set(body) == {"error"}) or any(s in r.text for s in secrets)


def filler(name: str, schema: dict, ids: dict, ev, extra: dict):
    """A valid value for a body field that is not the id under test."""
    if name in ids:
        return ids[name][0]
    if name in extra:
        return extra[name]
    if name.endswith("hall_id"):
        return ev.hall_id
    if schema.get("type") == "integer":
        return schema.get("minimum", 0)
    if "pattern" in schema and "\\d" in schema["pattern"]:
        return "123456"
    return "probe"


def test_a_fan_cannot_read_or_act_on_another_fans_orders_tickets_or_transfers(api, fresh_event, engines):
    a = register_and_login(api)
    topup(api, a.user_id, 1000)
    ev, b, c, ids = victim_with_everything(api, fresh_event)
    extra = {"buyer_email": c.email, "qr": api.get(f"/tickets/{ids['seat_id'][0]}/qr", b.token).json()["qr"]}
    # The admin API acts on organizers' objects, not fans': role-gated, swept by test_bfla and test_admin.
    ops = [(m, p, op, body) for m, p, op, body in operations(api) if "security" in op and not p.startswith("/admin")]

    # The id-taking routes, from the document: a path parameter (reads, and writes that act on the object the path
    # names: cancel, refund), or a body field naming one of B's objects.
    reads = [(m, p) for m, p, op, _ in ops if "{" in p and m == "GET"]
    path_writes = [(m, p) for m, p, op, _ in ops if "{" in p and m != "GET"]
    writes = [(m, p, body) for m, p, op, body in ops if body and set(body.get("properties", {})) & set(ids)]
    unknown = {seg[1:-1] for _, p in reads + path_writes for seg in p.split("/") if seg.startswith("{")} - set(ids)
    assert not unknown, f"a route takes an id this sweep has no victim's value for: {unknown}"
    assert reads and writes and path_writes

    # Control: B's own ids answer B (the probes below use real objects, so a refusal means something).
    for method, path in reads:
        param = path[path.index("{") + 1:path.index("}")]
        for value in ids[param]:
            r = api.call(method, path.replace("{" + param + "}", value), b.token)
            assert r.status_code == 200, (path, value, r.text)

    before = books(engines, [a.user_id, b.user_id, c.user_id], ev.seat_ids)
    secrets = secret_values(b, c)
    leaks, unauthorized, probes = [], [], 0
    for method, path in reads:
        param = path[path.index("{") + 1:path.index("}")]
        for value in ids[param]:
            for accept in ("application/json", "image/png"):
                r = api.call(method, path.replace("{" + param + "}", value), a.token, headers={"Accept": accept})
                probes += 1
                if r.status_code not in REFUSED_READ:
                    unauthorized.append((method, path, value, accept, r.status_code))
                if carries_data(r, secrets):
                    leaks.append((method, path, value, r.text[:200]))
    n_reads = probes
    for method, path in path_writes:        # acting on B's order as A: refused like a read, and nothing changes
        param = path[path.index("{") + 1:path.index("}")]
        for value in ids[param]:
            r = api.call(method, path.replace("{" + param + "}", value), a.token)
            probes += 1
            if r.status_code not in REFUSED_READ:
                unauthorized.append((method, path, value, r.status_code, r.text[:200]))
            if carries_data(r, secrets):
                leaks.append((method, path, value, r.text[:200]))
    for method, path, body in writes:
        props = body.get("properties", {})
        for field in set(props) & set(ids):
            for value in ids[field]:
                payload = {k: filler(k, props[k], ids, ev, extra) for k in body.get("required", [])}
                payload[field] = value
                r = api.call(method, path, a.token, json=payload)
                probes += 1
                if r.status_code not in REFUSED_WRITE:
                    unauthorized.append((method, path, json.dumps(payload), r.status_code, r.text[:200]))
                if carries_data(r, secrets):
                    leaks.append((method, path, field, r.text[:200]))
    changed = changes(before, books(engines, [a.user_id, b.user_id, c.user_id], ev.seat_ids))
    print(f"\nBOLA: unauthorized reads/writes {len(unauthorized)} of {probes} probes ({n_reads} reads on "
          f"{len(reads)} routes, {probes - n_reads} writes on {len(writes) + len(path_writes)} routes); answers "
          f"carrying the other "
          f"fan's data {len(leaks)}; database changes {len(changed)}")
    assert not unauthorized, unauthorized
    assert not leaks, leaks
    assert not changed, changed


def test_another_fans_id_and_an_unknown_id_get_the_same_answer(api, fresh_event):
    """No existence oracle: a stranger cannot tell B's order, ticket or transfer from an id that names nothing."""
    a = register_and_login(api)
    ev, b, c, ids = victim_with_everything(api, fresh_event)
    reads = [(m, p) for m, p, op, _ in operations(api) if "security" in op and "{" in p and not p.startswith("/admin")]
    differing, probes = [], 0
    for method, path in reads:
        param = path[path.index("{") + 1:path.index("}")]
        nothing = str(uuid.uuid4())
        unknown = api.call(method, path.replace("{" + param + "}", nothing), a.token)
        for value in ids[param]:
            r = api.call(method, path.replace("{" + param + "}", value), a.token)
            probes += 1
            # An answer may name the id it was asked about; anything else in it must be the same.
            if (r.status_code, r.text.replace(value, "<id>")) != (unknown.status_code,
                                                                 unknown.text.replace(nothing, "<id>")):
                differing.append((path, r.status_code, r.text[:120], unknown.status_code, unknown.text[:120]))
    print(f"\nBOLA oracle: answers that tell another fan's id from an unknown one {len(differing)} of {probes}")
    for d in differing:
        print("  ", d)
    assert not differing, differing
