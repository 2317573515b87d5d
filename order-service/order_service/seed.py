"""Demo data of order-service: none. The demo starts with no orders or transfers; orders appear when
fans reserve. Seeding still connects and reads the orders table, so it stops with one clear line if the
database is unreachable or not migrated."""
from sqlalchemy.exc import ProgrammingError

from trcommon.errors import DependencyUnavailable

from .bootstrap import bootstrap
from .settings import OrderSettings

MIGRATE = "run `python -m trcommon.manage migrate order-service` first"


def seed_demo(settings: OrderSettings) -> None:
    c = bootstrap(settings)
    try:
        with c.uow() as uow:
            uow.orders.count()
    except DependencyUnavailable as exc:
        reason = getattr(exc.__cause__, "orig", exc.__cause__)
        raise SystemExit(f"order-service: cannot connect to its database ({reason}); {MIGRATE}") from None
    except ProgrammingError as exc:
        raise SystemExit(f"order-service: the orders table is missing ({type(exc.orig).__name__}); {MIGRATE}") \
            from None
    finally:
        c.engine.dispose()
