from trcommon.db import UnitOfWork

from ..adapters.repository import EventRepository


class EventUnitOfWork(UnitOfWork):
    events: EventRepository

    def _open(self) -> None:
        self.events = EventRepository(self.conn)
