"""The SQL store: engine, migrations and idempotent writes.

Every write is an upsert keyed by what the row is (a case, an agency's day in one
partition, a derived event), and a row fed from Kafka is only replaced by a record from a
later offset: writing a batch twice, or an older batch after a newer one, changes
nothing. The sink commits its Kafka offsets only after `write` has committed.

Offsets are compared only within one generation of the store. `onestop reprocess`
empties the derived topics, whose offsets then start again at 0, and starts a new
generation: a row of an older generation is replaced by any record of the current one,
and never the other way round.

A case or ticket row is never deleted: a changelog tombstone marks it archived, and a
state that comes after joins the archived state (`consumers.rows.folded_state_row`), so
the write reads the archived rows it needs in its own transaction.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from onestop.consumers.rows import STATE_TABLES, WITHOUT_OPENING, Rows, folded_state_row
from onestop.consumers.schema import (
    agency_day_figures,
    case_states,
    centre_day_figures,
    derived_events,
    generations,
    ticket_states,
)

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(RuntimeError):
    pass


def shown_url(url: str) -> str:
    """`url` as it may be shown or logged: its password, if any, replaced by ***. Read
    without parsing, so that a URL too broken to parse is hidden too (a password with an
    @ in it is hidden up to the last @)."""
    return re.sub(r"(://[^:/@]*:).*@", r"\1***@", url, count=1)


def connect(url: str) -> Engine:
    """An engine for `url` (sqlite:///file.db, postgresql+psycopg://user@host/db)."""
    try:
        # Pre-ping: a long-running sink outlives database restarts and cut links; a
        # connection that died in the pool is replaced instead of failing a batch.
        engine = create_engine(url, pool_pre_ping=True)
    except Exception as error:  # SQLAlchemy raises several kinds for a bad URL
        raise StoreError(f"database URL {shown_url(url)!r}: {error}") from None
    if engine.dialect.name == "sqlite":
        # A reader (the report) and the sink may share the file: wait for the lock instead
        # of failing at once, and let readers go on while a batch is written.
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    elif engine.dialect.name != "postgresql":
        raise StoreError(
            f"database URL {shown_url(url)!r}: only SQLite and PostgreSQL are supported")
    return engine


def _alembic(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        command.upgrade(_alembic(connection), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as connection:
        command.downgrade(_alembic(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Refuse a database the migrations have not brought to the current schema."""
    if not inspect(engine).has_table("case_states"):
        raise StoreError(
            f"{engine.url.render_as_string(hide_password=True)} has no onestop tables; "
            "run `onestop db upgrade` (the sink and `replay --db` do it themselves)"
        )


TABLES = {table.name: table for table in (
    case_states, ticket_states, agency_day_figures, centre_day_figures, derived_events,
)}
# Rows that never change once written: a repeat is simply skipped (but a newer generation
# rewrites them, since a rule change may change an event under the same id).
IMMUTABLE = {derived_events.name}
# The source partition of rows written from a file by `onestop replay --db` rather than
# read from Kafka: such a row always replaces a row read from a topic, and the other way
# round.
FROM_FILE = -1


def current_generation(connection: Connection) -> int:
    """The store's generation: 0 until `onestop reprocess` first ran."""
    return int(connection.execute(select(func.max(generations.c.generation))).scalar() or 0)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def write(self, rows: Rows) -> None:
        """All the rows in one transaction: either every one is stored or none. They
        belong to the store's current generation."""
        with self.engine.begin() as connection:
            generation = current_generation(connection)
            for name, keyed in rows.by_table.items():
                table = TABLES[name]
                if name in STATE_TABLES:
                    stored = self._stored_rows_needed(connection, table, keyed, generation)
                    final_rows = [folded_state_row(stored.get(key), records)
                                  for key, records in keyed.items()]
                else:
                    final_rows = [records[-1] for records in keyed.values()]
                upserts = [{**row, "generation": generation}
                           for row in final_rows if row and not row.get("_tombstone")]
                deletes = [row for row in final_rows if row and row.get("_tombstone")]
                if upserts:
                    connection.execute(self._upsert(table), upserts)
                for row in deletes:
                    connection.execute(
                        delete(table)
                        .where(*(column == row[column.name] for column in table.primary_key))
                        .where((table.c.generation < generation)
                               | (table.c.source_offset <= row["source_offset"]))
                    )

    def _stored_rows_needed(self, connection: Connection, table: Table,
                            keyed: dict[tuple[Any, ...], list[dict[str, Any]]],
                            generation: int) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The stored rows `folded_state_row` needs, by key: those of the batch's keys that
        are archived, those whose records start with a tombstone (which archives the row),
        and those with a state of late facts alone (which joins the row). Of the current
        generation only: an older one's row is replaced by the current one's records,
        never joined."""
        (key_column,) = table.primary_key.columns
        keys = [key for (key,) in keyed]
        needed = {key for (key,), records in keyed.items()
                  if records[0].get("_tombstone")
                  or any(record.get(WITHOUT_OPENING) for record in records)}
        stored: dict[tuple[Any, ...], dict[str, Any]] = {}
        # 500 keys at a time, so that no statement has more parameters than a database takes
        # (a backfill writes every case at once).
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            query = select(table).where(
                key_column.in_(part), table.c.generation == generation,
                or_(table.c.archived,
                    key_column.in_([key for key in part if key in needed])))
            for row in connection.execute(query).mappings():
                stored[(row[key_column.name],)] = dict(row)
        return stored

    def _upsert(self, table: Table) -> Any:
        statement = self.insert(table)
        keys = [column.name for column in table.primary_key]
        excluded = statement.excluded
        older_generation = table.c.generation < excluded.generation
        if table.name in IMMUTABLE:
            later = older_generation
        else:
            # Within a generation, only a record from the same partition at a later (or
            # the same) offset replaces the row; `replay --db` writes offset 0 and so
            # always replaces.
            later = older_generation | (
                (table.c.generation == excluded.generation)
                & ((table.c.source_partition != excluded.source_partition)
                   | (table.c.source_offset <= excluded.source_offset)))
        return statement.on_conflict_do_update(
            index_elements=keys,
            set_={column.name: excluded[column.name] for column in table.columns
                  if column.name not in keys},
            where=later,
        )

    def generation(self) -> int:
        with self.engine.connect() as connection:
            return current_generation(connection)

    def start_generation(self, started_at: str, reason: str) -> int:
        """A new generation, whose rows replace those of every older one; its number."""
        with self.engine.begin() as connection:
            generation = current_generation(connection) + 1
            connection.execute(insert(generations).values(
                generation=generation, started_at=started_at, reason=reason,
                old_rows_removed=False))
        return generation

    def highest_offsets(self, tables: list[Table]) -> dict[int, int]:
        """Per source partition, the highest offset of the current generation's rows
        read from Kafka in `tables` (the tables one topic feeds)."""
        highest: dict[int, int] = {}
        with self.engine.connect() as connection:
            generation = current_generation(connection)
            for table in tables:
                query = (select(table.c.source_partition, func.max(table.c.source_offset))
                         .where(table.c.generation == generation,
                                table.c.source_partition != FROM_FILE)
                         .group_by(table.c.source_partition))
                for partition, offset in connection.execute(query):
                    highest[partition] = max(offset, highest.get(partition, -1))
        return highest

    def old_rows_waiting(self) -> bool:
        """Whether the current generation's reprocessing still has older rows to remove."""
        with self.engine.connect() as connection:
            generation = current_generation(connection)
            removed = connection.execute(select(generations.c.old_rows_removed)
                                         .where(generations.c.generation == generation)
                                         ).scalar()
        return removed is False

    def remove_old_rows(self) -> dict[str, int]:
        """Remove the rows read from Kafka in older generations (what the new rules no
        longer produce; everything else was rewritten). Rows written from a file stay:
        the topics do not hold their events, so `replay --db` writes them again."""
        removed = {}
        with self.engine.begin() as connection:
            generation = current_generation(connection)
            for name, table in TABLES.items():
                removed[name] = connection.execute(
                    delete(table).where(table.c.generation < generation,
                                        table.c.source_partition != FROM_FILE)).rowcount
            connection.execute(update(generations)
                               .where(generations.c.generation == generation)
                               .values(old_rows_removed=True))
        return removed
