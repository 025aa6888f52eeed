"""Reprocessing and lost records: `onestop reprocess` after a rule change rebuilds the
store to the new rules' figures with no row left over, and a sink whose broker lost its
records (the embedded broker restarted under it) stops and says so instead of silently
ignoring what comes next."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer
from sqlalchemy import func, select

from onestop.common.replay import Replay
from onestop.common.settings import Settings
from onestop.common.topics import create_topics, topics_for
from onestop.consumers.report import build_report, parse_period
from onestop.consumers.schema import derived_events, generations
from onestop.consumers.sink import LOST_RECORDS_EXIT, BrokerLostRecords, Sink
from onestop.consumers.store import Store, connect, upgrade
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.broker import EmbeddedBroker
from onestop.streams.ingest import ingest_lines
from tests.integration.conftest import drain, eventually, settings_for, wait_processed
from tests.integration.test_live_pipeline import AS_OF, FIXED_CLOCK, province_file
from tests.integration.test_sql_sink import expected_rows, stored_rows

pytestmark = pytest.mark.integration


def onestop(settings: Settings, *arguments: str, timeout: float = 120) -> tuple[int, str]:
    """The `onestop` command as a child process: its exit status and what it said."""
    done = subprocess.run(  # noqa: S603 - this very program
        [sys.executable, "-m", "onestop.streams", *arguments], env=settings.environment(),
        capture_output=True, text=True, timeout=timeout, check=False)
    return done.returncode, done.stdout + done.stderr


def stricter_rules(folder: Path) -> Path:
    """The sample province with every limit of more than one working day cut to one: a
    rule change that turns many verdicts late."""
    changed = folder / "stricter"
    shutil.copytree(SAMPLE_PROVINCE, changed)
    path = changed / "procedures.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["limit_unit"] == "working_days" and int(row["limit"]) > 1:
            row["limit"] = "1"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return changed


def replayed_figures(path: Path, reference: Path) -> dict[str, Any]:
    rules = CaseRules(load_reference(reference))
    replay = Replay.for_rules(rules)
    with path.open("rb") as handle:
        list(replay.feed_lines(handle))
    period = parse_period("2026-03")
    return replay.report(AS_OF, period.first, period.last)


def run_worker_to_the_end(settings: Settings, start_worker: Any, ends: Any,
                          reference: Path) -> None:
    worker = start_worker(settings, clock=FIXED_CLOCK, reference=reference)
    worker.wait_ready()
    wait_processed(settings, ends, timeout=180)
    time.sleep(3 * settings.tick_seconds)  # the ticks after the last event have judged
    worker.stop()


def test_reprocess_after_a_rule_change_rebuilds_the_store_to_the_new_rules(
    settings: Settings, start_worker: Any, tmp_path: Path,
) -> None:
    path = province_file(tmp_path, cases=150, seed=21)
    counts = ingest_lines(settings, path.read_bytes().splitlines())
    run_worker_to_the_end(settings, start_worker, counts.ends, SAMPLE_PROVINCE)
    database = f"sqlite:///{tmp_path / 'store.db'}"
    engine = connect(database)
    upgrade(engine)
    store = Store(engine)
    first = Sink(settings, store)
    try:
        drain(first)
        # The sink is up: reprocess refuses, says which, and changes nothing.
        code, said = onestop(settings, "reprocess", "--db", database, "--yes")
        assert code == 2 and "the SQL sink" in said and "Sink.group_id" not in said, said
        assert Sink.group_id(settings) in said and "nothing was changed" in said
    finally:
        first.close()
    period = parse_period("2026-03")
    old_rules = load_reference(SAMPLE_PROVINCE)
    before = build_report(engine, old_rules, period, as_of=AS_OF)
    assert before["province"] == replayed_figures(path, SAMPLE_PROVINCE)["province"]
    old_ids = {row[0] for row in stored_rows(store)["derived_events"]}

    # Without --yes it only says what it would delete.
    code, said = onestop(settings, "reprocess", "--db", database)
    assert code == 2 and "--yes" in said and topics_for(settings).aggregates.name in said, said
    assert store.generation() == 0
    code, said = onestop(settings, "reprocess", "--db", database, "--yes")
    assert code == 0, said
    assert all(step in said for step in ("1/4", "2/4", "3/4", "4/4")), said
    assert store.generation() == 1

    changed = stricter_rules(tmp_path)
    # As in production, the worker runs on while the sink finishes: a worker stopped
    # just after writing a tick has not processed it, and the sink would wait for ever.
    worker = start_worker(settings, clock=FIXED_CLOCK, reference=changed)
    worker.wait_ready()
    wait_processed(settings, counts.ends, timeout=180)
    second = Sink(settings, store)
    try:
        drain(second)

        def read_on_and_finish() -> dict[str, int] | None:
            # What the sink's own loop does: read on, check again.
            second.poll_once(1.0)
            return second.finish_reprocessing()

        removed = eventually(read_on_and_finish, timeout=60, every=1)
        worker.stop()
        while second.poll_once(1.0) or second.poll_once(1.0):
            pass  # what the worker published before it stopped
    finally:
        second.close()
    assert removed is not None

    # The store holds exactly what the rebuilt topics hold: every row of the new
    # generation, none left over from the old rules, none twice.
    stored = stored_rows(store)
    expected = expected_rows(settings, generation=1)
    assert stored["derived_events"] == expected["derived_events"]
    assert {name: rows for name, rows in stored.items() if name in expected} == expected
    new_ids = {row[0] for row in stored["derived_events"]}
    assert new_ids != old_ids  # the stricter rules found other cases late
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(derived_events)).scalar() \
            == len(new_ids)
        assert connection.execute(select(generations.c.old_rows_removed)).scalars().all() \
            == [True]

    new_rules = load_reference(changed)
    after = build_report(engine, new_rules, period, as_of=AS_OF)
    expected_figures = replayed_figures(path, changed)
    assert after["province"] == expected_figures["province"]
    assert after["centres"] == expected_figures["centres"]
    assert after["province"] != before["province"]
    engine.dispose()


def send_derived(bootstrap: str, settings: Settings, names: list[str]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for name in names:
        producer.send(topics_for(settings).derived_events.name, key=name.encode(),
                      value=orjson.dumps({"event_id": name, "type": "case_closed",
                                          "case_id": name, "agency": "SX-STP",
                                          "occurred_at": "2026-03-03T09:00:00+07:00"}))
    producer.flush()
    producer.close()


def test_a_sink_whose_embedded_broker_restarted_stops_and_says_so(tmp_path: Path) -> None:
    broker = EmbeddedBroker().start()
    try:
        settings = settings_for(broker.bootstrap, tmp_path)
        create_topics(settings)
        send_derived(broker.bootstrap, settings, [f"old-{number}" for number in range(40)])
        database = f"sqlite:///{tmp_path / 'store.db'}"
        engine = connect(database)
        upgrade(engine)
        store = Store(engine)
        sink = Sink(settings, store)
        stop, ended = threading.Event(), []

        def run() -> None:
            try:
                sink.run(stop)
            except Exception as error:  # noqa: BLE001 - what the test looks at
                ended.append(error)

        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        deadline = time.monotonic() + 60
        while len(stored_rows(store)["derived_events"]) < 40:
            assert time.monotonic() < deadline, "the sink did not store the first records"
            time.sleep(0.5)

        # The broker restarts under the running sink: memory only, it comes back empty,
        # and a worker would write its new records from offset 0 again.
        broker.stop()
        broker = EmbeddedBroker(port=broker.port).start()
        create_topics(settings)
        send_derived(broker.bootstrap, settings, ["new-1", "new-2"])
        runner.join(90)
        went_on = runner.is_alive()
        stop.set()
        runner.join(10)
        sink.close()
        assert not went_on, "the sink went on as if nothing had happened"
        assert ended and isinstance(ended[0], BrokerLostRecords), ended
        message = str(ended[0])
        assert "Sink dừng" in message and "no longer holds records" in message
        assert "onestop reprocess --yes" in message
        assert {row[0] for row in stored_rows(store)["derived_events"]} == {
            f"old-{number}" for number in range(40)}

        # A sink started afterwards stops at once, with its own exit status.
        code, said = onestop(settings.model_copy(update={"database_url": database}), "sink",
                             timeout=90)
        assert code == LOST_RECORDS_EXIT, said
        assert "no longer holds records" in said and "Traceback" not in said
        engine.dispose()
    finally:
        broker.stop()
