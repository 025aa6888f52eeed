"""`onestop replay FILE --db URL`: the sink's tables written from a replayed file, so a
province can load its history.

The rows are those the live pipeline and the sink would have written for the same
events: the states, the derived events, and each agency's and centre's figures per local
day and per source partition (the partition the producer's key would go to), judged as
of the day's end. Their source partition is FROM_FILE.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import orjson
from kafka.partitioner.default import murmur2

from onestop.common.replay import Replay, derived_json
from onestop.consumers.rows import Rows, case_row, day_figures_row, derived_row, ticket_row
from onestop.consumers.schema import (
    agency_day_figures,
    case_states,
    centre_day_figures,
    derived_events,
    ticket_states,
)
from onestop.consumers.store import FROM_FILE, Store
from onestop.models.aggregates import Period, agency_figures, centre_figures
from onestop.models.case import CLOSING_KINDS as CASE_CLOSING_KINDS
from onestop.models.facts import Fact, days_touched
from onestop.models.queue import CLOSING_KINDS as TICKET_CLOSING_KINDS

SOURCE = (FROM_FILE, 0)


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record keyed `key`."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def backfill(
    store: Store, replay: Replay, as_of: float, partitions: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write everything `replay` holds, judged as of `as_of`, in one transaction."""
    rules = replay.rules
    calendar = rules.calendar
    isoformat = calendar.isoformat
    rows = Rows()
    for state in replay.cases.values():
        rows.put(case_states, case_row(state, SOURCE))
    for ticket in replay.tickets.values():
        rows.put(ticket_states, ticket_row(ticket, SOURCE))
    for event in replay.derived:
        record = derived_json(event, isoformat)
        rows.put(derived_events, derived_row(record, orjson.dumps(record), SOURCE))
    if progress:
        progress("states and derived events ready; judging each day")

    for scope, table, states, closing_kinds, figures_of in (
        ("agency", agency_day_figures, replay.cases, CASE_CLOSING_KINDS,
         partial(agency_figures, rules)),
        ("centre", centre_day_figures, replay.tickets, TICKET_CLOSING_KINDS,
         partial(centre_figures, replay.queue_rules)),
    ):
        for record in aggregate_records(states, closing_kinds, figures_of, partitions, as_of,
                                        calendar, scope):
            rows.put(table, day_figures_row(record, SOURCE))
    store.write(rows)
    return {name: len(keyed) for name, keyed in rows.by_table.items()}


def aggregate_records(
    states: dict[str, Any], closing_kinds: frozenset[str],
    figures_of: Callable[[Iterable[Any], Period], dict[str, Any]],
    partitions: int, as_of: float, calendar: Any, scope: str,
) -> Iterable[dict[str, Any]]:
    """Aggregate records as the live pipeline publishes them: per local day the states
    can touch (from their first fact to the last one of an ended state, or to `as_of`)."""
    last_day = calendar.local_date(as_of)
    by_day: dict[tuple[int, dt.date], list[Any]] = defaultdict(list)
    for key, state in states.items():
        facts: tuple[Fact, ...] = state.facts
        if not facts:
            continue
        first, closed_on = days_touched(facts, closing_kinds, calendar.local_date)
        last = last_day if closed_on is None else min(closed_on, last_day)
        partition = partition_of(key, partitions)
        day = first
        while day <= last:
            by_day[(partition, day)].append(state)
            day += dt.timedelta(days=1)
    for (partition, day), day_states in sorted(by_day.items()):
        end = min(as_of, calendar.end_of_day(day))
        period = Period(calendar.start_of_day(day), end)
        for code, figures in sorted(figures_of(day_states, period).items()):
            yield {"scope": scope, "code": code, "day": day.isoformat(), "partition": partition,
                   "as_of": calendar.isoformat(end), "figures": figures.to_json()}
