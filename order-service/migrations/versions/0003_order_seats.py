"""orders.seat_ids: every seat of an order (1-8 of one event); seat_id stays, the first of them by seat_id

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("seat_ids", ARRAY(UUID(as_uuid=False)), nullable=True))
    op.execute("UPDATE orders SET seat_ids = ARRAY[seat_id]")
    op.alter_column("orders", "seat_ids", nullable=False)
    op.create_check_constraint("ck_orders_seat_ids", "orders",
                               "cardinality(seat_ids) BETWEEN 1 AND 8 AND seat_ids[1] = seat_id")
    op.create_index("ix_orders_seat_ids", "orders", ["seat_ids"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_orders_seat_ids", table_name="orders")
    op.drop_constraint("ck_orders_seat_ids", "orders")
    op.drop_column("orders", "seat_ids")
