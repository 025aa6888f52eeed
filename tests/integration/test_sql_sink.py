"""The SQL sink against a real broker and real databases: a sink that dies between the
database commit and the offset commit reads the same records again without counting
anything twice, and the report from what it stored equals the replay."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from onestop.common.replay import Replay
from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.consumers.report import build_report, parse_period
from onestop.consumers.rows import (
    STATE_TABLES,
    Rows,
    add_aggregate_record,
    add_derived_record,
    add_state_record,
    folded_state_row,
)
from onestop.consumers.schema import metadata
from onestop.consumers.sink import Sink
from onestop.consumers.store import Store, connect, upgrade
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.ingest import ingest_lines
from onestop.streams.tansu_compat import read_to_end
from tests.integration.conftest import drain, wait_processed
from tests.integration.test_live_pipeline import AS_OF, FIXED_CLOCK, province_file

pytestmark = pytest.mark.integration


class Crash(Exception):
    """The sink dying after its database commit, before its offset commit."""


def expected_rows(settings: Settings, generation: int = 0) -> dict[str, set[tuple[Any, ...]]]:
    """The rows the topics' records make, each record applied once: newest per key, and a
    case's or ticket's records folded in order (tombstones archive), in the store's
    `generation`."""
    topics = topics_for(settings)
    handlers = {topics.aggregates.name: add_aggregate_record,
                topics.derived_events.name: add_derived_record,
                topics.case_changelog.name: add_state_record,
                topics.ticket_changelog.name: add_state_record}
    rows = Rows()
    for record in read_to_end(settings.bootstrap_servers, list(handlers)):
        handlers[record.topic](rows, record.value, record.key, (record.partition, record.offset))
    newest = {name: [folded_state_row(None, records) if name in STATE_TABLES else records[-1]
                     for records in keyed.values()]
              for name, keyed in rows.by_table.items()}
    return {
        name: {tuple({**row, "generation": generation}[column.name]
                     for column in metadata.tables[name].columns)
               for row in table_rows if row and not row.get("_tombstone")}
        for name, table_rows in newest.items()
    }


def stored_rows(store: Store) -> dict[str, set[tuple[Any, ...]]]:
    with store.engine.connect() as connection:
        return {name: {tuple(row) for row in connection.execute(select(table))}
                for name, table in metadata.tables.items()}




def test_a_sink_killed_between_database_and_offset_commits_counts_nothing_twice(
    settings: Settings, start_worker: Any, tmp_path: Path, database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = province_file(tmp_path, cases=200, seed=11)
    counts = ingest_lines(settings, path.read_bytes().splitlines())
    worker = start_worker(settings, clock=FIXED_CLOCK)
    worker.wait_ready()
    wait_processed(settings, counts.ends, timeout=120)
    time.sleep(3 * settings.tick_seconds)  # the ticks after the last event have judged
    worker.stop()

    engine = connect(database_url)
    upgrade(engine)
    store = Store(engine)
    writes: list[int] = []
    original_write = Store.write

    def write_then_count(self: Store, rows: Rows) -> None:
        original_write(self, rows)
        writes.append(len(rows))

    def die(_self: Sink) -> None:
        raise Crash

    monkeypatch.setattr(Store, "write", write_then_count)
    monkeypatch.setattr(Sink, "commit", die)
    first = Sink(settings, store, max_records=400)
    try:
        with pytest.raises(Crash):
            drain(first)
    finally:
        first.close()
    assert writes, "the first sink wrote nothing before dying"
    partial = stored_rows(store)
    assert sum(len(rows) for rows in partial.values()) > 0

    monkeypatch.undo()
    second = Sink(settings, store)
    try:
        read_again = drain(second)
    finally:
        second.close()

    stored = stored_rows(store)
    expected = expected_rows(settings)
    assert stored == {name: expected.get(name, set()) for name in stored}
    assert len(stored["derived_events"]) > 0 and len(stored["agency_day_figures"]) > 0

    # No offset was committed, so the second sink read everything again, the records
    # the first one had stored included.
    topics = topics_for(settings)
    assert read_again == len(read_to_end(settings.bootstrap_servers, [
        topics.aggregates.name, topics.derived_events.name, topics.case_changelog.name,
        topics.ticket_changelog.name]))

    rules = CaseRules(load_reference(SAMPLE_PROVINCE))
    replay = Replay.for_rules(rules)
    with path.open("rb") as handle:
        list(replay.feed_lines(handle))
    period = parse_period("2026-03")
    report = build_report(engine, rules.reference, period, as_of=AS_OF)
    expected_figures = replay.report(AS_OF, period.first, period.last)
    assert report["province"] == expected_figures["province"]
    assert report["centres"] == expected_figures["centres"]
    engine.dispose()


def test_a_record_the_sink_cannot_read_goes_to_the_dead_letter_topic(
    settings: Settings, tmp_path: Path,
) -> None:
    from kafka import KafkaProducer

    topics = topics_for(settings)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    producer.send(topics.derived_events.name, key=b"C-9", value=b"{half a record")
    producer.send(topics.derived_events.name, key=b"C-8", value=(
        b'{"event_id":"d8","type":"case_closed","case_id":"C-8","agency":"SX-STP",'
        b'"occurred_at":"2026-03-03T09:00:00+07:00"}'))
    producer.flush()
    producer.close()

    engine = connect(f"sqlite:///{tmp_path / 'dead.db'}")
    upgrade(engine)
    store = Store(engine)
    sink = Sink(settings, store)
    stop = threading.Event()
    try:
        drain(sink)
    finally:
        stop.set()
        sink.close()
    assert {row[0] for row in stored_rows(store)["derived_events"]} == {"d8"}
    dead = [record for record in read_to_end(settings.bootstrap_servers,
                                             [topics.dead_letters.name])]
    assert len(dead) == 1
    assert b"half a record" in dead[0].value and b"SQL sink: not a derived event" in dead[0].value
    engine.dispose()
