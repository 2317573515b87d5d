"""Composition root: builds the engine and unit-of-work factory from settings."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from sqlalchemy.engine import Engine

from trcommon.db import make_engine

from .service_layer.unit_of_work import InventoryUnitOfWork
from .settings import InventorySettings


@dataclass
class Container:
    settings: InventorySettings
    engine: Engine
    uow: Callable[..., InventoryUnitOfWork]


def bootstrap(settings: InventorySettings) -> Container:
    engine = make_engine(settings.database_url, settings.db_pool_size, settings.db_max_overflow)
    return Container(settings=settings, engine=engine, uow=partial(InventoryUnitOfWork, engine))
