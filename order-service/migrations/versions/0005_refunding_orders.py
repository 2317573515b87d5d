"""orders.status REFUNDING: the record of the refund saga, between CONFIRMED and REFUNDED

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("ck_orders_status", "orders", type_="check")
    op.create_check_constraint(
        "ck_orders_status", "orders",
        "status IN ('PENDING', 'CONFIRMED', 'FAILED', 'EXPIRED', 'REFUNDED', 'CANCELLED', 'REFUNDING')")
    op.create_index("ix_orders_refunding_updated_at", "orders", ["updated_at"],
                    postgresql_where=sa.text("status = 'REFUNDING'"))


def downgrade() -> None:
    op.drop_index("ix_orders_refunding_updated_at", table_name="orders")
    op.drop_constraint("ck_orders_status", "orders", type_="check")
    op.create_check_constraint("ck_orders_status", "orders",
                               "status IN ('PENDING', 'CONFIRMED', 'FAILED', 'EXPIRED', 'REFUNDED', 'CANCELLED')")
