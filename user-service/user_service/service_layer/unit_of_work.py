from trcommon.db import UnitOfWork

from ..adapters.repository import (
    AdminActionRepository,
    EmailOutboxRepository,
    LedgerRepository,
    NotificationRepository,
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
    admin_actions: AdminActionRepository
    notifications: NotificationRepository
    email_outbox: EmailOutboxRepository

    def _open(self) -> None:
        self.users = UserRepository(self.conn)
        self.ledger = LedgerRepository(self.conn)
        self.otps = OtpRepository(self.conn)
        self.sms_outbox = SmsOutboxRepository(self.conn)
        self.payments = PaymentRepository(self.conn)
        self.admin_actions = AdminActionRepository(self.conn)
        self.notifications = NotificationRepository(self.conn)
        self.email_outbox = EmailOutboxRepository(self.conn)
