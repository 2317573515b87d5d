from trcommon.db import UnitOfWork

from ..adapters.repository import EntryLogRepository, OwnershipChangeRepository, SeatRepository


class InventoryUnitOfWork(UnitOfWork):
    seats: SeatRepository
    entry_logs: EntryLogRepository
    ownership_changes: OwnershipChangeRepository

    def _open(self) -> None:
        self.seats = SeatRepository(self.conn)
        self.entry_logs = EntryLogRepository(self.conn)
        self.ownership_changes = OwnershipChangeRepository(self.conn)
