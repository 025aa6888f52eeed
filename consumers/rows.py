"""What each Kafka record (or replayed state) becomes in the SQL tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Table

from onestop.common.codec import Entry, decode_entry, encode_entry
from onestop.consumers.schema import (
    AGENCY_COUNTS,
    RATIO_COLUMNS,
    agency_day_figures,
    case_states,
    centre_day_figures,
    derived_events,
    ticket_states,
)
from onestop.models.archive import OPENING_KINDS, with_late_facts
from onestop.models.case import CLOSING_KINDS, CaseState, handling_agency_of, without_applicant
from onestop.models.facts import is_closed
from onestop.models.queue import TicketState, ticket_centre

# The tables of the case and ticket changelogs: a tombstone there archives the row instead
# of deleting it, so every record of a key in a batch counts, in order (`folded_state_row`).
STATE_TABLES = frozenset({case_states.name, ticket_states.name})


@dataclass
class Rows:
    """Records to write in one transaction, per table and key: of the state tables every
    record of a key, in order; of the others only the newest. A tombstone (a compacted
    topic's record with no value) is a record marked `_tombstone`: it deletes the row, or
    archives it in the state tables."""

    by_table: dict[str, dict[tuple[Any, ...], list[dict[str, Any]]]] = field(
        default_factory=dict
    )

    def put(self, table: Table, row: dict[str, Any]) -> None:
        self._add(table, tuple(row[column.name] for column in table.primary_key), row)

    def tombstone(self, table: Table, key: tuple[Any, ...], source: tuple[int, int]) -> None:
        self._add(table, key, {
            "_tombstone": True, "source_partition": source[0], "source_offset": source[1],
            **dict(zip((c.name for c in table.primary_key), key, strict=True))})

    def _add(self, table: Table, key: tuple[Any, ...], record: dict[str, Any]) -> None:
        records = self.by_table.setdefault(table.name, {}).setdefault(key, [])
        if table.name not in STATE_TABLES:
            records.clear()
        records.append(record)

    def __len__(self) -> int:
        return sum(len(keyed) for keyed in self.by_table.values())


class BadRecord(ValueError):
    """A record the sink cannot store; the reason goes to the dead-letter topic."""


def _plain(error: Exception) -> str:
    """An exception in plain words for a dead letter."""
    if isinstance(error, KeyError):
        return f"no field {error}"
    return str(error) or type(error).__name__


def case_row(state: CaseState, source: tuple[int, int]) -> dict[str, Any]:
    state = without_applicant(state)
    facts = state.facts
    return {
        "case_id": state.case_id,
        "handling_agency": handling_agency_of(state),
        "first_at": facts[0].at,
        "last_at": facts[-1].at,
        "ended": is_closed(facts, CLOSING_KINDS),
        "state": encode_entry(Entry(source[0], state)).decode(),
        "source_partition": source[0],
        "source_offset": source[1],
    }


def ticket_row(state: TicketState, source: tuple[int, int]) -> dict[str, Any]:
    facts = state.facts
    return {
        "ticket_id": state.ticket_id,
        "centre": ticket_centre(state),
        "first_at": facts[0].at,
        "last_at": facts[-1].at,
        "state": encode_entry(Entry(source[0], state)).decode(),
        "source_partition": source[0],
        "source_offset": source[1],
    }


def state_row(state: CaseState | TicketState, source: tuple[int, int]) -> dict[str, Any]:
    return case_row(state, source) if isinstance(state, CaseState) else ticket_row(state, source)


# Marks a state record whose state has no receipt (or ticket issued): late facts alone.
WITHOUT_OPENING = "_without_opening"


def folded_state_row(stored: dict[str, Any] | None,
                     records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A case's or ticket's row after one batch's records of it, in order, from its stored
    row; None: nothing to write. A tombstone marks the row archived and keeps it: the
    worker no longer holds the case, which was settled. A state replaces the row, unless
    the row is archived, or the state has no receipt (`WITHOUT_OPENING`): then it holds
    only facts that came late, which join the stored state (`with_late_facts`). The
    second case is for a sink that missed the tombstone (down for longer than the
    changelog keeps tombstones, a day by default): a state of late facts alone must not
    replace a whole case. `stored` may be None when neither applies, and the records start
    with a state, which replaces the row anyway."""
    row = stored
    for record in records:
        source = (record["source_partition"], record["source_offset"])
        late_only = record.get(WITHOUT_OPENING, False)
        if record.get("_tombstone"):
            if row is not None:
                row = {**row, "archived": True, "source_partition": source[0],
                       "source_offset": source[1]}
        elif row is not None and (row["archived"] or late_only):
            late = with_late_facts(decode_entry(row["state"].encode()).state,
                                   decode_entry(record["state"].encode()).state)
            row = {**state_row(late, source), "archived": row["archived"]}
        else:
            row = {key: value for key, value in record.items() if key != WITHOUT_OPENING}
            row["archived"] = False
    return row


def day_figures_row(record: dict[str, Any], source: tuple[int, int]) -> dict[str, Any]:
    """An aggregates-topic value ({scope, code, day, partition, as_of, figures})."""
    figures = record["figures"]
    row: dict[str, Any] = {
        "day": dt.date.fromisoformat(record["day"]),
        "partition": int(record["partition"]),
        "as_of": record["as_of"],
        "figures": orjson.dumps(figures).decode(),
        "source_partition": source[0],
        "source_offset": source[1],
    }
    if record["scope"] == "agency":
        row["agency"] = record["code"]
        row.update((name, figures[name]) for name in AGENCY_COUNTS)
        for column, name in RATIO_COLUMNS.items():
            row[f"{column}_numerator"] = figures[name]["numerator"]
            row[f"{column}_denominator"] = figures[name]["denominator"]
    else:
        row["centre"] = record["code"]
        for name in ("visits_waited", "no_shows", "waiting_now"):
            row[name] = figures[name]
        row["wait_within_target_numerator"] = figures["wait_within_target"]["numerator"]
        row["wait_within_target_denominator"] = figures["wait_within_target"]["denominator"]
    return row


def derived_row(event: dict[str, Any], body: bytes, source: tuple[int, int]) -> dict[str, Any]:
    return {
        "event_id": event["event_id"],
        "type": event["type"],
        "case_id": event.get("case_id"),
        "agency": event.get("agency"),
        "occurred_at": event["occurred_at"],
        "body": body.decode(),
        "source_partition": source[0],
        "source_offset": source[1],
    }


def add_state_record(rows: Rows, value: bytes | None, key: bytes | None,
                     source: tuple[int, int]) -> None:
    """A record of the case or ticket table's changelog."""
    if value is None:
        if key is None:
            raise BadRecord("a changelog tombstone without a key")
        entity = orjson.loads(key)
        # A tombstone does not say whether it was a case or a ticket: both are archived.
        rows.tombstone(case_states, (entity,), source)
        rows.tombstone(ticket_states, (entity,), source)
        return
    try:
        state = decode_entry(value).state
    except (ValueError, TypeError) as error:
        raise BadRecord(f"not a table entry: {_plain(error)}") from None
    if not state.facts:
        raise BadRecord("a table entry without facts")
    row = state_row(state, source)
    if not any(fact.kind in OPENING_KINDS for fact in state.facts):
        row[WITHOUT_OPENING] = True
    rows.put(case_states if isinstance(state, CaseState) else ticket_states, row)


def add_aggregate_record(rows: Rows, value: bytes | None, key: bytes | None,
                         source: tuple[int, int]) -> None:
    """A record of the aggregates topic, keyed `<scope>:<code>:<day>:<partition>`."""
    if value is None:
        if key is None:
            raise BadRecord("an aggregates tombstone without a key")
        try:
            scope, code, day, partition = key.decode().rsplit(":", 3)
            place = (code, dt.date.fromisoformat(day), int(partition))
        except ValueError:
            raise BadRecord(f"aggregates key {key!r} is not scope:code:day:partition") from None
        table = agency_day_figures if scope == "agency" else centre_day_figures
        rows.tombstone(table, place, source)
        return
    try:
        record = orjson.loads(value)
        row = day_figures_row(record, source)
    except (ValueError, KeyError, TypeError) as error:
        raise BadRecord(f"not an aggregates record: {_plain(error)}") from None
    rows.put(agency_day_figures if record["scope"] == "agency" else centre_day_figures, row)


def add_derived_record(rows: Rows, value: bytes | None, key: bytes | None,
                       source: tuple[int, int]) -> None:
    if value is None:
        raise BadRecord("a derived event without a value")
    try:
        row = derived_row(orjson.loads(value), value, source)
    except (ValueError, KeyError, TypeError) as error:
        raise BadRecord(f"not a derived event: {_plain(error)}") from None
    rows.put(derived_events, row)
