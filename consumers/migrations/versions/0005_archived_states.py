"""Archived case and ticket rows.

Revision ID: 0005
Revises: 0004

The worker removes a settled case or ticket from its live state and writes a tombstone to
its changelog. The store keeps the row and marks it archived instead of deleting it, so
that reports still count it; the rows already stored are not archived.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Written out here, not imported, so this revision stays what it was.
_STATE_TABLES = ("case_states", "ticket_states")


def upgrade() -> None:
    for table in _STATE_TABLES:
        op.add_column(table, sa.Column("archived", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))


def downgrade() -> None:
    for table in _STATE_TABLES:
        # Not batch mode, as in 0004: SQLite drops a column in place.
        op.drop_column(table, "archived")
