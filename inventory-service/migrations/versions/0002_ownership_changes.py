"""ownership_changes: one row per UpdateOwner that took effect, keyed by its idempotency key; seats by owner

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ownership_changes",
        sa.Column("change_key", sa.Text, primary_key=True),
        sa.Column("seat_id", UUID(as_uuid=False), sa.ForeignKey("seats.seat_id"), nullable=False),
        sa.Column("from_user_id", UUID(as_uuid=False), nullable=False),
        sa.Column("to_user_id", UUID(as_uuid=False), nullable=False),
        sa.Column("ticket_version", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_ownership_changes_seat", "ownership_changes", ["seat_id", "ticket_version"])
    # A fan's tickets (GET /me/tickets) are found by owner.
    op.create_index("ix_seats_owner", "seats", ["owner_user_id"], postgresql_where=sa.text("owner_user_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_seats_owner", "seats")
    op.drop_table("ownership_changes")
