"""ownership_changes records refunds too: a ticket returned to sale has no new owner (to_user_id NULL), and one
refund returns every seat of its order under one key, so a row is keyed by (change_key, seat_id)

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("ownership_changes", "to_user_id", nullable=True)
    op.drop_constraint("ownership_changes_pkey", "ownership_changes", type_="primary")
    op.create_primary_key("ownership_changes_pkey", "ownership_changes", ["change_key", "seat_id"])


def downgrade() -> None:
    op.execute("DELETE FROM ownership_changes WHERE to_user_id IS NULL")
    op.drop_constraint("ownership_changes_pkey", "ownership_changes", type_="primary")
    op.create_primary_key("ownership_changes_pkey", "ownership_changes", ["change_key"])
    op.alter_column("ownership_changes", "to_user_id", nullable=False)
