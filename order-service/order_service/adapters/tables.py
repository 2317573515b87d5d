"""Table definitions mirroring the migrations (a test checks that the two agree)."""
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from trcommon.outbox import outbox_table

metadata = sa.MetaData()

orders = sa.Table(
    "orders", metadata,
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
    sa.CheckConstraint("status IN ('PENDING', 'CONFIRMED', 'FAILED', 'EXPIRED', 'REFUNDED', 'CANCELLED', "
                       "'REFUNDING')",
                       name="ck_orders_status"),
    sa.CheckConstraint("payment_state IN ('NONE', 'CHARGING')", name="ck_orders_payment_state"),
    sa.CheckConstraint("NOT (status = 'EXPIRED' AND payment_state = 'CHARGING')",
                       name="ck_orders_expired_never_charging"),
    sa.CheckConstraint("NOT (status = 'CANCELLED' AND payment_state = 'CHARGING')",
                       name="ck_orders_cancelled_uncharged"),
    # Every seat of the order, ascending; seat_id is the first of them (all that single-seat readers need). One
    # array rather than a table of order seats: an order's seats are written once, with the order, and read with
    # it; a seat is sold once because inventory sells a seat row to one hold (the audit checks the orders agree).
    sa.Column("seat_ids", ARRAY(UUID(as_uuid=False)), nullable=False),
    sa.CheckConstraint("cardinality(seat_ids) BETWEEN 1 AND 8 AND seat_ids[1] = seat_id", name="ck_orders_seat_ids"),
)

sa.Index("ix_orders_user_id_created_at", orders.c.user_id, orders.c.created_at)
sa.Index("ix_orders_seat_id", orders.c.seat_id)
sa.Index("ix_orders_seat_ids", orders.c.seat_ids, postgresql_using="gin")
sa.Index("ix_orders_pending_held_until", orders.c.held_until, postgresql_where=sa.text("status = 'PENDING'"))
sa.Index("ix_orders_refunding_updated_at", orders.c.updated_at, postgresql_where=sa.text("status = 'REFUNDING'"))
sa.Index("uq_orders_one_confirmed_per_seat", orders.c.seat_id, unique=True,
         postgresql_where=sa.text("status = 'CONFIRMED'"))

transfers = sa.Table(
    "transfers", metadata,
    sa.Column("transfer_id", UUID(as_uuid=False), primary_key=True),
    sa.Column("seat_id", UUID(as_uuid=False), nullable=False),
    sa.Column("seller_user_id", UUID(as_uuid=False), nullable=False),
    sa.Column("buyer_user_id", UUID(as_uuid=False), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="PENDING_OTP"),
    sa.Column("dispute_reason", sa.Text, nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    # The last saga step begun on the record (TransferStep), written before the step's first remote call.
    sa.Column("step", sa.Text, nullable=False, server_default="INITIATED"),
    sa.Column("failure_reason", sa.Text, nullable=True),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("event_id", UUID(as_uuid=False), nullable=False),
    sa.Column("face_value", sa.BigInteger, nullable=False),
    # When the seller's pending proceeds become spendable (the end of the dispute window), and when they were.
    sa.Column("release_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    # How a dispute ended.
    sa.Column("resolution", sa.Text, nullable=True),
    sa.CheckConstraint("status IN ('PENDING_OTP', 'COMPLETED', 'DISPUTED', 'REVERSED', 'CANCELLED', 'EXPIRED')",
                       name="ck_transfers_status"),
    sa.CheckConstraint("seller_user_id <> buyer_user_id", name="ck_transfers_distinct_parties"),
    sa.CheckConstraint("amount >= 0", name="ck_transfers_amount_not_negative"),
    sa.CheckConstraint("face_value >= 0", name="ck_transfers_face_value_not_negative"),
    sa.CheckConstraint("step IN ('INITIATED', 'CONFIRMING', 'REVERSING')", name="ck_transfers_step"),
    sa.CheckConstraint("status NOT IN ('COMPLETED', 'DISPUTED', 'REVERSED') "
                       "OR (completed_at IS NOT NULL AND release_at IS NOT NULL)",
                       name="ck_transfers_completed_has_release"),
    sa.CheckConstraint("released_at IS NULL OR status = 'COMPLETED'", name="ck_transfers_released_only_completed"),
)

sa.Index("ix_transfers_seat_id", transfers.c.seat_id)
sa.Index("ix_transfers_seller_user_id", transfers.c.seller_user_id)
sa.Index("ix_transfers_buyer_user_id", transfers.c.buyer_user_id)
sa.Index("ix_transfers_pending_expires_at", transfers.c.expires_at,
         postgresql_where=sa.text("status = 'PENDING_OTP'"))
sa.Index("uq_transfers_one_pending_per_seat", transfers.c.seat_id, unique=True,
         postgresql_where=sa.text("status = 'PENDING_OTP'"))
sa.Index("ix_transfers_disputed_updated_at", transfers.c.updated_at, postgresql_where=sa.text("status = 'DISPUTED'"))
sa.Index("ix_transfers_unreleased_release_at", transfers.c.release_at,
         postgresql_where=sa.text("status = 'COMPLETED' AND released_at IS NULL"))
sa.Index("ix_transfers_event_id_created_at", transfers.c.event_id, transfers.c.created_at)
sa.Index("ix_orders_event_id_created_at", orders.c.event_id, orders.c.created_at)

# The notifications this service's changes cause, written in the same transaction (trcommon.outbox).
outbox = outbox_table(metadata)
sa.Index("ix_outbox_event_cancelled", outbox.c.message_id, postgresql_ops={"message_id": "text_pattern_ops"},
         postgresql_where=sa.text("routing_key = 'notify.event_cancelled'"))
