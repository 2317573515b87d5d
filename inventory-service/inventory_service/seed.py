"""Demo data of inventory-service (README: demo accounts): the 200 seats of the demo concert. Idempotent."""
from trcommon import demo

from .bootstrap import bootstrap
from .domain.model import Seat
from .settings import InventorySettings


def demo_seats() -> list[Seat]:
    return [Seat(seat_id=demo.seat_id(section, row, number), event_id=demo.EVENT_ID, section=section, row=row,
                 number=number, price=demo.SEAT_PRICE) for section, row, number in demo.SEATS]


def seed_demo(settings: InventorySettings) -> None:
    c = bootstrap(settings)
    try:
        with c.uow() as uow:
            uow.seats.add(demo_seats())   # existing seats (and their holds and owners) are left as they are
            uow.commit()
    finally:
        c.engine.dispose()
