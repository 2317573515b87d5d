"""Table definitions mirroring the migrations (a test checks that the two agree)."""
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

metadata = sa.MetaData()

venues = sa.Table(
    "venues", metadata,
    sa.Column("venue_id", UUID(as_uuid=False), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("address", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

halls = sa.Table(
    "halls", metadata,
    sa.Column("hall_id", UUID(as_uuid=False), primary_key=True),
    sa.Column("venue_id", UUID(as_uuid=False), sa.ForeignKey("venues.venue_id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("venue_id", "name", name="uq_halls_venue_name"),
)

events = sa.Table(
    "events", metadata,
    sa.Column("event_id", UUID(as_uuid=False), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("venue_id", UUID(as_uuid=False), sa.ForeignKey("venues.venue_id"), nullable=False),
    sa.Column("hall_id", UUID(as_uuid=False), sa.ForeignKey("halls.hall_id"), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("status", sa.Text, nullable=False, server_default="DRAFT"),
    sa.Column("cancel_reason", sa.Text),
    sa.Column("cancel_step", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("status IN ('DRAFT', 'ON_SALE', 'CANCELLING', 'CANCELLED')", name="ck_events_status"),
    sa.CheckConstraint("cancel_step >= 0", name="ck_events_cancel_step"),
)

sa.Index("ix_events_starts_at", events.c.starts_at)
# The recovery worker's question: CANCELLING events by how long since they last moved.
sa.Index("ix_events_cancelling", events.c.updated_at, postgresql_where=sa.text("status = 'CANCELLING'"))
