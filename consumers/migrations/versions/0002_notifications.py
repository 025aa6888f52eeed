"""What the notifier has sent.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("recipient", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("agency", sa.String(64)),
        sa.Column("case_id", sa.String(64)),
        sa.Column("sent_at", sa.String(40), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notifications")
