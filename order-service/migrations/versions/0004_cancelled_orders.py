"""orders.status CANCELLED: a fan called their hold off before paying (never with a charge begun)

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("ck_orders_status", "orders", type_="check")
    op.create_check_constraint("ck_orders_status", "orders",
                               "status IN ('PENDING', 'CONFIRMED', 'FAILED', 'EXPIRED', 'REFUNDED', 'CANCELLED')")
    op.create_check_constraint("ck_orders_cancelled_uncharged", "orders",
                               "NOT (status = 'CANCELLED' AND payment_state = 'CHARGING')")


def downgrade() -> None:
    op.drop_constraint("ck_orders_cancelled_uncharged", "orders", type_="check")
    op.drop_constraint("ck_orders_status", "orders", type_="check")
    op.create_check_constraint("ck_orders_status", "orders",
                               "status IN ('PENDING', 'CONFIRMED', 'FAILED', 'EXPIRED', 'REFUNDED')")
