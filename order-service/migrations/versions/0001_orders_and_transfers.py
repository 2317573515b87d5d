"""orders and transfers

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
        "orders",
        sa.Column("order_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("user_id", UUID(as_uuid=False), nullable=False),
        sa.Column("seat_id", UUID(as_uuid=False), nullable=False),
        sa.Column("event_id", UUID(as_uuid=False), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="PENDING"),
        sa.Column("payment_state", sa.Text, nullable=False, server_default="NONE"),
        sa.Column("held_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failure_reason", sa.Text, nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount >= 0", name="ck_orders_amount_not_negative"),
        sa.CheckConstraint("status IN ('PENDING', 'CONFIRMED', 'FAILED', 'EXPIRED', 'REFUNDED')",
                           name="ck_orders_status"),
        sa.CheckConstraint("payment_state IN ('NONE', 'CHARGING')", name="ck_orders_payment_state"),
        # An order whose charge may have gone through must be settled by the recovery pass, never expired.
        sa.CheckConstraint("NOT (status = 'EXPIRED' AND payment_state = 'CHARGING')",
                           name="ck_orders_expired_never_charging"),
    )
    op.create_index("ix_orders_user_id_created_at", "orders", ["user_id", "created_at"])
    op.create_index("ix_orders_seat_id", "orders", ["seat_id"])
    # The recovery pass's stale query only ever looks at PENDING orders, a small share of the table.
    op.create_index("ix_orders_pending_held_until", "orders", ["held_until"],
                    postgresql_where=sa.text("status = 'PENDING'"))
    # docs/design.md, invariant 1: a seat is sold by at most one order, whatever the callers do concurrently.
    op.create_index("uq_orders_one_confirmed_per_seat", "orders", ["seat_id"], unique=True,
                    postgresql_where=sa.text("status = 'CONFIRMED'"))

    op.create_table(
        "transfers",
        sa.Column("transfer_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("seat_id", UUID(as_uuid=False), nullable=False),
        sa.Column("seller_user_id", UUID(as_uuid=False), nullable=False),
        sa.Column("buyer_user_id", UUID(as_uuid=False), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="PENDING_OTP"),
        sa.Column("dispute_reason", sa.Text, nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        # The last saga step that completed, written before the next one starts, so a restarted
        # orchestrator knows whether to go on or compensate.
        sa.Column("step", sa.Text, nullable=False, server_default="INITIATED"),
        sa.Column("failure_reason", sa.Text, nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount > 0", name="ck_transfers_amount_positive"),
        sa.CheckConstraint("status IN ('PENDING_OTP', 'COMPLETED', 'DISPUTED', 'REVERSED', 'CANCELLED', "
                           "'EXPIRED')", name="ck_transfers_status"),
        sa.CheckConstraint("seller_user_id <> buyer_user_id", name="ck_transfers_distinct_parties"),
    )
    op.create_index("ix_transfers_seat_id", "transfers", ["seat_id"])
    op.create_index("ix_transfers_seller_user_id", "transfers", ["seller_user_id"])
    op.create_index("ix_transfers_buyer_user_id", "transfers", ["buyer_user_id"])
    op.create_index("ix_transfers_pending_expires_at", "transfers", ["expires_at"],
                    postgresql_where=sa.text("status = 'PENDING_OTP'"))
    # A seat is offered to one buyer at a time: two pending transfers could both charge a buyer.
    op.create_index("uq_transfers_one_pending_per_seat", "transfers", ["seat_id"], unique=True,
                    postgresql_where=sa.text("status = 'PENDING_OTP'"))


def downgrade() -> None:
    op.drop_table("transfers")
    op.drop_table("orders")
