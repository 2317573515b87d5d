"""entry_logs.ticket_version: the scanned code's ticket_version, so the audit can tell that no code issued before a
transfer admitted anyone

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
    op.add_column("entry_logs", sa.Column("ticket_version", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("entry_logs", "ticket_version")
