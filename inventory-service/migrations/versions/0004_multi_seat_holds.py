"""A hold covers the 1-8 seats of its order: hold_id is no longer unique per seat

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ux_seats_hold_id", table_name="seats")
    op.create_index("ix_seats_hold_id", "seats", ["hold_id"])


def downgrade() -> None:
    op.drop_index("ix_seats_hold_id", table_name="seats")
    op.create_index("ux_seats_hold_id", "seats", ["hold_id"], unique=True)
