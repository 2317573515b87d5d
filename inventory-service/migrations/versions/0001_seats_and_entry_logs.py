"""seats, entry_logs

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
        "seats",
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
        # Its index also serves every lookup by event_id (leading column) and ListSeats' order, so there is no
        # separate index on event_id.
        sa.UniqueConstraint("event_id", "section", "row", "number", name="uq_seats_event_position"),
        sa.CheckConstraint("price >= 0", name="ck_seats_price_not_negative"),
        sa.CheckConstraint("ticket_version >= 1", name="ck_seats_ticket_version_positive"),
        sa.CheckConstraint("status IN ('AVAILABLE', 'HELD', 'SOLD', 'CHECKED_IN')", name="ck_seats_status"),
        # The row is always coherent with its status: a hold has all its fields, only a sold seat has an owner,
        # a sold seat keeps the id of the order that bought it, only a checked-in seat has check-in fields.
        sa.CheckConstraint(
            "(status = 'HELD') = (held_by_user_id IS NOT NULL AND held_until IS NOT NULL)",
            name="ck_seats_hold_fields_iff_held"),
        sa.CheckConstraint("(status = 'AVAILABLE') = (hold_id IS NULL)", name="ck_seats_hold_id_unless_available"),
        sa.CheckConstraint("(status IN ('SOLD', 'CHECKED_IN')) = (owner_user_id IS NOT NULL)",
                           name="ck_seats_owner_iff_sold"),
        sa.CheckConstraint(
            "(status = 'CHECKED_IN') = (checked_in_at IS NOT NULL AND checked_in_hall_id IS NOT NULL)",
            name="ck_seats_check_in_fields_iff_checked_in"),
    )
    # An order (hold id) names one seat.
    op.create_index("ux_seats_hold_id", "seats", ["hold_id"], unique=True)
    # Live holds of a user (the per-user cap) and lapsed holds (the sweeper): both only look at HELD rows.
    op.create_index("ix_seats_holds_by_user", "seats", ["held_by_user_id", "held_until"],
                    postgresql_where=sa.text("status = 'HELD'"))
    op.create_index("ix_seats_held_until", "seats", ["held_until"], postgresql_where=sa.text("status = 'HELD'"))

    op.create_table(
        "entry_logs",
        sa.Column("id", sa.BigInteger, primary_key=True),  # bigserial
        # Text, not uuid: a forged or malformed code names a seat that may not exist or not even be a uuid, and
        # that scan is logged all the same.
        sa.Column("seat_id", sa.Text),
        sa.Column("hall_id", sa.Text),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("scanner_user_id", sa.Text),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "result IN ('CHECKED_IN', 'DUPLICATE', 'UNPAID', 'NOT_FOUND', 'WRONG_HALL', 'EXPIRED', 'INVALID')",
            name="ck_entry_logs_result"),
    )
    op.create_index("ix_entry_logs_seat_id", "entry_logs", ["seat_id", "scanned_at"])


def downgrade() -> None:
    op.drop_table("entry_logs")
    op.drop_table("seats")
