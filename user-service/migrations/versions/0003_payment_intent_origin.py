"""payment intents: where each recorded intent came from (Stripe's API, or a development payment)

Webhooks are credited only against a recorded intent (docs/design.md, money); development payments record theirs
without Stripe, and this column says which is which.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every intent recorded before this revision was created through Stripe's API by POST /credits/topup.
    op.add_column("stripe_payment_intents", sa.Column("origin", sa.Text, nullable=False, server_default="stripe"))
    op.create_check_constraint("ck_stripe_payment_intents_origin", "stripe_payment_intents",
                               "origin IN ('stripe', 'development')")


def downgrade() -> None:
    op.drop_constraint("ck_stripe_payment_intents_origin", "stripe_payment_intents", type_="check")
    op.drop_column("stripe_payment_intents", "origin")
