from trcommon.db import UnitOfWork

from ..adapters.repository import EntryLogRepository, SeatRepository


class InventoryUnitOfWork(UnitOfWork):
    seats: SeatRepository
    entry_logs: EntryLogRepository

    def _open(self) -> None:
        self.seats = SeatRepository(self.conn)
        self.entry_logs = EntryLogRepository(self.conn)
