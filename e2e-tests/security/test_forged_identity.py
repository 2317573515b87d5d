"""Case 18 of the reliability cases (docs/security.md): forged identity and gateway bypass. Headers a gateway
would set (`X-User-Id`, `X-Consumer-*`, `X-Internal-Token`) never make a caller someone: the public API takes
identity from a verified JWT only, and every internal route and RPC of user-, order-, event- and
inventory-service refuses a caller without the internal credential, or with a wrong one, with 401."""
from __future__ import annotations

import socket
import time
import uuid

import grpc
import jwt
import pytest
import requests
from trproto import inventory_pb2

from trcommon.settings import DEV_INTERNAL_TOKEN
from trcontracts import events, orders, users
from trcontracts.base import HEALTH, Route

from e2e_support import books, changes, login, operations, register_and_login, topup

ADMIN = "admin@demo.test"


def forged_headers(victim_id: str, internal_token: str) -> dict:
    return {"X-User-Id": victim_id, "X-Consumer-Id": victim_id, "X-Consumer-Custom-Id": victim_id,
            "X-Consumer-Username": "admin@demo.test", "X-Authenticated-Userid": victim_id,
            "X-Credential-Identifier": victim_id, "X-Anonymous-Consumer": "false", "X-User-Role": "admin",
            "X-Internal-Token": internal_token}


def forged_token(sub: str, role: str = "admin") -> str:
    now = int(time.time())
    return jwt.encode({"iss": "ticketremaster", "sub": sub, "role": role, "typ": "access", "iat": now,
                       "exp": now + 600}, "a-secret-this-system-does-not-have-0123456789", algorithm="HS256")


def test_forged_identity_headers_without_a_valid_token_are_refused_on_every_protected_route(api, engines):
    victim = register_and_login(api)
    topup(api, victim.user_id, 500)
    protected = [(m, p) for m, p, op, _ in operations(api) if "security" in op]
    assert protected
    before = books(engines, [victim.user_id])
    accepted, probes = [], 0
    for method, path in protected:
        concrete = path.replace("{", "").replace("}", "")   # any value: refused before the route runs
        concrete = "/".join(str(uuid.uuid4()) if seg.endswith("_id") else seg for seg in concrete.split("/"))
        for internal in ("", DEV_INTERNAL_TOKEN, "forged"):
            for token in (None, forged_token(victim.user_id), forged_token(str(uuid.uuid4()))):
                headers = forged_headers(victim.user_id, internal)
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                r = api.call(method, concrete, headers=headers, json={"seat_id": str(uuid.uuid4())})
                probes += 1
                if r.status_code != 401:
                    accepted.append((method, path, bool(token), internal, r.status_code, r.text[:120]))
    changed = changes(before, books(engines, [victim.user_id]))
    print(f"\nforged identity at the public API: accepted {len(accepted)} of {probes} probes on {len(protected)} "
          f"routes; database changes {len(changed)}")
    assert not accepted, accepted
    assert not changed, changed


def test_a_valid_token_with_forged_identity_headers_is_still_the_tokens_owner(api):
    fan, victim = register_and_login(api), register_and_login(api)
    r = api.get("/me", fan.token, headers=forged_headers(victim.user_id, DEV_INTERNAL_TOKEN))
    assert r.status_code == 200
    assert (r.json()["user_id"], r.json()["role"]) == (fan.user_id, "fan")
    r = api.post("/transfer/resolve", fan.token, headers=forged_headers(victim.user_id, DEV_INTERNAL_TOKEN),
                 json={"transfer_id": str(uuid.uuid4()), "resolution": "x"})
    assert r.status_code == 403


def internal_routes() -> list[tuple[str, Route]]:
    """Every internal HTTP route of the contracts, with the service that serves it."""
    found = []
    for service, module in (("user", users), ("order", orders), ("event", events)):
        found += [(service, v) for v in vars(module).values() if isinstance(v, Route) and v is not HEALTH]
    return found


def test_internal_routes_and_rpcs_refuse_callers_without_the_right_credential(stack, api, engines):
    victim = register_and_login(api)
    topup(api, victim.user_id, 500)
    admin_id = jwt.decode(login(api, ADMIN), options={"verify_signature": False})["sub"]
    routes = internal_routes()
    assert {s for s, _ in routes} == {"user", "order", "event"} and len(routes) > 20
    # A body that would move money, make a user an admin or write an order, were it ever parsed.
    body = {"user_id": victim.user_id, "amount": 10**6, "reference": f"forged-{uuid.uuid4()}", "reason": "forged",
            "role": "admin", "seat_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()), "order_id": str(uuid.uuid4())}
    wrong_credentials = {"none": None, "empty": "", "wrong": "forged", "case changed": DEV_INTERNAL_TOKEN.upper(),
                         "one character off": DEV_INTERNAL_TOKEN[:-1] + "X", "prefix": DEV_INTERNAL_TOKEN[:-1],
                         "as bearer": f"Bearer {DEV_INTERNAL_TOKEN}"}
    before = books(engines, [victim.user_id, admin_id])
    accepted, probes = [], 0
    for service, route in routes:
        port = getattr(stack.ports, service)
        url = f"http://127.0.0.1:{port}" + route.url(**{p: victim.user_id for p in route.path_params})
        for name, credential in wrong_credentials.items():
            headers = {k: v for k, v in forged_headers(victim.user_id, credential or "").items()
                       if credential is not None or k != "X-Internal-Token"}
            if name == "as bearer":
                headers["Authorization"] = headers.pop("X-Internal-Token")
            r = requests.request(route.method, url, headers=headers, timeout=10,
                                 json=body if route.method == "POST" else None)
            probes += 1
            if r.status_code != 401 or r.json()["error"]["code"] != "INTERNAL_CREDENTIAL_REQUIRED":
                accepted.append((service, route.method, route.path, name, r.status_code, r.text[:120]))

    # inventory-service's gRPC methods, every one, with no credential and a wrong one.
    service = inventory_pb2.DESCRIPTOR.services_by_name["Inventory"]
    channel = grpc.insecure_channel(f"127.0.0.1:{stack.ports.inventory}")
    try:
        for method in service.methods:
            call = channel.unary_unary(f"/{service.full_name}/{method.name}", request_serializer=lambda m: m,
                                       response_deserializer=lambda b: b)
            for metadata in ((), (("x-internal-token", "forged"),), (("x-internal-token", ""),),
                             (("x-user-id", victim.user_id),)):
                probes += 1
                try:
                    call(b"", metadata=metadata, timeout=5)
                    accepted.append(("inventory", method.name, metadata, "OK"))
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.UNAUTHENTICATED:
                        accepted.append(("inventory", method.name, metadata, err.code().name))
    finally:
        channel.close()
    changed = changes(before, books(engines, [victim.user_id, admin_id]))
    print(f"\ninternal ports: calls without the right credential accepted {len(accepted)} of {probes} probes "
          f"({len(routes)} HTTP routes x {len(wrong_credentials)} credentials, {len(service.methods)} RPCs x 4); "
          f"database changes {len(changed)}")
    assert not accepted, accepted
    assert not changed, changed
    # Control: the same route with the credential answers, so the 401s were about the credential.
    r = requests.get(f"http://127.0.0.1:{stack.ports.user}" + users.GET_USER.url(user_id=victim.user_id),
                     headers={"X-Internal-Token": DEV_INTERNAL_TOKEN}, timeout=10)
    assert r.status_code == 200 and r.json()["user_id"] == victim.user_id


def outward_address() -> str | None:
    """This machine's address on its network (not loopback), or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))   # TEST-NET-1: no packet is sent for a UDP connect
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_internal_services_listen_on_loopback_only(stack):
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    internal = {"user-service": stack.ports.user, "order-service": stack.ports.order,
                "event-service": stack.ports.event, "inventory-service": stack.ports.inventory}
    reachable = []
    for name, port in internal.items():
        with socket.socket() as s:
            s.settimeout(2)
            if s.connect_ex(("127.0.0.1", port)) != 0:
                raise AssertionError(f"{name} does not answer on loopback: the probe below would prove nothing")
        with socket.socket() as s:
            s.settimeout(2)
            if s.connect_ex((address, port)) == 0:
                reachable.append((name, address, port))
    print(f"\ninternal service ports reachable from {address}: {len(reachable)} of {len(internal)}")
    assert not reachable, reachable
