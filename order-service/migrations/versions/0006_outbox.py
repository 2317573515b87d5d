"""The outbox of notifications (trcommon.outbox), and indexes for an event's orders and transfers

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

from trcommon.outbox import DROP_DDL, TABLE_DDL, TRIGGER_DDL

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in TABLE_DDL + TRIGGER_DDL:
        op.execute(statement)
    # An event's cancellation notices are counted by their id's prefix (`event:{event_id}:cancelled:`).
    op.create_index("ix_outbox_event_cancelled", "outbox", ["message_id"],
                    postgresql_ops={"message_id": "text_pattern_ops"},
                    postgresql_where=sa.text("routing_key = 'notify.event_cancelled'"))
    op.create_index("ix_orders_event_id_created_at", "orders", ["event_id", "created_at"])
    op.create_index("ix_transfers_event_id_created_at", "transfers", ["event_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_transfers_event_id_created_at", table_name="transfers")
    op.drop_index("ix_orders_event_id_created_at", table_name="orders")
    for statement in DROP_DDL:
        op.execute(statement)
