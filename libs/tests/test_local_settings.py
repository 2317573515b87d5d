"""The local-mode commands read their configuration only through LocalSettings."""
import re

from trcommon import manage
from trcommon.services import ROOT
from trcommon.settings import DEV_AMQP_URL, LocalSettings, child_environment


def test_by_default_the_four_databases_live_on_the_local_server(monkeypatch):
    for name in ("POSTGRES_URL", "EVENTS_DATABASE_URL", "USERS_DATABASE_URL", "ORDERS_DATABASE_URL",
                 "SEATS_DATABASE_URL", "AMQP_URL", "PORT"):
        monkeypatch.delenv(name, raising=False)
    local = LocalSettings()
    assert manage.database_url("user-service", local) == "postgresql+psycopg://postgres@127.0.0.1:5432/users_db"
    assert (local.amqp_url, local.port, local.public_url) == (DEV_AMQP_URL, 8000, "http://localhost:8000")


def test_postgres_url_moves_every_database_and_a_per_database_url_overrides_one(monkeypatch):
    monkeypatch.setenv("POSTGRES_URL", "postgresql+psycopg://u@db.example:6543/")
    monkeypatch.setenv("SEATS_DATABASE_URL", "postgresql+psycopg://u@seats.example/inventory")
    monkeypatch.setenv("PORT", "9000")
    local = manage.local_settings()
    assert manage.database_url("event-service", local) == "postgresql+psycopg://u@db.example:6543/events_db"
    assert manage.database_url("inventory-service", local) == "postgresql+psycopg://u@seats.example/inventory"
    assert local.public_url == "http://localhost:9000"


def test_a_child_environment_is_this_one_minus_dropped_names_plus_the_given_values(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://parent")
    monkeypatch.setenv("KEEP_ME", "1")
    env = child_environment({"AMQP_URL": "amqp://child"}, drop=["DATABASE_URL"])
    assert "DATABASE_URL" not in env and env["KEEP_ME"] == "1" and env["AMQP_URL"] == "amqp://child"


def test_no_code_outside_the_settings_module_reads_the_environment():
    """Configuration is read only through settings classes (tests and the pytest plugin excepted)."""
    sources = [p for p in (ROOT / "libs" / "trcommon").glob("*.py") if p.name not in ("settings.py", "testing.py")]
    sources += [p for p in ROOT.glob("*-service/*_service/**/*.py")]
    readers = [f"{p.relative_to(ROOT)}:{n}" for p in sources
               for n, line in enumerate(p.read_text().splitlines(), 1)
               if re.search(r"\bos\.(environ|getenv)\b|\bgetenv\(", line)]
    assert readers == []
