"""venues, halls, events

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "venues",
        sa.Column("venue_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "halls",
        sa.Column("hall_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("venue_id", UUID(as_uuid=False), sa.ForeignKey("venues.venue_id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("venue_id", "name", name="uq_halls_venue_name"),
    )
    op.create_table(
        "events",
        sa.Column("event_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("venue_id", UUID(as_uuid=False), sa.ForeignKey("venues.venue_id"), nullable=False),
        sa.Column("hall_id", UUID(as_uuid=False), sa.ForeignKey("halls.hall_id"), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_events_starts_at", "events", ["starts_at"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("halls")
    op.drop_table("venues")
