"""Demo data of event-service (idempotent)."""
from datetime import datetime, timedelta, timezone

from trcommon import demo
from trcontracts.events import EventStatus

from .bootstrap import bootstrap
from .settings import EventSettings


def seed_demo(settings: EventSettings) -> None:
    c = bootstrap(settings)
    with c.uow() as uow:
        uow.events.add_venue(demo.VENUE_ID, "Demo Arena", "1 Demo Street")
        uow.events.add_hall(demo.HALL_A_ID, demo.VENUE_ID, "Hall A")
        uow.events.add_hall(demo.HALL_B_ID, demo.VENUE_ID, "Hall B")
        starts = (datetime.now(timezone.utc) + timedelta(days=30)).replace(hour=20, minute=0, second=0, microsecond=0)
        uow.events.add_event(demo.EVENT_ID, "Demo Concert", demo.VENUE_ID, demo.HALL_A_ID, starts,
                             "The demo event: 200 seats in Hall A, 50 credits each.", status=EventStatus.ON_SALE)
        uow.commit()
    c.engine.dispose()
