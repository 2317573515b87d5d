"""events.status (DRAFT -> ON_SALE -> CANCELLING -> CANCELLED), cancel_reason, cancel_step, updated_at: events
existing before are on sale; a new one starts as a DRAFT

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added with ON_SALE (every existing row gets it), then the default for new rows becomes DRAFT.
    op.add_column("events", sa.Column("status", sa.Text, nullable=False, server_default="ON_SALE"))
    op.alter_column("events", "status", server_default="DRAFT")
    op.add_column("events", sa.Column("cancel_reason", sa.Text))
    op.add_column("events", sa.Column("cancel_step", sa.Integer, nullable=False, server_default="0"))
    op.add_column("events", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                                      server_default=sa.func.now()))
    op.create_check_constraint("ck_events_status", "events",
                               "status IN ('DRAFT', 'ON_SALE', 'CANCELLING', 'CANCELLED')")
    op.create_check_constraint("ck_events_cancel_step", "events", "cancel_step >= 0")
    op.create_index("ix_events_cancelling", "events", ["updated_at"], postgresql_where=sa.text("status = 'CANCELLING'"))


def downgrade() -> None:
    op.drop_index("ix_events_cancelling", table_name="events")
    op.drop_constraint("ck_events_cancel_step", "events", type_="check")
    op.drop_constraint("ck_events_status", "events", type_="check")
    op.drop_column("events", "updated_at")
    op.drop_column("events", "cancel_step")
    op.drop_column("events", "cancel_reason")
    op.drop_column("events", "status")
