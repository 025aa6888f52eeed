"""Generations of the store, for `onestop reprocess`.

Revision ID: 0004
Revises: 0003

A row's generation says which reprocessing wrote it: records of a newer generation replace
it whatever their offsets, since the topics they come from were emptied and start again at
offset 0. The rows already stored are generation 0.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Written out here, not imported, so this revision stays what it was.
_FED_FROM_KAFKA = ("case_states", "ticket_states", "agency_day_figures", "centre_day_figures",
                   "derived_events")


def upgrade() -> None:
    for table in _FED_FROM_KAFKA:
        op.add_column(table, sa.Column("generation", sa.Integer(), nullable=False,
                                       server_default="0"))
    op.create_table(
        "generations",
        sa.Column("generation", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("old_rows_removed", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("generations")
    for table in _FED_FROM_KAFKA:
        # Not batch mode: rebuilding a table under the views fails on SQLite, which drops
        # a column in place since 3.35.
        op.drop_column(table, "generation")
