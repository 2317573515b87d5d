"""pending credits: a second balance per user, and the account each ledger row moves

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("pending_credits", sa.BigInteger, nullable=False, server_default="0"))
    op.create_check_constraint("ck_users_pending_credits_non_negative", "users", "pending_credits >= 0")
    # Every row written before this revision moved the spendable balance, which is what the default says.
    op.add_column("credit_ledger", sa.Column("account", sa.Text, nullable=False, server_default="spendable"))
    op.create_check_constraint("ck_credit_ledger_account", "credit_ledger", "account IN ('spendable', 'pending')")
    # A gift between fans moves no credits, but its debit row records that both parties confirmed it with their
    # codes (the transfer saga's "did the debit happen?"): the one row that may be zero.
    op.drop_constraint("ck_credit_ledger_amount_non_zero", "credit_ledger", type_="check")
    op.create_check_constraint("ck_credit_ledger_amount_non_zero", "credit_ledger",
                               "amount <> 0 OR reference LIKE 'transfer:%\\:debit'")


def downgrade() -> None:
    op.drop_constraint("ck_credit_ledger_amount_non_zero", "credit_ledger", type_="check")
    op.create_check_constraint("ck_credit_ledger_amount_non_zero", "credit_ledger", "amount <> 0")
    op.drop_constraint("ck_credit_ledger_account", "credit_ledger", type_="check")
    op.drop_column("credit_ledger", "account")
    op.drop_constraint("ck_users_pending_credits_non_negative", "users", type_="check")
    op.drop_column("users", "pending_credits")
