"""The open cases that are late or at risk, for the agency board's case list.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The rules' warnings (derived events, contract §5) of cases the changelog says are not
# closed: `overdue_detected` makes a case late; `case_at_risk` without it, at risk. Each
# kind is raised once per case, so a case has one row. `due_day` is the day the case is
# due by the end of (a due at 24:00 is that day's, as models.calendar.day_ending counts
# it), read from the due instant's own local wall time as the pipeline wrote it.
# JSON is read differently by the two databases; the rest is the same SQL.
_BODY = {
    "postgresql": "(e.body::json ->> '{field}')",
    "sqlite": "json_extract(e.body, '$.{field}')",
}
_DAY_BEFORE = {
    "postgresql": "CAST(CAST(substr({instant}, 1, 19) AS timestamp) - interval '1 second' AS date)",
    "sqlite": "date(substr({instant}, 1, 19), '-1 seconds')",
}


def _view(dialect: str) -> str:
    due_at = _BODY[dialect].format(field="due_at")
    return f"""
        SELECT e.case_id, c.handling_agency AS agency,
            {_BODY[dialect].format(field="holder")} AS holder,
            {due_at} AS due_at, {_DAY_BEFORE[dialect].format(instant=due_at)} AS due_day,
            CASE WHEN e.type = 'overdue_detected' THEN 1 ELSE 0 END AS overdue
        FROM derived_events e JOIN case_states c ON c.case_id = e.case_id
        WHERE NOT c.ended AND (
            e.type = 'overdue_detected'
            OR (e.type = 'case_at_risk' AND NOT EXISTS (
                SELECT 1 FROM derived_events o
                WHERE o.case_id = e.case_id AND o.type = 'overdue_detected')))"""


def upgrade() -> None:
    op.execute(f"CREATE VIEW late_and_at_risk_cases AS {_view(op.get_bind().dialect.name)}")


def downgrade() -> None:
    op.execute("DROP VIEW late_and_at_risk_cases")
