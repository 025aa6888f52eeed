"""The first tables, and the views for Grafana.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _source() -> list[sa.Column]:
    return [
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
    ]


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


_RATIOS = ("completed_on_time", "service_index_on_time", "e_transfer")

# Partitions summed, each ratio divided from its summed parts; SQL that SQLite and
# PostgreSQL both run. Written out here, not imported, so this revision stays what it was.
_VIEWS = {
    "agency_daily": """
        SELECT agency, day,
            SUM(received) AS received, SUM(ended) AS ended, SUM(early) AS early,
            SUM(on_time) AS on_time, SUM(late) AS late, SUM(overdue_open) AS overdue_open,
            SUM(apologies_required) AS apologies_required,
            SUM(apologies_missing) AS apologies_missing,
            """ + ",\n            ".join(
        f"SUM({name}_numerator) AS {name}_numerator, "
        f"SUM({name}_denominator) AS {name}_denominator, "
        f"CASE WHEN SUM({name}_denominator) > 0 THEN "
        f"1.0 * SUM({name}_numerator) / SUM({name}_denominator) END AS {name}_rate"
        for name in _RATIOS
    ) + """
        FROM agency_day_figures GROUP BY agency, day""",
    "centre_daily": """
        SELECT centre, day, SUM(visits_waited) AS visits_waited,
            SUM(wait_within_target_numerator) AS wait_within_target_numerator,
            SUM(wait_within_target_denominator) AS wait_within_target_denominator,
            CASE WHEN SUM(wait_within_target_denominator) > 0 THEN
                1.0 * SUM(wait_within_target_numerator) / SUM(wait_within_target_denominator)
            END AS wait_within_target_rate,
            SUM(no_shows) AS no_shows
        FROM centre_day_figures GROUP BY centre, day""",
    "alert_events": """
        SELECT event_id, type, case_id, agency, occurred_at
        FROM derived_events
        WHERE type IN ('case_at_risk', 'overdue_detected', 'apology_missing',
                       'rescheduled_twice', 'refusal_without_reason', 'wait_exceeded')""",
}


def upgrade() -> None:
    op.create_table(
        "case_states",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("handling_agency", sa.String(64), nullable=True),
        sa.Column("first_at", sa.Float(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        *_source(),
    )
    op.create_index("case_states_by_last_at", "case_states", ["last_at"])
    op.create_table(
        "ticket_states",
        sa.Column("ticket_id", sa.String(128), primary_key=True),
        sa.Column("centre", sa.String(64), nullable=False),
        sa.Column("first_at", sa.Float(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        *_source(),
    )
    op.create_index("ticket_states_by_first_at", "ticket_states", ["first_at"])
    op.create_table(
        "agency_day_figures",
        sa.Column("agency", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("as_of", sa.String(40), nullable=False),
        *_counts(
            "received", "ended", "early", "on_time", "late", "overdue_open",
            "apologies_required", "apologies_in_time", "apologies_late", "apologies_missing",
            "rescheduled_twice", "refusals_without_reason",
        ),
        *_counts(*(f"{name}_{part}" for name in _RATIOS
                   for part in ("numerator", "denominator"))),
        sa.Column("figures", sa.Text(), nullable=False),
        *_source(),
    )
    op.create_table(
        "centre_day_figures",
        sa.Column("centre", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("as_of", sa.String(40), nullable=False),
        *_counts("visits_waited", "wait_within_target_numerator",
                 "wait_within_target_denominator", "no_shows", "waiting_now"),
        sa.Column("figures", sa.Text(), nullable=False),
        *_source(),
    )
    op.create_table(
        "derived_events",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("agency", sa.String(64), nullable=True),
        sa.Column("occurred_at", sa.String(40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        *_source(),
    )
    for name, query in _VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {query}")


def downgrade() -> None:
    for name in _VIEWS:
        op.execute(f"DROP VIEW {name}")
    for table in ("derived_events", "centre_day_figures", "agency_day_figures",
                  "ticket_states", "case_states"):
        op.drop_table(table)
