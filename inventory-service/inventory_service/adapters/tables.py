"""Table definitions mirroring the migrations (a test checks that the two agree)."""
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

metadata = sa.MetaData()

seats = sa.Table(
    "seats", metadata,
    sa.Column("seat_id", UUID(as_uuid=False), primary_key=True),
    sa.Column("event_id", UUID(as_uuid=False), nullable=False),
    sa.Column("section", sa.Text, nullable=False),
    sa.Column("row", sa.Text, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("price", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="AVAILABLE"),
    sa.Column("held_by_user_id", UUID(as_uuid=False)),
    sa.Column("hold_id", UUID(as_uuid=False)),
    sa.Column("held_until", sa.DateTime(timezone=True)),
    sa.Column("owner_user_id", UUID(as_uuid=False)),
    sa.Column("ticket_version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("checked_in_at", sa.DateTime(timezone=True)),
    sa.Column("checked_in_hall_id", UUID(as_uuid=False)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # Whether the seat may be held: false before its event is published and after its sale is closed.
    sa.Column("on_sale", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.UniqueConstraint("event_id", "section", "row", "number", name="uq_seats_event_position"),
)

# A hold id (an order id) covers the 1-8 seats of its order.
sa.Index("ix_seats_hold_id", seats.c.hold_id)
sa.Index("ix_seats_holds_by_user", seats.c.held_by_user_id, seats.c.held_until,
         postgresql_where=sa.text("status = 'HELD'"))
sa.Index("ix_seats_held_until", seats.c.held_until, postgresql_where=sa.text("status = 'HELD'"))
sa.Index("ix_seats_owner", seats.c.owner_user_id, postgresql_where=sa.text("owner_user_id IS NOT NULL"))

# The history of ownership: one row per seat an UpdateOwner or a ReturnSeats changed, under the key of the saga
# step that made it, so a repeat of that step finds it and changes nothing. A seat returned by a refund has no new
# owner (to_user_id NULL).
ownership_changes = sa.Table(
    "ownership_changes", metadata,
    sa.Column("change_key", sa.Text, primary_key=True),
    sa.Column("seat_id", UUID(as_uuid=False), sa.ForeignKey("seats.seat_id"), primary_key=True),
    sa.Column("from_user_id", UUID(as_uuid=False), nullable=False),
    sa.Column("to_user_id", UUID(as_uuid=False), nullable=True),
    sa.Column("ticket_version", sa.Integer, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

sa.Index("ix_ownership_changes_seat", ownership_changes.c.seat_id, ownership_changes.c.ticket_version)

entry_logs = sa.Table(
    "entry_logs", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("seat_id", sa.Text),
    sa.Column("hall_id", sa.Text),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("scanner_user_id", sa.Text),
    # The scanned code's ticket_version (NULL when the code could not be read).
    sa.Column("ticket_version", sa.Integer),
    sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

sa.Index("ix_entry_logs_seat_id", entry_logs.c.seat_id, entry_logs.c.scanned_at)
