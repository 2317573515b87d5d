from trcommon.db import UnitOfWork

from ..adapters.repository import OrderRepository


class OrderUnitOfWork(UnitOfWork):
    orders: OrderRepository

    def _open(self) -> None:
        self.orders = OrderRepository(self.conn)
