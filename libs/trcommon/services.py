"""The registry of the four database-owning services: where their code, settings and migrations live.
Used by the management commands (migrate, seed), the local process runner and the tests."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServiceInfo:
    name: str          # folder and process name, e.g. "user-service"
    package: str       # python package, e.g. "user_service"
    settings_class: str
    database: str      # development database name

    @property
    def folder(self) -> Path:
        return ROOT / self.name

    @property
    def migrations(self) -> Path:
        return self.folder / "migrations"

    def settings(self, **overrides):
        from .settings import load_settings

        module = importlib.import_module(f"{self.package}.settings")
        return load_settings(getattr(module, self.settings_class), **overrides)

    def seed(self, settings) -> None:
        importlib.import_module(f"{self.package}.seed").seed_demo(settings)


DB_SERVICES = {
    s.name: s for s in (
        ServiceInfo("event-service", "event_service", "EventSettings", "events_db"),
        ServiceInfo("user-service", "user_service", "UserSettings", "users_db"),
        ServiceInfo("order-service", "order_service", "OrderSettings", "orders_db"),
        ServiceInfo("inventory-service", "inventory_service", "InventorySettings", "seats_db"),
    )
}
