"""The deployment files say what users rely on: docker-compose.yml, kong/kong.yml and the service Dockerfiles.

No Docker engine or Kong is needed: the files are parsed and checked against the public API and deployment described in docs/design.md, the
Makefile, rabbitmq/ and the shared settings. Kong's route matching is emulated as the traditional_compatible router
does it: a path starting with `~` is a regex anchored at the start, any other path is a prefix. Every service image
builds on one shared base, docker/base.Dockerfile, which docker-compose.yml builds as the build-only `base` service
and hands to each service build as its `base` context.
"""
from __future__ import annotations

import base64
import hashlib
import re
import shlex
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from limits import parse_many

from trcommon import settings as trsettings
from trcommon.devstack import GRANIAN_LOGGING, HTTP1_BUFFER_BYTES
from trcommon.logs import REQUEST_ID_HEADER

ROOT = Path(__file__).resolve().parents[2]

# folder -> (python package, database service, <PREFIX>_DATABASE_URL prefix); orchestrator has no database.
SERVICES = {
    "event-service": ("event_service", "events-db", "EVENTS"),
    "user-service": ("user_service", "users-db", "USERS"),
    "order-service": ("order_service", "orders-db", "ORDERS"),
    "inventory-service": ("inventory_service", "seats-db", "SEATS"),
    "orchestrator-service": ("orchestrator_service", None, None),
}

# The public API. {id} is filled with several id shapes.
PUBLIC_ENDPOINTS = [
    ("POST", "/auth/register"), ("POST", "/auth/login"), ("POST", "/auth/refresh"),
    ("GET", "/events"), ("GET", "/events/{id}"), ("GET", "/events/{id}/seats"),
    ("POST", "/webhooks/stripe"), ("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/docs"),
    ("GET", "/verify/keys"), ("GET", "/scanner"), ("GET", "/scanner/static/scanner.js"), ("GET", "/venues"),
]
PROTECTED_ENDPOINTS = [
    ("GET", "/me"), ("GET", "/me/orders"), ("GET", "/me/tickets"), ("GET", "/orders/{id}"),
    ("POST", "/orders/{id}/cancel"), ("POST", "/orders/{id}/refund"),
    ("GET", "/tickets/{seat_id}/qr"), ("POST", "/reserve"), ("POST", "/pay"), ("POST", "/transfer/initiate"),
    ("POST", "/transfer/confirm"), ("POST", "/transfer/cancel"), ("POST", "/transfer/dispute"),
    ("POST", "/transfer/reverse"), ("POST", "/transfer/resolve"), ("POST", "/transfer/codes"), ("GET", "/transfers/{id}"), ("GET", "/me/transfers"), ("POST", "/verify"),
    ("POST", "/credits/topup"), ("GET", "/me/notifications"),
    # the admin API (role admin, checked by the orchestrator)
    ("POST", "/admin/venues"), ("POST", "/admin/venues/{id}/halls"), ("GET", "/admin/events"),
    ("POST", "/admin/events"), ("POST", "/admin/events/{id}/publish"), ("POST", "/admin/events/{id}/cancel"),
    ("POST", "/admin/events/{id}/prices"), ("GET", "/admin/events/{id}/sales"), ("GET", "/admin/events/{id}/gate"),
    ("GET", "/admin/users"), ("GET", "/admin/users/{id}"), ("POST", "/admin/users/{id}/flag"),
    ("POST", "/admin/users/{id}/credits"), ("GET", "/admin/users/{id}/ledger"), ("GET", "/admin/audit"),
]
# Internal service endpoints: never routed.
INTERNAL_REQUESTS = [
    ("GET", "/internal"), ("GET", "/internal/"), ("POST", "/internal/credits/deduct"),
    ("GET", "/internal/users/1/risk"), ("GET", "/internalize"), ("POST", "/credits/deduct"), ("POST", "/orders"),
    ("POST", "/transfers"), ("GET", "/transfers"), ("GET", "/users/42/risk"), ("POST", "/otp/send"),
    ("GET", "/events/1/internal"), ("GET", "/me/internal"), ("DELETE", "/me"),
]
SAMPLE_IDS = [str(uuid.UUID(int=7)), "42", "demo-concert_1"]


def load_yaml(relative: str):
    return yaml.safe_load((ROOT / relative).read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml("docker-compose.yml")


@pytest.fixture(scope="module")
def kong() -> dict:
    return load_yaml("kong/kong.yml")


def default_of(value: str) -> str:
    """`${VAR:-default}` -> default (what runs when the host does not set VAR)."""
    m = re.fullmatch(r"\$\{(\w+):-(.*)\}", str(value))
    assert m, f"{value!r} is not of the form ${{VAR:-default}}"
    return m.group(2)


def interpolate_defaults(value: str) -> str:
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))


BASE_DOCKERFILE = "docker/base.Dockerfile"
BASE_SERVICE = "base"  # the build-only compose service that builds BASE_DOCKERFILE


def dockerfile_path(folder: str) -> Path:
    """A service folder's Dockerfile, or the shared base for BASE_DOCKERFILE itself."""
    return ROOT / BASE_DOCKERFILE if folder == BASE_DOCKERFILE else ROOT / folder / "Dockerfile"


def dockerfile_instructions(folder: str) -> list[tuple[str, str]]:
    text = dockerfile_path(folder).read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def protoc_args(command: str) -> list[str]:
    tokens = shlex.split(command)
    start = tokens.index("grpc_tools.protoc") + 1
    args = []
    for token in tokens[start:]:
        if token in ("&&", ";"):
            break
        args.append(token)
    return args


def makefile_protoc_args() -> list[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if "grpc_tools.protoc" in ln)
    return [a.replace("$(GEN)", "build/gen") for a in protoc_args(line)]


# ---- Dockerfiles ---------------------------------------------------------------------------------------------------

def copy_sources(instructions: list[tuple[str, str]]) -> set[str]:
    """What COPY/ADD take from the build context (not from another stage)."""
    sources = set()
    for keyword, rest in instructions:
        if keyword in ("COPY", "ADD") and not rest.startswith("--from"):
            *srcs, _dest = [a for a in shlex.split(rest) if not a.startswith("--")]
            sources.update(s.rstrip("/") for s in srcs)
    return sources


def stages(folder: str) -> list[str]:
    return [rest.split()[0] for keyword, rest in dockerfile_instructions(folder) if keyword == "FROM"]


def stage_instructions(folder: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(stage name or image, its instructions) for each FROM of a Dockerfile."""
    found: list[tuple[str, list[tuple[str, str]]]] = []
    for keyword, rest in dockerfile_instructions(folder):
        if keyword == "FROM":
            words = rest.split()
            found.append((words[2] if len(words) == 3 and words[1].upper() == "AS" else words[0], []))
        elif found:
            found[-1][1].append((keyword, rest))
    return found


# The one front-end build stage a service image has before its `FROM base` stage, and what that stage takes
# from the build context: the orchestrator builds the gate page (web/scanner) as `make static` does.
PAGE_STAGE = "scanner-page"
PAGE_SOURCES = {"web/scanner/package.json", "web/scanner/package-lock.json", "web/scanner/build.mjs",
                "web/scanner/src"}
PAGE_STAGES = {"orchestrator-service": (PAGE_STAGE, PAGE_SOURCES)}


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_every_service_folder_has_a_dockerfile_that_copies_only_its_own_folder(folder):
    instructions = dockerfile_instructions(folder)
    extra = PAGE_STAGES.get(folder, (None, set()))[1]
    assert copy_sources(instructions) == {folder} | extra
    (_, final), *_ = reversed(stage_instructions(folder))
    assert copy_sources(final) == {folder}, "the service stage takes only its own folder from the context"
    assert not any(keyword == "ADD" for keyword, _ in instructions), "use COPY, not ADD"


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_every_service_image_builds_on_the_shared_base(folder):
    page_stage = [PAGE_STAGES[folder][0]] if folder in PAGE_STAGES else []
    assert [name for name, _ in stage_instructions(folder)] == page_stage + [BASE_SERVICE], \
        "one service stage, FROM the `base` build context, after the page build stage if any"
    runs = [rest for keyword, rest in dockerfile_instructions(folder) if keyword == "RUN"]
    assert not any("grpc_tools.protoc" in rest for rest in runs), "the base generates trproto, not the service"


def test_the_orchestrator_image_builds_the_gate_page_like_make_static_where_the_settings_look():
    from orchestrator_service.settings import ROOT as SETTINGS_ROOT, OrchestratorSettings

    (stage, page), (_, service) = stage_instructions("orchestrator-service")
    assert stage == PAGE_STAGE
    image = next(rest.split()[0] for keyword, rest in dockerfile_instructions("orchestrator-service")
                 if keyword == "FROM")
    assert image == "${NODE_IMAGE}"
    assert re.search(r"^ARG NODE_IMAGE=node:\d+-slim$", dockerfile_path("orchestrator-service").read_text(), re.M)
    runs = [rest for keyword, rest in page if keyword == "RUN"]
    assert runs[0].startswith("npm ci"), "exactly the packages of the lock file"
    out = re.fullmatch(r"node build\.mjs (\S+)/scanner", runs[-1]).group(1)
    makefile = (ROOT / "Makefile").read_text()
    assert "npm ci" in makefile and 'node build.mjs "$(CURDIR)/$(STATIC)/scanner"' in makefile
    assert re.search(r"^STATIC := build/static$", makefile, re.M)
    (copied,) = [shlex.split(rest) for keyword, rest in service if keyword == "COPY" and "--from" in rest]
    assert copied[0] == f"--from={PAGE_STAGE}" and copied[1].rstrip("/") == out
    # /app (the image's WORKDIR) stands where the repository root does, so the default is right in both.
    assert Path(copied[2]) == OrchestratorSettings().static_dir.relative_to(SETTINGS_ROOT) == Path("build/static")
    assert "**/node_modules" in (ROOT / ".dockerignore").read_text().splitlines()


def test_the_base_copies_the_shared_files_and_no_service_folder():
    instructions = dockerfile_instructions(BASE_DOCKERFILE)
    assert copy_sources(instructions) == {"requirements.txt", "proto", "libs", "rabbitmq"}
    assert not copy_sources(instructions) & set(SERVICES)
    assert not any(keyword == "ADD" for keyword, _ in instructions), "use COPY, not ADD"
    copied_from_build = {shlex.split(rest)[-1].rstrip("/") for keyword, rest in instructions
                         if keyword == "COPY" and rest.startswith("--from=build")}
    assert copied_from_build == {"/opt/venv", "build/gen"}


def test_the_base_generates_the_grpc_code_like_make_proto():
    runs = [rest for keyword, rest in dockerfile_instructions(BASE_DOCKERFILE)
            if keyword == "RUN" and "grpc_tools.protoc" in rest]
    assert len(runs) == 1, "the image generates trproto exactly once"
    assert protoc_args(runs[0]) == makefile_protoc_args()
    assert "touch build/gen/trproto/__init__.py" in runs[0]


def test_the_base_is_python_311_slim_and_creates_the_non_root_user():
    instructions = dockerfile_instructions(BASE_DOCKERFILE)
    text = dockerfile_path(BASE_DOCKERFILE).read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    assert stages(BASE_DOCKERFILE) and all(s == "${PYTHON_IMAGE}" for s in stages(BASE_DOCKERFILE))
    assert any(keyword == "RUN" and "useradd" in rest and " app" in rest for keyword, rest in instructions)
    assert [rest for keyword, rest in instructions if keyword == "USER"][-1:] == ["app"], "the base ends as `app`"
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in env and "PATH=/opt/venv/bin:" in env
    assert [rest for keyword, rest in instructions if keyword == "WORKDIR"][-1] == "/app"


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_every_image_runs_as_a_non_root_user_and_finds_its_code(folder):
    instructions = dockerfile_instructions(folder)
    # The base's last USER holds unless the service Dockerfile sets another.
    users = [rest for keyword, rest in dockerfile_instructions(BASE_DOCKERFILE) + instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the server must not run as root"
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    pythonpath = re.search(r"PYTHONPATH=(\S+)", env).group(1).split(":")
    assert pythonpath == ["/app/libs", "/app/build/gen", f"/app/{folder}", "/app"]
    assert any(keyword == "EXPOSE" for keyword, _ in instructions)
    assert any(keyword == "CMD" for keyword, _ in instructions)


@pytest.mark.parametrize("folder", [f for f, (_, db, _) in SERVICES.items() if db])
def test_database_services_migrate_and_seed_at_start_before_the_server(folder):
    cmd = next(rest for keyword, rest in dockerfile_instructions(folder) if keyword == "CMD")
    migrate = cmd.find(f"python -m trcommon.manage migrate {folder}")
    seed = cmd.find(f"python -m trcommon.manage seed {folder}")
    server = cmd.find("exec ")
    assert -1 < migrate < seed < server, cmd


@pytest.mark.parametrize("folder", [f for f in SERVICES if f != "inventory-service"])
def test_every_http_image_runs_granian_as_the_local_stack_does(folder):
    """The one WSGI server, with the request-head limit and the JSON log lines of `make run` (trcommon.devstack)."""
    cmd = next(rest for keyword, rest in dockerfile_instructions(folder) if keyword == "CMD")
    words = cmd.replace('", "', " ").replace('["', "").replace('"]', "")
    assert "granian --interface wsgi --factory" in words, cmd
    assert f"--http1-buffer-size {HTTP1_BUFFER_BYTES}" in words, cmd
    assert f"--log-config {GRANIAN_LOGGING}" in words, cmd
    assert "gunicorn" not in words


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    patterns = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")}
    assert {".venv", "build", ".git", ".pytest_cache", "bench/results"} <= patterns
    assert {"__pycache__", "**/__pycache__"} & patterns


# ---- docker-compose.yml --------------------------------------------------------------------------------------------

def published_ports(service: dict) -> set[int]:
    ports = set()
    for spec in service.get("ports", []):
        if isinstance(spec, dict):
            ports.add(int(spec["target"]))
        else:
            ports.add(int(str(spec).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def long_running(compose: dict) -> dict:
    """Every compose service but the build-only base."""
    return {name: s for name, s in compose["services"].items() if name != BASE_SERVICE}


def test_every_compose_service_has_a_healthcheck(compose):
    for name, service in long_running(compose).items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_python_healthchecks_are_valid_python(compose):
    for name, service in long_running(compose).items():
        test = service["healthcheck"]["test"]
        if test[0] == "CMD" and test[1] == "python":
            assert test[2] == "-c", name
            compile(test[3], f"{name} healthcheck", "exec")


def test_depends_on_waits_for_healthy_services(compose):
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: use the long form of depends_on with a condition"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert spec == {"condition": "service_healthy"}, f"{name} -> {target}: {spec}"
            assert services[target].get("healthcheck"), target


def test_each_service_waits_for_what_it_needs(compose):
    services = compose["services"]

    def needs(name):
        return set(services[name].get("depends_on", {}))

    for folder, (_, db, _) in SERVICES.items():
        if db:
            assert db in needs(folder)
    assert {"seats-db", "rabbitmq", "inventory-service"} <= needs("inventory-release-consumer")
    assert {"users-db", "rabbitmq", "user-service"} <= needs("user-notification-consumer")
    assert {"orders-db", "rabbitmq", "order-service"} <= needs("order-outbox-relay")
    backends = {"rabbitmq", "user-service", "order-service", "event-service", "inventory-service"}
    assert backends <= needs("orchestrator-service")
    assert backends <= needs("orchestrator-worker")
    assert "orchestrator-service" in needs("kong")


def test_only_kong_and_rabbitmq_publish_ports(compose):
    published = {name: published_ports(s) for name, s in compose["services"].items() if published_ports(s)}
    assert published == {"kong": {8000}, "rabbitmq": {5672, 15672}}
    kong_ports = compose["services"]["kong"]["ports"]
    assert [str(p).rsplit(":", 2)[-2] for p in kong_ports] == ["8000"], "Kong's proxy is on the host's port 8000"
    for name, service in compose["services"].items():
        assert service.get("network_mode") != "host", name


def test_the_base_is_a_build_only_service(compose):
    base = compose["services"][BASE_SERVICE]
    assert base["build"] == {"context": ".", "dockerfile": BASE_DOCKERFILE}
    assert base["image"] == "ticketremaster/base:local"
    assert base["restart"] == "no" and base["command"] and not base.get("ports")
    assert not base.get("depends_on")
    assert not any(BASE_SERVICE in s.get("depends_on", {}) for s in compose["services"].values())


def test_services_are_built_from_the_repository_root_with_their_own_dockerfile(compose):
    services = compose["services"]
    for folder in SERVICES:
        assert services[folder]["build"] == {"context": ".", "dockerfile": f"{folder}/Dockerfile",
                                             "additional_contexts": {"base": f"service:{BASE_SERVICE}"}}
    for name, service in long_running(compose).items():
        if "build" in service:
            assert service["build"]["additional_contexts"] == {"base": f"service:{BASE_SERVICE}"}, name
    for extra, folder in (("inventory-release-consumer", "inventory-service"),
                          ("user-notification-consumer", "user-service"),
                          ("order-outbox-relay", "order-service"),
                          ("orchestrator-worker", "orchestrator-service")):
        assert services[extra]["build"] == services[folder]["build"]
        assert services[extra]["image"] == services[folder]["image"]
    assert services["inventory-release-consumer"]["command"] == [
        "python", "-m", "inventory_service.entrypoints.release_consumer"]
    assert services["orchestrator-worker"]["command"] == ["python", "-m", "orchestrator_service.entrypoints.worker"]
    assert services["user-notification-consumer"]["command"] == [
        "python", "-m", "user_service.entrypoints.notification_consumer"]
    assert services["order-outbox-relay"]["command"] == ["python", "-m", "order_service.entrypoints.outbox_relay"]
    assert services["order-outbox-relay"]["environment"]["DATABASE_URL"] == \
        services["order-service"]["environment"]["DATABASE_URL"]


def test_each_service_owns_one_postgres_16_database_and_migrates_the_same_url(compose):
    services = compose["services"]
    for folder, (_, db, prefix) in SERVICES.items():
        if not db:
            continue
        database = services[db]
        assert database["image"] == "postgres:16"
        assert "pg_isready" in " ".join(database["healthcheck"]["test"])
        env = services[folder]["environment"]
        assert env["DATABASE_URL"] == env[f"{prefix}_DATABASE_URL"], folder
        url = urlsplit(interpolate_defaults(env["DATABASE_URL"]))
        assert url.scheme == "postgresql+psycopg" and url.hostname == db and url.port == 5432
        assert url.path.lstrip("/") == database["environment"]["POSTGRES_DB"] == db.replace("-db", "_db")
        assert url.password == interpolate_defaults(database["environment"]["POSTGRES_PASSWORD"])
    volumes = [services[db]["volumes"][0].split(":")[0] for _, db, _ in SERVICES.values() if db]
    assert len(set(volumes)) == 4 and set(volumes) <= set(compose["volumes"])


def test_secrets_come_from_the_host_with_the_shared_development_defaults(compose):
    common = compose["x-common-env"]
    assert default_of(common["JWT_SECRET"]) == trsettings.DEV_JWT_SECRET
    assert len(default_of(common["JWT_SECRET"])) >= 32
    assert default_of(common["INTERNAL_SERVICE_TOKEN"]) == trsettings.DEV_INTERNAL_TOKEN
    assert default_of(common["QR_SIGNING_KEY"]) == trsettings.DEV_QR_SIGNING_KEY
    assert default_of(common["ENVIRONMENT"]) == "development"
    for name, service in long_running(compose).items():
        if "build" in service:
            for key in ("JWT_SECRET", "INTERNAL_SERVICE_TOKEN", "ENVIRONMENT"):
                assert service["environment"][key] == common[key], f"{name}: {key}"


def test_the_orchestrator_reaches_every_backend_by_its_compose_name(compose):
    services = compose["services"]
    env = services["orchestrator-service"]["environment"]
    worker_env = services["orchestrator-worker"]["environment"]
    assert {k: v for k, v in worker_env.items() if k != "WORKER_HEARTBEAT_FILE"} == env
    # The worker's health check reads the heartbeat file the worker is told to touch.
    assert worker_env["WORKER_HEARTBEAT_FILE"] in services["orchestrator-worker"]["healthcheck"]["test"][3]
    for key, target, port in (("USER_SERVICE_URL", "user-service", 8001), ("ORDER_SERVICE_URL", "order-service", 8002),
                              ("EVENT_SERVICE_URL", "event-service", 8003)):
        assert env[key] == f"http://{target}:{port}"
        cmd = next(rest for kw, rest in dockerfile_instructions(target) if kw == "CMD")
        assert f"--host 0.0.0.0 --port {port}" in cmd, target
        assert f"--log-config {GRANIAN_LOGGING}" in cmd and (ROOT / GRANIAN_LOGGING).is_file(), target
        assert f"127.0.0.1:{port}/health" in services[target]["healthcheck"]["test"][3]
    assert env["INVENTORY_GRPC_TARGET"] == "inventory-service:50051"
    assert services["inventory-service"]["environment"]["GRPC_BIND"] == "0.0.0.0:50051"
    for key in ("HOLD_TTL_SECONDS", "QR_TTL_SECONDS", "OTP_TTL_SECONDS", "TRANSFER_TTL_SECONDS", "QR_SIGNING_KEY"):
        default_of(env[key])


def rabbit_password_matches(password_hash: str, password: str) -> bool:
    raw = base64.b64decode(password_hash)
    salt, digest = raw[:4], raw[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


def test_rabbitmq_mounts_the_repository_topology_and_loads_it_at_boot(compose):
    rabbit = compose["services"]["rabbitmq"]
    assert rabbit["image"] == "rabbitmq:3.13-management"
    mounts = {}
    for volume in rabbit["volumes"]:
        source, target, *mode = volume.split(":")
        mounts[source] = (target, mode)
    assert mounts["./rabbitmq/rabbitmq.conf"] == ("/etc/rabbitmq/rabbitmq.conf", ["ro"])
    definitions_target, mode = mounts["./rabbitmq/definitions.json"]
    assert mode == ["ro"]
    conf = dict(
        (k.strip(), v.strip()) for k, _, v in
        (ln.partition("=") for ln in (ROOT / "rabbitmq" / "rabbitmq.conf").read_text().splitlines()
         if ln.strip() and not ln.lstrip().startswith("#"))
    )
    assert conf["load_definitions"] == definitions_target
    assert rabbit["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]


def test_services_use_the_broker_account_the_definitions_create(compose):
    users = {u["name"]: u for u in load_yaml("rabbitmq/definitions.json")["users"]}
    urls = {s["environment"]["AMQP_URL"] for s in compose["services"].values() if "AMQP_URL" in s.get("environment", {})}
    assert urls == {"amqp://ticketremaster:ticketremaster@rabbitmq:5672/%2F"}
    url = urlsplit(urls.pop())
    user = users[unquote(url.username)]
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert rabbit_password_matches(user["password_hash"], unquote(url.password))
    for name in ("orchestrator-service", "orchestrator-worker", "inventory-release-consumer",
                 "user-notification-consumer", "order-outbox-relay"):
        assert "AMQP_URL" in compose["services"][name]["environment"], name


def test_kong_runs_db_less_from_the_repository_file_without_an_admin_api(compose):
    service = compose["services"]["kong"]
    env = service["environment"]
    assert service["image"] == "kong:3.9"
    assert env["KONG_DATABASE"] == "off"
    assert env["KONG_ADMIN_LISTEN"] == "off" or env["KONG_ADMIN_LISTEN"].startswith("127.0.0.1:")
    assert env.get("KONG_ROUTER_FLAVOR", "traditional_compatible") == "traditional_compatible"
    source, target, *_ = next(v for v in service["volumes"] if v.split(":")[0] == "./kong").split(":")
    config = Path(env["KONG_DECLARATIVE_CONFIG"])
    assert config.parent == Path(target)
    assert (ROOT / source / config.name).is_file()


# ---- kong/kong.yml -------------------------------------------------------------------------------------------------

def routes(kong: dict) -> list[dict]:
    return [r for s in kong["services"] for r in s.get("routes", [])]


def kong_path_matches(route_path: str, path: str) -> bool:
    if route_path.startswith("~"):
        return re.match("^" + route_path[1:], path) is not None
    return path.startswith(route_path)


def matching_routes(kong: dict, method: str, path: str) -> list[dict]:
    return [r for r in routes(kong) if (not r.get("methods") or method in r["methods"])
            and any(kong_path_matches(p, path) for p in r.get("paths", []))]


def plugin_names(route: dict) -> set[str]:
    return {p["name"] for p in route.get("plugins", []) if p.get("enabled", True)}


def concrete(path: str) -> list[str]:
    if "{" not in path:
        return [path]
    return [re.sub(r"\{\w+\}", sample, path) for sample in SAMPLE_IDS]


def test_kong_sends_everything_to_the_orchestrator_unchanged(kong, compose):
    assert kong["_format_version"] == "3.0"
    assert [(s["name"], s["url"]) for s in kong["services"]] == [("orchestrator", "http://orchestrator-service:8080")]
    assert "orchestrator-service" in compose["services"]
    for route in routes(kong):
        assert route["strip_path"] is False, route["name"]
        assert route.get("paths") and not route.get("hosts"), route["name"]


def test_every_public_path_of_the_spec_is_routed_without_a_token(kong):
    for method, path in PUBLIC_ENDPOINTS:
        for concrete_path in concrete(path):
            found = matching_routes(kong, method, concrete_path)
            assert found, f"{method} {concrete_path} is not routed"
            assert all("jwt" not in plugin_names(r) for r in found), f"{method} {concrete_path} asks for a token"


def test_every_protected_path_of_the_spec_is_routed_only_through_the_jwt_plugin(kong):
    for method, path in PROTECTED_ENDPOINTS:
        for concrete_path in concrete(path):
            found = matching_routes(kong, method, concrete_path)
            assert found, f"{method} {concrete_path} is not routed"
            assert all("jwt" in plugin_names(r) for r in found), f"{method} {concrete_path} is reachable without a token"


def test_the_endpoint_lists_here_cover_the_spec_table():
    spec = ROOT.parent / "shared" / "SPEC.md"
    if not spec.is_file():
        pytest.skip("shared/SPEC.md is not beside the repository")
    text = spec.read_text()
    section = text[text.index("## 6."):text.index("## 7.")]
    listed = {(m, p) for m, p in PUBLIC_ENDPOINTS + PROTECTED_ENDPOINTS}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.match(r"(GET|POST|PUT|PATCH|DELETE) /", cells[0]):
            continue
        public = cells[1].split(" (")[0] in ("anyone", "Stripe")
        for method, path in re.findall(r"(GET|POST|PUT|PATCH|DELETE) (/[^\s,`]*)", cells[0]):
            assert (method, path) in listed, f"{method} {path} of the public API table is not checked here"
            assert ((method, path) in PUBLIC_ENDPOINTS) == public, f"{method} {path}: who = {cells[1]}"


def test_no_route_matches_an_internal_path(kong):
    for method, path in INTERNAL_REQUESTS:
        assert not matching_routes(kong, method, path), f"{method} {path} is routable"
    for route in routes(kong):
        for route_path in route["paths"]:
            # A prefix route would match everything below it; every route is one exact regex path.
            assert route_path.startswith("~/") and route_path.endswith("$"), route_path
            assert not kong_path_matches(route_path, "/internal") and not route_path.startswith("~/internal")


def jwt_instances(kong: dict) -> list[dict]:
    found = [p for r in routes(kong) for p in r.get("plugins", []) if p["name"] == "jwt"]
    assert found
    return found


def test_the_jwt_plugin_verifies_exp_and_reads_only_the_authorization_header(kong):
    for plugin in jwt_instances(kong):
        config = plugin["config"]
        assert "exp" in config["claims_to_verify"]
        assert config["key_claim_name"] == "iss"
        assert [h.lower() for h in config["header_names"]] == ["authorization"]
        assert config["uri_param_names"] == [] and config["cookie_names"] == []
        assert 0 < config["maximum_expiration"] <= 3600
        assert not config.get("anonymous")
    # Never global or on the service: the public routes must stay reachable without a token.
    assert all(p["name"] != "jwt" for p in kong.get("plugins", []))
    assert all(p["name"] != "jwt" for s in kong["services"] for p in s.get("plugins", []))


def test_the_kong_credential_is_our_token_issuer_with_the_development_secret(kong):
    credentials = [c for consumer in kong["consumers"] for c in consumer.get("jwt_secrets", [])]
    assert len(credentials) == 1
    credential = credentials[0]
    assert credential["key"] == trsettings.CommonSettings.model_fields["jwt_issuer"].default
    assert credential["algorithm"] == "HS256"
    assert credential["secret"] == trsettings.DEV_JWT_SECRET


def test_rate_limits_are_per_client_ip_and_tighter_on_login_and_register(kong):
    global_limits = [p for p in kong["plugins"] if p["name"] == "rate-limiting"]
    assert len(global_limits) == 1
    limit = global_limits[0]["config"]
    everywhere = [limit] + [p["config"] for r in routes(kong) for p in r.get("plugins", []) if p["name"] == "rate-limiting"]
    for config in everywhere:
        assert config["limit_by"] == "ip" and config["policy"] == "local"
    for path in ("/auth/login", "/auth/register"):
        (route,) = matching_routes(kong, "POST", path)
        (own,) = [p["config"] for p in route.get("plugins", []) if p["name"] == "rate-limiting"]
        assert own["minute"] < limit["minute"], path


def test_the_request_id_starts_at_the_gateway(kong):
    (plugin,) = [p for p in kong["plugins"] if p["name"] == "correlation-id"]
    assert plugin["config"]["header_name"] == REQUEST_ID_HEADER
    assert plugin["config"]["echo_downstream"] is True


KONG_WINDOWS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


def kong_numbers(setting: str) -> dict[str, int]:
    """A rate limit setting's default (`30/minute`, `5/minute;20/hour`) as Kong's rate-limiting config writes it."""
    from orchestrator_service.settings import OrchestratorSettings

    default = OrchestratorSettings.model_fields[setting].default
    numbers = {}
    for item in parse_many(default):
        seconds = item.get_expiry()
        assert seconds in KONG_WINDOWS, f"{setting}={default}: Kong counts per second, minute, hour or day only"
        numbers[KONG_WINDOWS[seconds]] = item.amount
    return numbers


def kong_limits(config: dict) -> dict[str, int]:
    return {window: config[window] for window in KONG_WINDOWS.values() if config.get(window) is not None}


def test_kong_limits_per_ip_with_the_numbers_the_orchestrator_uses_at_the_edge(kong):
    """One set of numbers: Kong in containers and the orchestrator locally refuse the same client at the same
    count (README, Settings)."""
    (overall,) = [p["config"] for p in kong["plugins"] if p["name"] == "rate-limiting"]
    assert kong_limits(overall) == kong_numbers("rate_limit_per_ip")
    for path in ("/auth/login", "/auth/register"):
        (route,) = matching_routes(kong, "POST", path)
        (own,) = [p["config"] for p in route.get("plugins", []) if p["name"] == "rate-limiting"]
        assert kong_limits(own) == kong_numbers("rate_limit_auth_per_ip"), path


def test_the_orchestrator_behind_kong_takes_the_client_address_from_kong(compose):
    env = compose["services"]["orchestrator-service"]["environment"]
    assert env["FORWARDED_PROXIES"] == "1"
    assert default_of(env["RATE_LIMIT_STORAGE_URL"]) == "memory://"
