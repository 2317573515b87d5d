"""transfer records: gifts, the event and face value, the release of the seller's proceeds, dispute resolutions

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
    # No route wrote transfers before this revision, so the NOT NULL columns need no backfill.
    op.add_column("transfers", sa.Column("event_id", UUID(as_uuid=False), nullable=False))
    op.add_column("transfers", sa.Column("face_value", sa.BigInteger, nullable=False))
    op.add_column("transfers", sa.Column("release_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("transfers", sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("transfers", sa.Column("resolution", sa.Text, nullable=True))
    # A ticket may be given away for nothing.
    op.drop_constraint("ck_transfers_amount_positive", "transfers", type_="check")
    op.create_check_constraint("ck_transfers_amount_not_negative", "transfers", "amount >= 0")
    op.create_check_constraint("ck_transfers_face_value_not_negative", "transfers", "face_value >= 0")
    op.create_check_constraint("ck_transfers_step", "transfers", "step IN ('INITIATED', 'CONFIRMING', 'REVERSING')")
    # A transfer that ever completed knows when, and when its seller's proceeds become spendable.
    op.create_check_constraint(
        "ck_transfers_completed_has_release", "transfers",
        "status NOT IN ('COMPLETED', 'DISPUTED', 'REVERSED') OR (completed_at IS NOT NULL AND release_at IS NOT NULL)")
    # Released proceeds cannot be taken back: a released transfer can no longer be disputed or reversed.
    op.create_check_constraint("ck_transfers_released_only_completed", "transfers",
                               "released_at IS NULL OR status = 'COMPLETED'")
    # The recovery pass's stale query looks at disputes under reversal and at proceeds not yet released, each a
    # small share of the table.
    op.create_index("ix_transfers_disputed_updated_at", "transfers", ["updated_at"],
                    postgresql_where=sa.text("status = 'DISPUTED'"))
    op.create_index("ix_transfers_unreleased_release_at", "transfers", ["release_at"],
                    postgresql_where=sa.text("status = 'COMPLETED' AND released_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_transfers_unreleased_release_at", "transfers")
    op.drop_index("ix_transfers_disputed_updated_at", "transfers")
    for name in ("ck_transfers_released_only_completed", "ck_transfers_completed_has_release", "ck_transfers_step",
                 "ck_transfers_face_value_not_negative", "ck_transfers_amount_not_negative"):
        op.drop_constraint(name, "transfers", type_="check")
    # Fails while gifts (amount 0) exist: they cannot be described by the earlier schema.
    op.create_check_constraint("ck_transfers_amount_positive", "transfers", "amount > 0")
    for column in ("resolution", "released_at", "release_at", "face_value", "event_id"):
        op.drop_column("transfers", column)
