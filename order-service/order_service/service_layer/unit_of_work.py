from trcommon.db import UnitOfWork

from ..adapters.repository import OrderRepository, TransferRepository


class OrderUnitOfWork(UnitOfWork):
    orders: OrderRepository
    transfers: TransferRepository

    def _open(self) -> None:
        self.orders = OrderRepository(self.conn)
        self.transfers = TransferRepository(self.conn)
