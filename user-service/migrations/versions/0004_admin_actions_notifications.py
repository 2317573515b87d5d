"""admin audit trail, grants with their admin, and fans' notifications with their e-mail outbox

`credit_ledger.actor_user_id` names the admin who granted a credit; `admin_actions` is the audit trail of every admin
action (recorded PENDING before it runs, finished once); `notifications` holds each notification delivered to a fan,
once per `notification_id`; `email_outbox` the e-mails written for them, sent by the notification consumer when SMTP
is configured (docs/design.md, notifications).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("credit_ledger", sa.Column("actor_user_id", UUID(as_uuid=False), nullable=True))

    op.create_table(
        "admin_actions",
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
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("outcome IN ('PENDING', 'SUCCEEDED', 'FAILED')", name="ck_admin_actions_outcome"),
        sa.CheckConstraint("(outcome = 'PENDING') = (finished_at IS NULL)", name="ck_admin_actions_finished"),
        sa.CheckConstraint("error_code IS NULL OR outcome = 'FAILED'", name="ck_admin_actions_error_code"),
    )
    # One index per filter of the listing, each in its order (newest first).
    op.create_index("ix_admin_actions_created", "admin_actions", ["created_at", "action_id"])
    op.create_index("ix_admin_actions_admin", "admin_actions", ["admin_id", "created_at"])
    op.create_index("ix_admin_actions_target", "admin_actions", ["target_type", "target_id", "created_at"])
    op.create_index("ix_admin_actions_action", "admin_actions", ["action", "created_at"])

    op.create_table(
        "notifications",
        sa.Column("notification_id", sa.Text, primary_key=True),
        sa.Column("user_id", UUID(as_uuid=False), sa.ForeignKey("users.user_id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_notifications_user_occurred", "notifications", ["user_id", "occurred_at"])

    op.create_table(
        "email_outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("user_id", UUID(as_uuid=False), sa.ForeignKey("users.user_id"), nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("notification_id", sa.Text, sa.ForeignKey("notifications.notification_id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_email_outbox_user", "email_outbox", ["user_id", "id"])
    op.create_index("ix_email_outbox_unsent", "email_outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"))


def downgrade() -> None:
    op.drop_table("email_outbox")
    op.drop_table("notifications")
    op.drop_table("admin_actions")
    op.drop_column("credit_ledger", "actor_user_id")
