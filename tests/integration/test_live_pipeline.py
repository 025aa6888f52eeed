"""The live pipeline against a real broker: the same events live and in batch give the
same figures, whatever the arrival order, duplicates, crashes or number of workers."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.consumers import schema
from onestop.consumers.sink import Sink
from onestop.consumers.store import Store, connect, upgrade
from onestop.models.case import derived_event_id
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.ingest import ingest_lines
from onestop.streams.simulate import SimulationSettings, simulate
from onestop.streams.snapshot import live_replay
from onestop.streams.tansu_compat import read_to_end
from tests.integration.conftest import drain, eventually, replay_of, wait_processed

pytestmark = pytest.mark.integration

# Well after the simulated weeks, so every case's outcome is settled when judged.
AS_OF = dt.datetime(2026, 4, 20, 17, tzinfo=dt.timezone(dt.timedelta(hours=7))).timestamp()
# Phiếu lý lịch tư pháp, handled by the Department of Justice (SX-STP).
PROVINCE_PROCEDURE = "1.004363"
FIXED_CLOCK = "fixed:2026-04-20T17:00:00+07:00"


def province_file(folder: Path, cases: int, seed: int, **rates: float) -> Path:
    settings = SimulationSettings(cases=cases, seed=seed, days=14, **rates)
    path = folder / f"province-{seed}.jsonl"
    with path.open("wb") as handle:
        for event in simulate(load_reference(SAMPLE_PROVINCE), settings):
            handle.write(orjson.dumps(event) + b"\n")
    return path


def derived_events(settings: Settings) -> list[dict[str, Any]]:
    records = read_to_end(settings.bootstrap_servers, [topics_for(settings).derived_events.name])
    return [orjson.loads(record.value) for record in records]


def derived_ids(settings: Settings) -> list[str]:
    return [event["event_id"] for event in derived_events(settings)]


def derived_ids_until(settings: Settings, until: float) -> set[str]:
    """The ids of the derived events that came about by `until`."""
    return {event["event_id"] for event in derived_events(settings)
            if dt.datetime.fromisoformat(event["occurred_at"]).timestamp() <= until}


def derived_kinds(settings: Settings, ids: set[str]) -> list[tuple[str, str, str]]:
    return [(event["type"], event["case_id"], event["occurred_at"])
            for event in derived_events(settings) if event["event_id"] in ids]


def live_matches(settings: Settings, expected: dict[str, Any]) -> bool:
    return live_replay(settings).report(AS_OF) == expected


def differences(settings: Settings, expected: dict[str, Any]) -> list[str]:
    """Where the live figures differ from the replay's, for a readable failure."""
    live = live_replay(settings).report(AS_OF)
    found = [f"{section}: {key}: live {live[section].get(key)} != replay {value}"
             for section in ("cases", "agencies", "centres")
             for key, value in expected[section].items() if live[section].get(key) != value]
    found += [f"cases: {key} only live" for key in live["cases"].keys() - expected["cases"].keys()]
    return found[:10]


def test_live_figures_equal_the_replay_despite_disorder_duplicates_and_bad_input(
    settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    path = province_file(tmp_path, cases=250, seed=5, disorder_rate=0.2, duplicate_rate=0.2)
    lines = path.read_bytes().splitlines()
    # Shuffle within the file as a producer restart might, and add broken messages.
    random.Random(7).shuffle(lines)
    applicant = {"name": "Đỗ Thị Mai", "phone": "0987654321", "email": "do.thi.mai@example.vn",
                 "address": "Số 9, đường Lê Lợi, tổ 4"}
    bad = [b"{not json", b'{"type":"received","event_id":"x1","case_id":"C-1"}',
           b'{"event_id":"x2","type":"opened","occurred_at":"2026-03-03T08:00:00+07:00",'
           b'"case_id":"C-2"}',
           # Personal data in a broken message, and an e-mail in the wrong field.
           orjson.dumps({"event_id": "x3", "type": "received", "case_id": "C-3",
                         "occurred_at": "2026-03-03T08:00:00", "procedure": PROVINCE_PROCEDURE,
                         "handling_agency": "SX-STP", "centre": "SX-TTPVHCC",
                         "channel": "counter", "applicant": applicant}),
           orjson.dumps({"event_id": "x4", "type": applicant["email"], "case_id": "C-4",
                         "occurred_at": "2026-03-03T08:00:00+07:00"})]
    # Everything is in the topics before the worker starts, so every tick comes after
    # all of a case's events and the derived events must be exactly the replay's.
    counts = ingest_lines(settings, lines[:500] + bad + lines[500:])
    expected, expected_ids = replay_of(path, AS_OF)
    worker = start_worker(settings, clock=FIXED_CLOCK)
    worker.wait_ready()

    wait_processed(settings, counts.ends, timeout=120)
    assert eventually(lambda: live_matches(settings, expected), timeout=20), (
        "live figures differ from the replay"
    )
    assert eventually(lambda: set(derived_ids(settings)) == expected_ids, timeout=20)

    letters = [
        orjson.loads(record.value)
        for record in read_to_end(settings.bootstrap_servers, [topics_for(settings).dead_letters.name])
    ]
    assert sorted(letter["original"] for letter in letters) == sorted(b.decode() for b in bad)
    reasons = {letter["original"]: letter["reason"] for letter in letters}
    assert reasons["{not json"].startswith("not valid JSON")
    assert "occurred_at" in reasons[bad[1].decode()]
    assert "opened" in reasons[bad[2].decode()]
    assert "occurred_at" in reasons[bad[3].decode()]
    assert reasons[bad[4].decode()].startswith("unknown event type")
    for letter in letters:
        assert letter["topic"] == topics_for(settings).case_events.name
        assert letter["offset"] >= 0 and letter["at"].startswith("2026-04-20T17:00:00")
        assert not [value for value in applicant.values() if value in letter["reason"]]

    # The worker's log (at info) holds no case or ticket id and no applicant's details.
    events = [orjson.loads(line) for line in lines]
    people = [event["applicant"] for event in events if event.get("applicant")]
    assert sum("email" in person for person in people) > 10
    secrets = {value for person in [*people, applicant] for value in person.values()}
    secrets |= {event[key] for event in events for key in ("case_id", "ticket_id")
                if event.get(key)}
    log = worker.log.read_text(errors="replace")
    assert "case partitions assigned" in log
    assert sorted(secret for secret in secrets if secret in log) == []


def test_events_and_histories_over_the_limits_are_dead_letters_and_the_rest_goes_on(
    settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    path = province_file(tmp_path, cases=50, seed=61)
    lines = path.read_bytes().splitlines()

    def event(case: str, number: int, kind: str, **fields: Any) -> bytes:
        at = dt.datetime(2026, 3, 3, 8, tzinfo=dt.timezone(dt.timedelta(hours=7)))
        return orjson.dumps({
            "event_id": f"{case}-{number:02}", "type": kind, "case_id": case,
            "occurred_at": (at + dt.timedelta(minutes=number)).isoformat(), **fields})

    def received(case: str, number: int, address: str = "Số 1") -> bytes:
        return event(case, number, "received", procedure=PROVINCE_PROCEDURE,
                     handling_agency="SX-STP", centre="SX-TTPVHCC", channel="counter",
                     applicant={"name": "Lê Văn An", "address": address})

    big = received("BIG-1", 0, address="x" * 250_000)  # over the 200,000 bytes allowed
    long = [received("LONG-1", 0)] + [
        event("LONG-1", number, "transferred", from_unit="SX-STP", to_unit="SX-SXD",
              method="electronic") for number in range(1, 15)]  # 15 events, 12 allowed
    # Each ~150 kB (under the event limit); from the 7th the case's state is over 1 MB.
    huge = [received("HUGE-1", number, address="y" * 150_000) for number in range(8)]
    kept = tmp_path / "kept.jsonl"
    kept.write_bytes(b"\n".join(lines + long[:12] + huge[:6]) + b"\n")
    expected, _ = replay_of(kept, AS_OF)

    limits = {"max_event_bytes": 200_000, "max_case_events": 12}
    start_worker(settings, clock=FIXED_CLOCK, **limits).wait_ready()
    unlimited = settings.model_copy(update={"max_event_bytes": 10**6})
    ends = {**ingest_lines(settings, lines).ends, **ingest_lines(unlimited, [big]).ends,
            **ingest_lines(settings, long).ends}
    for line in huge:  # one at a time, so that each is applied in a batch of its own
        ends.update(ingest_lines(unlimited, [line]).ends)
        wait_processed(settings, ends, timeout=60)
    assert eventually(lambda: live_matches(settings, expected), timeout=30), differences(
        settings, expected)

    letters = [orjson.loads(record.value) for record in read_to_end(
        settings.bootstrap_servers, [topics_for(settings).dead_letters.name])]
    reasons = {orjson.loads(letter["original"])["event_id"] if letter["original"].endswith("}")
               else letter["original"][:30]: letter["reason"] for letter in letters}
    assert reasons.pop(big.decode()[:30]) == (
        f"the record is {len(big):,} bytes; an event may have 200,000 at most")
    assert [letter for letter in letters if len(letter["original"]) > 200_000] == []
    for number in (12, 13, 14):
        assert reasons.pop(f"LONG-1-{number}") == (
            "its case or ticket already holds 12 events, the most one may hold")
    for number in (6, 7):
        assert reasons.pop(f"HUGE-1-{number:02}").startswith(
            "with this event its case's or ticket's state would be 1,0")
    assert reasons == {}


def test_ingest_lists_a_2_mb_line_as_a_dead_letter_and_finishes_the_file(
    settings: Settings, tmp_path: Path
) -> None:
    lines = province_file(tmp_path, cases=20, seed=71).read_bytes().splitlines()
    big = orjson.dumps({"event_id": "BIG-01", "type": "received", "case_id": "BIG",
                        "note": "x" * 2_000_000})
    path = tmp_path / "with-a-big-line.jsonl"
    path.write_bytes(b"\n".join([*lines[:3], big, *lines[3:]]) + b"\n")
    dead = tmp_path / "too-large.jsonl"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "onestop.streams", "ingest", str(path), "--dead-letters", str(dead)],
        env=settings.environment(), capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert "1 lines too large to send (line 4 first)" in done.stderr
    assert [orjson.loads(line) for line in dead.read_bytes().splitlines()] == [
        {"file": str(path), "line": 4,
         "reason": f"the record is {len(big):,} bytes; an event may have 65,536 at most"}]
    topics = topics_for(settings)
    sent = read_to_end(settings.bootstrap_servers,
                       [topics.case_events.name, topics.queue_events.name])
    assert len(sent) == len(lines)


def test_on_an_accelerated_clock_the_live_derived_events_are_the_replay_s(
    settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    """Rulebook §11.12: the worker judges each case as its clock passes its events and
    deadlines (here seven weeks in about a minute), the replay judges the whole history at
    the end; the same history gives the same derived events, those of cases at risk or
    overdue for a while and closed since included."""
    path = province_file(tmp_path, cases=200, seed=9, disorder_rate=0.1, duplicate_rate=0.1)
    counts = ingest_lines(settings, path.read_bytes().splitlines())
    expected, expected_ids = replay_of(path, AS_OF)
    # Warnings a judgement at the end alone would miss: cases at risk that ended since.
    ended = {case_id for case_id, case in expected["cases"].items() if case["status"] != "open"}
    assert len(expected_ids & {derived_event_id("case_at_risk", case) for case in ended}) > 5
    zone = dt.timezone(dt.timedelta(hours=7))
    start = dt.datetime(2026, 3, 1, tzinfo=zone)
    factor = 150_000.0  # simulated seconds per wall second: seven weeks in 30 s
    # The clock reaches 1 March 30 s from now: the worker has read every event by then,
    # so that it judges each case on its whole history, as the replay does.
    anchor = time.time() + 30
    worker = start_worker(
        settings, clock=f"accelerated:{start.isoformat()}:{factor}@{anchor}")
    worker.wait_ready()
    wait_processed(settings, counts.ends, timeout=120)
    assert time.time() < anchor, "the worker read the events too slowly for this test"
    time.sleep(max(0.0, anchor + (AS_OF - start.timestamp()) / factor + 3 - time.time()))

    # The worker's clock has run on past AS_OF: its events up to AS_OF are the replay's.
    live = eventually(lambda: derived_ids_until(settings, AS_OF) == expected_ids, timeout=30)
    found = derived_ids_until(settings, AS_OF)
    assert live, (f"{len(found - expected_ids)} derived events only live, "
                  f"{len(expected_ids - found)} only in the replay: "
                  f"{derived_kinds(settings, found ^ expected_ids)}")
    assert eventually(lambda: live_matches(settings, expected), timeout=20), differences(
        settings, expected)

    # Through the SQL tables too: the live sink's and `replay --db`'s (the backfill of a
    # file) hold the same derived events up to AS_OF.
    live_db, replayed_db = tmp_path / "live.db", tmp_path / "replayed.db"
    engine = connect(f"sqlite:///{live_db}")
    upgrade(engine)
    sink = Sink(settings, Store(engine))
    try:
        drain(sink)
    finally:
        sink.close()
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "onestop.streams", "replay", str(path), "--as-of",
         dt.datetime.fromtimestamp(AS_OF, zone).isoformat(), "--db",
         f"sqlite:///{replayed_db}"], capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert stored_derived_ids(live_db, AS_OF) == stored_derived_ids(replayed_db, AS_OF) == (
        expected_ids)
    engine.dispose()


def stored_derived_ids(database: Path, until: float) -> set[str]:
    engine = connect(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            bodies = connection.execute(select(schema.derived_events.c.body)).scalars().all()
    finally:
        engine.dispose()
    events = [orjson.loads(body) for body in bodies]
    return {event["event_id"] for event in events
            if dt.datetime.fromisoformat(event["occurred_at"]).timestamp() <= until}


def test_an_overdue_case_is_found_by_ticks_alone(
    settings: Settings, start_worker: Any
) -> None:
    worker = start_worker(settings, clock="wall")
    worker.wait_ready()
    zone = dt.timezone(dt.timedelta(hours=7))
    now = dt.datetime.now(zone).replace(microsecond=0)
    due = now + dt.timedelta(seconds=3)
    received = {
        "event_id": "tick-r1", "type": "received", "case_id": "TICK-1",
        "occurred_at": (now - dt.timedelta(minutes=5)).isoformat(),
        "procedure": PROVINCE_PROCEDURE, "handling_agency": "SX-STP", "centre": "SX-TTPVHCC",
        "channel": "counter", "due_at": due.isoformat(),
    }
    ingest_lines(settings, [orjson.dumps(received)])

    def overdue() -> list[dict[str, Any]]:
        records = read_to_end(
            settings.bootstrap_servers, [topics_for(settings).derived_events.name]
        )
        found = [orjson.loads(record.value) for record in records]
        return [event for event in found if event["type"] == "overdue_detected"]

    found = eventually(overdue, timeout=30, every=0.5)
    noticed = time.time()
    assert [event["case_id"] for event in found] == ["TICK-1"]
    assert found[0]["due_at"] == due.isoformat()
    assert noticed - due.timestamp() < 15


def test_a_worker_killed_mid_stream_loses_no_case_and_counts_none_twice(
    settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    path = province_file(tmp_path, cases=300, seed=11, duplicate_rate=0.05)
    lines = path.read_bytes().splitlines()
    expected, expected_ids = replay_of(path, AS_OF)
    first = start_worker(settings, clock=FIXED_CLOCK)
    first.wait_ready()
    half = len(lines) // 2
    counts = ingest_lines(settings, lines[:half])
    wait_processed(settings, counts.ends, timeout=120)
    # The rest arrives while the worker dies without warning, mid-batch.
    more = ingest_lines(settings, lines[half:half + 400])
    first.kill()

    second = start_worker(settings, clock=FIXED_CLOCK)
    second.wait_ready(timeout=90)
    rest = ingest_lines(settings, lines[half + 400:])
    wait_processed(settings, {**counts.ends, **more.ends, **rest.ends}, timeout=120)
    assert eventually(lambda: live_matches(settings, expected), timeout=30), differences(
        settings, expected
    )
    # Live, a case is judged on what has arrived so far, so warnings the full history
    # would not raise may have gone out; none that it raises may be missing.
    assert eventually(lambda: expected_ids <= set(derived_ids(settings)), timeout=20)


def test_two_workers_split_the_partitions_and_the_totals_stay_exact(
    settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    path = province_file(tmp_path, cases=300, seed=21)
    expected, _ = replay_of(path, AS_OF)
    workers = [start_worker(settings, clock=FIXED_CLOCK) for _ in range(2)]
    for worker in workers:
        worker.wait_ready(timeout=90)
    counts = ingest_lines(settings, path.read_bytes().splitlines())
    wait_processed(settings, counts.ends, timeout=120)
    assert eventually(lambda: live_matches(settings, expected), timeout=30), differences(
        settings, expected)

    def last_assignment(worker: Any) -> list[int]:
        lines = [line for line in worker.log.read_text().splitlines()
                 if "case partitions assigned" in line]
        return orjson.loads(lines[-1].rsplit(":", 1)[1])

    shares = [last_assignment(worker) for worker in workers]
    assert all(shares), shares
    assert sorted(shares[0] + shares[1]) == list(range(settings.partitions))


def test_a_worker_joining_and_leaving_mid_stream_changes_no_figure(
    settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    """Two rebalances while events arrive, with the keepers reading their batches
    straight from the fetches (streams/transport.py): partitions move to the second
    worker and back, and each batch is applied and committed by one of them."""
    path = province_file(tmp_path, cases=300, seed=31, duplicate_rate=0.05)
    lines = path.read_bytes().splitlines()
    expected, expected_ids = replay_of(path, AS_OF)
    first = start_worker(settings, clock=FIXED_CLOCK)
    first.wait_ready()
    third = len(lines) // 3
    ends = ingest_lines(settings, lines[:third]).ends
    second = start_worker(settings, clock=FIXED_CLOCK)  # joins mid-stream
    ends |= ingest_lines(settings, lines[third:2 * third]).ends
    second.wait_ready(timeout=90)
    assert eventually(lambda: "case partitions assigned" in second.log.read_text(), timeout=60)
    second.stop()  # leaves mid-stream
    ends |= ingest_lines(settings, lines[2 * third:]).ends
    wait_processed(settings, ends, timeout=120)
    assert eventually(lambda: live_matches(settings, expected), timeout=30), differences(
        settings, expected)
    assert eventually(lambda: expected_ids <= set(derived_ids(settings)), timeout=20)


def test_a_snapshot_of_a_pipeline_without_data_says_so(settings: Settings) -> None:
    """Topics made, nothing ingested, no worker: not a report of zeros."""
    from typer.testing import CliRunner

    from onestop.streams.cli import app

    result = CliRunner().invoke(app, ["snapshot"], env=settings.environment())
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "holds no case or ticket" in said, said
    assert "Traceback" not in said
