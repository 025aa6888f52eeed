"""Settled cases in the SQL store (issue 16.1): a changelog tombstone archives the case's
row instead of deleting it, and a state that comes after it holds late facts, which join
the archived state. On SQLite, through the sink's own records-to-rows path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from onestop.common.codec import Entry, decode_entry, encode_entry
from onestop.common.replay import Replay
from onestop.consumers.report import load_period
from onestop.consumers.rows import Rows, add_state_record
from onestop.consumers.schema import case_states, ticket_states
from onestop.consumers.store import Store, connect, upgrade
from onestop.models.case import CaseRules, CaseState, holds_applicant
from onestop.models.reference import SAMPLE_PROVINCE, load_reference

RULES = CaseRules(load_reference(SAMPLE_PROVINCE))
KEY = b'"H1"'


def event(kind: str, when: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"H1-{kind}", "type": kind, "case_id": "H1",
            "occurred_at": f"{when}+07:00", **fields}


SETTLED = [
    event("received", "2026-03-02T09:00:00", procedure="1.004363", handling_agency="SX-STP",
          centre="SX-TTPVHCC", channel="counter",
          applicant={"name": "Trần Thị Bình", "address": "12 Lê Lợi"}),
    event("processed", "2026-03-04T09:00:00", outcome="approved"),
    event("returned", "2026-03-05T09:00:00", channel="counter"),
]
RATED = event("rated", "2026-05-20T09:00:00", rating="satisfied")
ERASED = event("applicant_erased", "2026-05-21T09:00:00")


def state_of(events: list[dict[str, Any]]) -> CaseState:
    """The state the worker writes after `events` (of a case it holds, or late facts alone
    of one it no longer holds)."""
    replay = Replay.for_rules(RULES)
    list(replay.feed_lines(orjson.dumps(item) for item in events))
    state: CaseState = replay.cases["H1"]
    return state


def record(state: CaseState | None) -> bytes | None:
    return None if state is None else encode_entry(Entry(2, state))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    engine = connect(f"sqlite:///{tmp_path / 'onestop.db'}")
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


def write(store: Store, *records: tuple[int, CaseState | None]) -> None:
    """One batch of case changelog records, (offset, state or None for a tombstone)."""
    rows = Rows()
    for offset, state in records:
        add_state_record(rows, record(state), KEY, (2, offset))
    store.write(rows)


def stored(store: Store) -> Any:
    with store.engine.connect() as connection:
        rows = connection.execute(select(case_states)).all()
    assert len(rows) <= 1
    return rows[0] if rows else None


def kinds(row: Any) -> list[str]:
    return [fact.kind for fact in decode_entry(row.state.encode()).state.facts]


def test_a_tombstone_archives_the_row_and_keeps_it(store: Store) -> None:
    write(store, (10, state_of(SETTLED)))
    before = stored(store)
    assert not before.archived
    write(store, (11, None))
    after = stored(store)
    assert after.archived and after.source_offset == 11
    assert (after.state, after.first_at, after.last_at, after.ended) == (
        before.state, before.first_at, before.last_at, before.ended)
    # Read again (a sink that died before its offsets commit): nothing changes.
    write(store, (10, state_of(SETTLED)), (11, None))
    assert stored(store) == after


def test_a_tombstone_of_a_key_without_a_row_writes_nothing(store: Store) -> None:
    write(store, (11, None))
    with store.engine.connect() as connection:
        assert connection.execute(select(case_states)).all() == []
        assert connection.execute(select(ticket_states)).all() == []


def test_a_late_rating_joins_the_archived_case_and_the_report_reads_it(store: Store) -> None:
    write(store, (10, state_of(SETTLED)), (11, None))
    write(store, (12, state_of([RATED])), (13, None))
    row = stored(store)
    assert row.archived and row.source_offset == 13
    assert kinds(row) == ["received", "processed", "returned", "rated"]
    rated_at = dt.datetime.fromisoformat(RATED["occurred_at"]).timestamp()
    assert row.last_at == rated_at and row.ended
    # The report loads it as any other case: the period of the rating holds it.
    may = dt.datetime(2026, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=7))).timestamp()
    held = load_period(store.engine, RULES, may, rated_at + 1).cases["H1"]
    assert held == decode_entry(row.state.encode()).state


def test_late_facts_join_the_case_even_when_its_tombstone_was_missed(store: Store) -> None:
    """A sink down for longer than the changelog keeps tombstones (a day by default) never
    saw the case archived; the late facts that come after must still join the case, not
    replace it."""
    write(store, (10, state_of(SETTLED)))
    write(store, (12, state_of([RATED])), (13, None))
    row = stored(store)
    assert row.archived
    assert kinds(row) == ["received", "processed", "returned", "rated"]


def test_a_late_erasure_is_recorded_with_the_archived_case(store: Store) -> None:
    """The store never holds the applicant (rows are written without it); the erasure
    request joins the archived case, which stays archived and without the applicant."""
    settled = state_of(SETTLED)
    assert holds_applicant(settled)
    write(store, (10, settled), (11, None))
    write(store, (12, state_of([ERASED])), (13, None))
    row = stored(store)
    assert row.archived
    assert kinds(row) == ["received", "processed", "returned", "applicant_erased"]
    assert not holds_applicant(decode_entry(row.state.encode()).state)


def test_one_batch_applies_a_keys_records_in_order(store: Store) -> None:
    """State, tombstone, late facts, tombstone: all in one poll."""
    batch = [(10, state_of(SETTLED)), (11, None), (12, state_of([RATED])), (13, None),
             (14, state_of([ERASED])), (15, None)]
    write(store, *batch)
    row = stored(store)
    assert row.archived and row.source_offset == 15
    assert kinds(row) == ["received", "processed", "returned", "rated", "applicant_erased"]
    write(store, *batch)  # read again: nothing changes
    assert stored(store) == row


def test_a_state_for_a_row_not_archived_replaces_it(store: Store) -> None:
    """A case the worker still holds: each state replaces the row, facts lost included
    (a state is never joined with the stored one unless archived)."""
    write(store, (10, state_of(SETTLED)))
    write(store, (11, state_of(SETTLED[:1])))
    row = stored(store)
    assert not row.archived and row.source_offset == 11
    assert kinds(row) == ["received"]


def test_archived_rows_stay_in_their_generation_and_a_new_one_replaces_them(
    store: Store,
) -> None:
    """`onestop reprocess`: the new generation's records replace an archived row of an
    older one (never joined with it), and archive it again; the removal of older rows
    keeps the current generation's archived rows."""
    write(store, (10, state_of(SETTLED)), (11, None))
    store.start_generation("2026-12-01T10:00:00+07:00", "rule change")
    write(store, (3, state_of(SETTLED[:2])))
    row = stored(store)
    assert not row.archived and row.generation == 1
    assert kinds(row) == ["received", "processed"]
    write(store, (4, state_of(SETTLED)), (5, None))
    store.remove_old_rows()
    row = stored(store)
    assert row is not None and row.archived and row.generation == 1
