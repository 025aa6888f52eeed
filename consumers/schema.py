"""The SQL tables the sink writes and the reports read (SQLAlchemy Core).

The schema itself is created and changed only by the alembic migrations in
`consumers/migrations`; these definitions are what the code reads and writes, and a test
checks that the migrations build exactly them.

Every row fed from Kafka remembers the partition and offset it came from, so that an
older record read again (a consumer restarted before its offsets were committed) never
overwrites a newer one, and the generation of the store it was written in: `onestop
reprocess` starts a new generation, whose records replace the older rows whatever their
offsets (the topics they come from start again at offset 0).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()


def _source() -> list[Column[int]]:
    return [
        Column("source_partition", Integer, nullable=False),
        Column("source_offset", BigInteger, nullable=False),
        Column("generation", Integer, nullable=False, server_default="0"),
    ]


# One row per generation of the store; the highest is the current one. `onestop reprocess`
# adds one when it empties the derived topics; the sink removes the rows of older
# generations (`old_rows_removed`) once the worker and the sink have read everything again.
generations = Table(
    "generations",
    metadata,
    Column("generation", Integer, primary_key=True, autoincrement=False),
    Column("started_at", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("old_rows_removed", Boolean, nullable=False),
)


# One row per case: its history as the pipeline keeps it (the changelog's state, with the
# applicant's personal data removed). Period reports judge these with the same rules as
# `onestop replay`, so their figures are the replay's. `first_at`/`last_at` (epoch
# seconds) select the cases a period can touch. `archived`: the worker no longer holds the
# case (it was settled); the row stays, and facts that come late join its state.
case_states = Table(
    "case_states",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("handling_agency", String(64)),
    Column("first_at", Float, nullable=False),
    Column("last_at", Float, nullable=False),
    Column("ended", Boolean, nullable=False),
    Column("state", Text, nullable=False),
    *_source(),
    Column("archived", Boolean, nullable=False, server_default=false()),
    Index("case_states_by_last_at", "last_at"),
)

ticket_states = Table(
    "ticket_states",
    metadata,
    Column("ticket_id", String(128), primary_key=True),
    Column("centre", String(64), nullable=False),
    Column("first_at", Float, nullable=False),
    Column("last_at", Float, nullable=False),
    Column("state", Text, nullable=False),
    *_source(),
    Column("archived", Boolean, nullable=False, server_default=false()),
    Index("ticket_states_by_first_at", "first_at"),
)

# The aggregates topic: one agency's figures for one local day and one source partition
# (sum over partitions for the agency's day; the migration's Grafana views do). The main
# figures are columns for Grafana; `figures` holds the whole JSON.
AGENCY_COUNTS = (
    "received", "ended", "early", "on_time", "late", "overdue_open",
    "apologies_required", "apologies_in_time", "apologies_late", "apologies_missing",
    "rescheduled_twice", "refusals_without_reason",
)
# Column prefix -> the ratio's name in the figures.
RATIO_COLUMNS = {
    "completed_on_time": "completed_on_time_rate",
    "service_index_on_time": "service_index_on_time_rate",
    "e_transfer": "e_transfer_share",
}
agency_day_figures = Table(
    "agency_day_figures",
    metadata,
    Column("agency", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("as_of", String(40), nullable=False),
    *(Column(name, Integer, nullable=False) for name in AGENCY_COUNTS),
    *(Column(f"{name}_{part}", Integer, nullable=False)
      for name in RATIO_COLUMNS for part in ("numerator", "denominator")),
    Column("figures", Text, nullable=False),
    *_source(),
)

centre_day_figures = Table(
    "centre_day_figures",
    metadata,
    Column("centre", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("as_of", String(40), nullable=False),
    Column("visits_waited", Integer, nullable=False),
    Column("wait_within_target_numerator", Integer, nullable=False),
    Column("wait_within_target_denominator", Integer, nullable=False),
    Column("no_shows", Integer, nullable=False),
    Column("waiting_now", Integer, nullable=False),
    Column("figures", Text, nullable=False),
    *_source(),
)

# Derived events (contract §5), immutable: their ids are derived from their inputs.
# `occurred_at` is the local ISO instant as published (it sorts in time order).
derived_events = Table(
    "derived_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("type", String(40), nullable=False),
    Column("case_id", String(64)),
    Column("agency", String(64)),
    Column("occurred_at", String(40), nullable=False),
    Column("body", Text, nullable=False),
    *_source(),
)

# What the notifier has sent, one row per notice and recipient: a notice whose key is
# here is not sent again, across restarts and repeated alerts. `key` is the derived
# event id, the alert's fingerprint and start, or the digest's agency and day.
notifications = Table(
    "notifications",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("recipient", String(200), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("agency", String(64)),
    Column("case_id", String(64)),
    Column("sent_at", String(40), nullable=False),
    Column("subject", Text, nullable=False),
)
