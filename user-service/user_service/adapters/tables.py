"""Table definitions mirroring the migrations (a test checks that the two agree)."""
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = sa.MetaData()


def _created_at():
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


users = sa.Table(
    "users", metadata,
    sa.Column("user_id", UUID(as_uuid=False), primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("phone", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False, server_default="fan"),
    sa.Column("credit_balance", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("is_flagged", sa.Boolean, nullable=False, server_default=sa.false()),
    _created_at(),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # A seller's transfer proceeds until the dispute window ends (docs/design.md, money); like credit_balance,
    # the sum of the user's ledger rows of its account.
    sa.Column("pending_credits", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("email", name="uq_users_email"),
    sa.CheckConstraint("email = lower(email)", name="ck_users_email_lowercase"),
    sa.CheckConstraint("role IN ('fan', 'scanner', 'admin')", name="ck_users_role"),
    sa.CheckConstraint("credit_balance >= 0", name="ck_users_credit_balance_non_negative"),
    sa.CheckConstraint("pending_credits >= 0", name="ck_users_pending_credits_non_negative"),
)

credit_ledger = sa.Table(
    "credit_ledger", metadata,
    sa.Column("entry_id", UUID(as_uuid=False), primary_key=True),
    sa.Column("user_id", UUID(as_uuid=False), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    # Filled by the statement that moves the balance, in the same transaction as the insert.
    sa.Column("balance_after", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    _created_at(),
    # Which of the user's balances the row moves (and `balance_after` reports).
    sa.Column("account", sa.Text, nullable=False, server_default="spendable"),
    # The admin who granted the credit; NULL for the system's own changes.
    sa.Column("actor_user_id", UUID(as_uuid=False), nullable=True),
    sa.UniqueConstraint("reference", name="uq_credit_ledger_reference"),
    # Zero only for a gift's debit row, which records that both parties confirmed the transfer.
    sa.CheckConstraint("amount <> 0 OR reference LIKE 'transfer:%\\:debit'",
                       name="ck_credit_ledger_amount_non_zero"),
    sa.CheckConstraint("balance_after >= 0", name="ck_credit_ledger_balance_after_non_negative"),
    sa.CheckConstraint("account IN ('spendable', 'pending')", name="ck_credit_ledger_account"),
)
sa.Index("ix_credit_ledger_user_created", credit_ledger.c.user_id, credit_ledger.c.created_at)

sms_outbox = sa.Table(
    "sms_outbox", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("phone", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    _created_at(),
)
sa.Index("ix_sms_outbox_phone", sms_outbox.c.phone, sms_outbox.c.id)

otp_codes = sa.Table(
    "otp_codes", metadata,
    sa.Column("otp_id", UUID(as_uuid=False), primary_key=True),
    sa.Column("user_id", UUID(as_uuid=False), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    # HMAC of the code; NULL when the external provider (SMU) holds the code.
    sa.Column("code_hash", sa.Text, nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("attempts >= 0", name="ck_otp_codes_attempts_non_negative"),
)
sa.Index("ix_otp_codes_user_purpose", otp_codes.c.user_id, otp_codes.c.purpose, otp_codes.c.created_at)
sa.Index("ix_otp_codes_user_created", otp_codes.c.user_id, otp_codes.c.created_at)

stripe_payment_intents = sa.Table(
    "stripe_payment_intents", metadata,
    sa.Column("payment_intent_id", sa.Text, primary_key=True),
    sa.Column("user_id", UUID(as_uuid=False), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    _created_at(),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("amount > 0", name="ck_stripe_payment_intents_amount_positive"),
    # "stripe": created through Stripe's API by a top-up; "development": recorded without Stripe for a development
    # payment (`make topup`, tests, bench), refused in production.
    sa.Column("origin", sa.Text, nullable=False, server_default="stripe"),
    sa.CheckConstraint("origin IN ('stripe', 'development')", name="ck_stripe_payment_intents_origin"),
)
sa.Index("ix_stripe_payment_intents_user", stripe_payment_intents.c.user_id)

stripe_events = sa.Table(
    "stripe_events", metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("payment_reference", sa.Text, nullable=True),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# The audit trail of admin actions: recorded PENDING before the action runs, finished once (the first finish wins).
admin_actions = sa.Table(
    "admin_actions", metadata,
    sa.Column("action_id", UUID(as_uuid=False), primary_key=True),
    sa.Column("admin_id", UUID(as_uuid=False), nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target_type", sa.Text, nullable=False),
    sa.Column("target_id", sa.Text, nullable=False),
    sa.Column("request", JSONB, nullable=False),
    sa.Column("before", JSONB, nullable=True),
    sa.Column("after", JSONB, nullable=True),
    sa.Column("outcome", sa.Text, nullable=False, server_default="PENDING"),
    sa.Column("error_code", sa.Text, nullable=True),
    _created_at(),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("outcome IN ('PENDING', 'SUCCEEDED', 'FAILED')", name="ck_admin_actions_outcome"),
    sa.CheckConstraint("(outcome = 'PENDING') = (finished_at IS NULL)", name="ck_admin_actions_finished"),
    sa.CheckConstraint("error_code IS NULL OR outcome = 'FAILED'", name="ck_admin_actions_error_code"),
)
sa.Index("ix_admin_actions_created", admin_actions.c.created_at, admin_actions.c.action_id)
sa.Index("ix_admin_actions_admin", admin_actions.c.admin_id, admin_actions.c.created_at)
sa.Index("ix_admin_actions_target", admin_actions.c.target_type, admin_actions.c.target_id,
         admin_actions.c.created_at)
sa.Index("ix_admin_actions_action", admin_actions.c.action, admin_actions.c.created_at)

# Each notification delivered to a fan, once per notification_id (trcontracts.notifications).
notifications = sa.Table(
    "notifications", metadata,
    sa.Column("notification_id", sa.Text, primary_key=True),
    sa.Column("user_id", UUID(as_uuid=False), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("data", JSONB, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
sa.Index("ix_notifications_user_occurred", notifications.c.user_id, notifications.c.occurred_at)

# E-mails to send; the record itself without SMTP configured, like sms_outbox.
email_outbox = sa.Table(
    "email_outbox", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("user_id", UUID(as_uuid=False), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("notification_id", sa.Text, sa.ForeignKey("notifications.notification_id"), nullable=True),
    _created_at(),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    # Refusals by the SMTP server counted per message: one it keeps refusing is given up after EMAIL_MAX_ATTEMPTS.
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
)
sa.Index("ix_email_outbox_user", email_outbox.c.user_id, email_outbox.c.id)
sa.Index("ix_email_outbox_unsent", email_outbox.c.id, postgresql_where=sa.text("sent_at IS NULL"))
