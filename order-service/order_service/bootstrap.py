"""Composition root: builds the engine and unit-of-work factory from settings."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy.engine import Engine

from trcommon.db import make_engine

from .service_layer.unit_of_work import OrderUnitOfWork
from .settings import OrderSettings


@dataclass
class Container:
    settings: OrderSettings
    engine: Engine
    uow: partial


def bootstrap(settings: OrderSettings) -> Container:
    engine = make_engine(settings.database_url, settings.db_pool_size, settings.db_max_overflow)
    return Container(settings=settings, engine=engine, uow=partial(OrderUnitOfWork, engine))
