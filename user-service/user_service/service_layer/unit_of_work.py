from trcommon.db import UnitOfWork

from ..adapters.repository import (
    LedgerRepository,
    OtpRepository,
    PaymentRepository,
    SmsOutboxRepository,
    UserRepository,
)


class UserUnitOfWork(UnitOfWork):
    users: UserRepository
    ledger: LedgerRepository
    otps: OtpRepository
    sms_outbox: SmsOutboxRepository
    payments: PaymentRepository

    def _open(self) -> None:
        self.users = UserRepository(self.conn)
        self.ledger = LedgerRepository(self.conn)
        self.otps = OtpRepository(self.conn)
        self.sms_outbox = SmsOutboxRepository(self.conn)
        self.payments = PaymentRepository(self.conn)
