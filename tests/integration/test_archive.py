"""Running for years (issue 16). Settled cases leave the worker's live state, and nothing
a report, a board or a metric shows changes: the metrics still equal the replay, also
after a restart that recovers the tables, and so do the boards' recording rules. Ticks leave no record: the input topics hold
exactly the events sent. The SQL store keeps every case, the archived marked, its report
equals the replay, and a late event for an archived case reaches the stored case."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.consumers.report import build_report, parse_period
from onestop.consumers.schema import case_states
from onestop.consumers.sink import Sink
from onestop.consumers.store import Store, connect, upgrade
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.broker import free_port
from onestop.streams.ingest import IngestCounts, ingest_lines
from onestop.streams.tansu_compat import read_to_end
from tests.integration.conftest import drain, eventually, replay_of, wait_processed
from tests.integration.test_live_pipeline import AS_OF, FIXED_CLOCK, province_file
from tests.integration.test_metrics import recorded_rules, recording_rules_wanted, scrape
from tests.integration.test_reprocess import replayed_figures
from tests.metric_figures import agency_figures, centre_figures, replay_part
from tests.prometheus import start_prometheus

pytestmark = pytest.mark.integration

# Short, so that most of a fortnight's cases are archived by the end of the events.
WINDOW_DAYS = 1


def metrics_match(port: int, expected: dict[str, Any]) -> bool:
    try:
        samples = scrape(port)
    except OSError:  # a worker starting: its endpoint is not up yet
        return False
    agencies, centres = agency_figures(samples), centre_figures(samples)
    return (bool(agencies) and agencies == replay_part(expected["agencies"], agencies)
            and centres == replay_part(expected["centres"], centres))


def pipeline_counts(port: int) -> dict[str, float]:
    return {f"{name}:{labels.get('stream')}": value for name, labels, value in scrape(port)
            if name in ("onestop_archived_total", "onestop_held")}


def archival_settled(port: int) -> Callable[[], bool]:
    """A check that the worker's archived count is above 0 and has not moved for three
    checks (a key whose state changed in the tick that settled it is archived at the next
    tick). Read from the metrics: reading the changelogs each second would open a
    consumer each time, and a socket such a consumer leaves is a warning, so a failure."""
    history: list[float] = []

    def check() -> bool:
        counted = pipeline_counts(port)
        history.append(counted.get("onestop_archived_total:cases", 0)
                       + counted.get("onestop_archived_total:tickets", 0))
        return history[-1] > 0 and history[-3:] == [history[-1]] * 3
    return check


def archived_ids(settings: Settings) -> set[str]:
    """The keys whose last changelog record is a tombstone."""
    topics = topics_for(settings)
    last: dict[str, bytes | None] = {}
    for record in read_to_end(settings.bootstrap_servers,
                              [topics.case_changelog.name, topics.ticket_changelog.name]):
        last[orjson.loads(record.key)] = record.value
    return {key for key, value in last.items() if value is None}


@dataclass
class ArchivingRun:
    """A simulated province ingested and processed by a worker that archives after
    WINDOW_DAYS, with its metrics on `port`."""

    path: Path
    lines: list[bytes]
    counts: IngestCounts
    port: int
    worker: Any


def archiving_run(settings: Settings, start_worker: Any, tmp_path: Path, cases: int,
                  seed: int) -> ArchivingRun:
    path = province_file(tmp_path, cases=cases, seed=seed)
    lines = path.read_bytes().splitlines()
    counts = ingest_lines(settings, lines)
    port = free_port()
    worker = start_worker(settings, clock=FIXED_CLOCK, metrics_port=port,
                          archive_after_days=WINDOW_DAYS)
    worker.wait_ready()
    wait_processed(settings, counts.ends, timeout=120)
    return ArchivingRun(path, lines, counts, port, worker)


def test_archived_cases_keep_the_metrics_equal_to_the_replay_across_a_restart(
    settings: Settings, start_worker: Any, tmp_path: Path,
) -> None:
    run = archiving_run(settings, start_worker, tmp_path, cases=250, seed=8)
    lines, counts, port = run.lines, run.counts, run.port
    expected, _ids = replay_of(run.path, AS_OF)
    assert eventually(lambda: pipeline_counts(port).get("onestop_archived_total:cases", 0) > 0,
                      timeout=30), pipeline_counts(port)
    assert eventually(lambda: metrics_match(port, expected), timeout=30)

    assert eventually(archival_settled(port), timeout=60)
    archived = archived_ids(settings)
    held = pipeline_counts(port)
    assert held["onestop_archived_total:cases"] + held["onestop_archived_total:tickets"] \
        == len(archived)
    assert held["onestop_archived_total:cases"] >= 50, held
    assert held["onestop_held:cases"] < len(expected["cases"]) - 50

    # The worker judged on ticks all along, and the input topics hold only the events.
    topics = topics_for(settings)
    inputs = list(read_to_end(settings.bootstrap_servers,
                              [topics.case_events.name, topics.queue_events.name]))
    assert len(inputs) == counts.case_events + counts.queue_events == len(lines)
    assert all(record.key for record in inputs)

    # A restart recovers the tables: the archived totals come back with them.
    run.worker.stop()
    again = start_worker(settings, clock=FIXED_CLOCK, metrics_port=port,
                         archive_after_days=WINDOW_DAYS)
    again.wait_ready()
    assert eventually(lambda: metrics_match(port, expected), timeout=60)
    assert archived_ids(settings) == archived

    # The boards' recording rules, evaluated by Prometheus on these series: the replay's.
    want = recording_rules_wanted(expected)
    prometheus = start_prometheus(tmp_path, [f"127.0.0.1:{port}"])
    try:
        assert eventually(lambda: recorded_rules(prometheus, want) == want, timeout=30,
                          every=0.5), recorded_rules(prometheus, want)
    finally:
        prometheus.stop()


def test_the_store_keeps_archived_cases_and_a_late_event_reaches_them(
    settings: Settings, start_worker: Any, tmp_path: Path,
) -> None:
    run = archiving_run(settings, start_worker, tmp_path, cases=150, seed=9)
    path, lines, port = run.path, run.lines, run.port
    assert eventually(archival_settled(port), timeout=60)
    assert pipeline_counts(port)["onestop_archived_total:cases"] > 50
    archived = {key for key in archived_ids(settings) if not key.startswith("Q-")}
    assert len(archived) >= 20, len(archived)

    # A rating for an archived case, a minute after its last event (a final day).
    events = [orjson.loads(line) for line in lines]
    case_id = sorted(archived)[0]
    last = max((event["occurred_at"] for event in events if event.get("case_id") == case_id),
               key=lambda text: dt.datetime.fromisoformat(text))
    rating = {"event_id": f"{case_id}-late-rating", "type": "rated", "case_id": case_id,
              "rating": "unsatisfied", "occurred_at": (
                  dt.datetime.fromisoformat(last) + dt.timedelta(minutes=1)).isoformat()}
    late = ingest_lines(settings, [orjson.dumps(rating)])
    wait_processed(settings, late.ends, timeout=60)
    with_rating = tmp_path / "with-rating.jsonl"
    with_rating.write_bytes(b"\n".join([*lines, orjson.dumps(rating)]) + b"\n")

    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    sink = Sink(settings, Store(engine))

    def rating_stored() -> bool:
        sink.poll_once(1.0)
        with engine.connect() as connection:
            state = connection.execute(select(case_states.c.state).where(
                case_states.c.case_id == case_id)).scalar()
        return state is not None and rating["event_id"] in state
    try:
        drain(sink)
        assert eventually(rating_stored, timeout=60)
    finally:
        sink.close()
    with engine.connect() as connection:
        flags = dict(connection.execute(
            select(case_states.c.case_id, case_states.c.archived)).all())
    assert len(flags) == len({event["case_id"] for event in events if "case_id" in event})
    assert {key for key, flag in flags.items() if flag} == archived
    report = build_report(engine, load_reference(SAMPLE_PROVINCE), parse_period("2026-03"),
                          as_of=AS_OF)
    expected = replayed_figures(with_rating, SAMPLE_PROVINCE)
    assert report["province"] == expected["province"]
    assert report["centres"] == expected["centres"]
    without = replayed_figures(path, SAMPLE_PROVINCE)["province"]
    assert without["satisfaction_share"] != expected["province"]["satisfaction_share"]
    engine.dispose()
