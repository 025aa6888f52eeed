"""Live pipeline throughput and delays, against two baselines measured in the same run.

    python tests/bench/bench_pipeline.py [--cases 12000] [--days 30]

1. the raw aiokafka consume rate of the input topics (the ceiling), and Faust's own
   floor: the same batched agents doing nothing;
2. the naive pattern: one Faust table write per event, Faust's default settings
   (tests/bench/naive_app.py);
3. our pipeline (one worker), with its ticks, derived events and aggregates.

Each worker is a process of its own, fed the same pre-produced topics; a rate runs from
the worker's first committed offset to its commit of the last event. Then, on the wall
clock: the p99 delay from a case's due instant to its overdue output, and from an
event's production to its effect on the aggregates topic.

Kept out of the test run: it prints figures, it asserts nothing. Uses the embedded
broker unless KAFKA_BOOTSTRAP_SERVERS is set.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from onestop.common.settings import Settings
from onestop.common.topics import create_topics, topics_for
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.broker import EmbeddedBroker
from onestop.streams.ingest import ingest_lines
from onestop.streams.simulate import SimulationSettings, simulate

ROOT = Path(__file__).resolve().parents[2]

ZONE = dt.timezone(dt.timedelta(hours=7))


def settings_for(bootstrap: str, folder: Path, **extra: object) -> Settings:
    name = "b" + uuid.uuid4().hex[:8]
    return Settings(broker_url=bootstrap, app_id=name, topic_prefix=name,
                    data_dir=folder / name, commit_seconds=0.5, **{"metrics_port": 0, **extra})


def committed_total(settings: Settings, places: set[tuple[str, int]]) -> int:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        offsets = admin.list_group_offsets(settings.app_id).get(settings.app_id, {})
        return sum(meta.offset for tp, meta in offsets.items() if (tp.topic, tp.partition) in places)
    finally:
        admin.close()


def worker_run(command: list[str], settings: Settings, ends: dict[tuple[str, int], int],
               log: Path, timeout: float | None = None) -> tuple[int, float]:
    """(events, seconds) of one worker process over the pre-produced input topics: the
    events committed after its first committed offset and the time until it commits the
    last event. A worker that commits every event in its first commit is timed from the
    line that says it is ready (Faust's "Worker ready", at the info log level), which
    counts a commit interval more than it took. It raises if the worker exits first or
    `timeout` seconds go by."""
    total = sum(ends.values())
    with log.open("wb") as handle:
        process = subprocess.Popen(command, env=settings.environment(), stdout=handle,  # noqa: S603
                                   stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        first_at = first_done = ready_at = None
        while True:
            done = committed_total(settings, set(ends))
            now = time.monotonic()
            if ready_at is None and b"Worker ready" in log.read_bytes():
                ready_at = now
            if first_at is None and done > 0:
                first_at, first_done = now, done
            if done >= total:
                break
            if process.poll() is not None:
                raise RuntimeError(f"worker exited; see {log}")
            if timeout is not None and now - started > timeout:
                raise RuntimeError(f"worker committed {done:,} of {total:,} events in {timeout:.0f} s; "
                                   f"see {log}")
            time.sleep(0.1)
        if first_done < total:
            return total - first_done, now - first_at
        if ready_at is None:
            raise RuntimeError("the worker committed every event at once before it said it "
                               "was ready (run it at the info log level): too few events to time")
        return total, now - ready_at
    finally:
        process.terminate()
        process.wait(30)


def worker_rate(command: list[str], settings: Settings, ends: dict[tuple[str, int], int],
                log: Path) -> float:
    """Events per second of one worker process over the pre-produced input topics."""
    events, seconds = worker_run(command, settings, ends, log)
    return events / seconds


async def raw_consume(settings: Settings, ends: dict[tuple[str, int], int]) -> tuple[int, float]:
    """(events, seconds) of one aiokafka consumer reading the input topics to their ends."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                                enable_auto_commit=False, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, partition) for topic, partition in ends]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        total, seen, began = sum(ends.values()), 0, time.perf_counter()
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                seen += len(records)
        return seen, time.perf_counter() - began
    finally:
        await consumer.stop()


async def raw_rate(settings: Settings, ends: dict[tuple[str, int], int]) -> float:
    events, seconds = await raw_consume(settings, ends)
    return events / seconds


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def delays(bootstrap: str, folder: Path, samples: int) -> tuple[list[float], list[float]]:
    """(due → overdue output, production → aggregates) delays in seconds, wall clock."""
    settings = settings_for(bootstrap, folder, clock="wall", tick_seconds=0.5)
    create_topics(settings)
    spec = topics_for(settings)
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "onestop.streams", "worker", "--loglevel", "warn"],
        env=settings.environment(), stdout=(folder / "delays.log").open("wb"),
        stderr=subprocess.STDOUT, cwd=ROOT)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=0)
    reader = KafkaConsumer(spec.derived_events.name, spec.aggregates.name,
                           bootstrap_servers=settings.bootstrap_servers, group_id=None,
                           auto_offset_reset="earliest")

    def received(case: str, due: dt.datetime | None) -> bytes:
        now = dt.datetime.now(ZONE)
        event = {"event_id": f"r-{case}", "type": "received", "case_id": case,
                 "occurred_at": now.isoformat(), "procedure": "1.004363",
                 "handling_agency": "SX-STP", "centre": "SX-TTPVHCC", "channel": "counter"}
        if due is not None:
            event["due_at"] = due.isoformat()
        return orjson.dumps(event)

    try:
        time.sleep(12)  # the worker joins its group
        # Production → aggregates: one case at a time, until the day's count shows it.
        to_aggregates: list[float] = []
        counts: dict[bytes, int] = {}
        for number in range(samples):
            case = f"LAT-{number}"
            sent = time.time()
            producer.send(spec.case_events.name, key=case.encode(), value=received(case, None))
            producer.flush()
            while sum(counts.values()) < number + 1:
                for batch in reader.poll(timeout_ms=100).values():
                    for record in batch:
                        if record.topic == spec.aggregates.name and record.value is not None:
                            value = orjson.loads(record.value)
                            if value["code"] == "SX-STP":
                                counts[record.key] = value["figures"]["received"]
                if time.time() - sent > 30:
                    raise RuntimeError("no aggregate in 30 s")
            to_aggregates.append(time.time() - sent)
        # Due → overdue: cases falling due 2–6 s from now, found by ticks alone.
        due_at: dict[str, float] = {}
        for number in range(samples):
            case = f"DUE-{number}"
            due = (dt.datetime.now(ZONE) + dt.timedelta(seconds=2 + number % 5)).replace(
                microsecond=0)
            due_at[case] = due.timestamp()
            producer.send(spec.case_events.name, key=case.encode(), value=received(case, due))
        producer.flush()
        to_overdue: list[float] = []
        deadline = time.time() + 60
        while len(to_overdue) < samples and time.time() < deadline:
            for batch in reader.poll(timeout_ms=200).values():
                for record in batch:
                    if record.topic != spec.derived_events.name:
                        continue
                    value = orjson.loads(record.value)
                    if value["type"] == "overdue_detected" and value["case_id"] in due_at:
                        to_overdue.append(record.timestamp / 1000 - due_at[value["case_id"]])
        return to_overdue, to_aggregates
    finally:
        reader.close()
        producer.close()
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=12_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--samples", type=int, default=100)
    arguments = parser.parse_args()

    reference = load_reference(SAMPLE_PROVINCE)
    lines = [orjson.dumps(event) for event in simulate(
        reference, SimulationSettings(cases=arguments.cases, seed=1, days=arguments.days))]
    print(f"simulated province: {arguments.cases:,} cases, {len(lines):,} events")
    folder = Path(tempfile.mkdtemp(prefix="onestop-bench-"))
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None if external else EmbeddedBroker(log_path=str(folder / "broker.log")).start()
    bootstrap = external or broker.bootstrap
    try:
        end_of_month = dt.datetime.combine(
            dt.date(2026, 3, 2) + dt.timedelta(days=arguments.days), dt.time(17), ZONE)
        runs = {}
        for label, command in (
            ("faust, no work", [sys.executable, str(ROOT / "tests/bench/naive_app.py"), "--empty"]),
            ("naive", [sys.executable, str(ROOT / "tests/bench/naive_app.py")]),
            ("pipeline", [sys.executable, "-m", "onestop.streams", "worker", "--loglevel", "warn"]),
        ):
            settings = settings_for(bootstrap, folder, clock=f"fixed:{end_of_month.isoformat()}")
            create_topics(settings)
            ends = ingest_lines(settings, lines).ends
            if label == "naive":
                runs["raw aiokafka consume"] = asyncio.run(raw_rate(settings, ends))
            runs[label] = worker_rate(command, settings, ends, folder / f"{label[:5]}.log")
            print(f"  {label}: {runs[label]:,.0f} events/s")
        to_overdue, to_aggregates = delays(bootstrap, folder, arguments.samples)
    finally:
        if broker is not None:
            broker.stop()

    ours = runs["pipeline"]
    print()
    print(f"{'raw aiokafka consume (ceiling)':<34}{runs['raw aiokafka consume']:>12,.0f} events/s")
    print(f"{'faust agents doing nothing':<34}{runs['faust, no work']:>12,.0f} events/s")
    print(f"{'naive: a table write per event':<34}{runs['naive']:>12,.0f} events/s")
    print(f"{'our pipeline, one worker':<34}{ours:>12,.0f} events/s")
    print(f"  ratio to naive: {ours / runs['naive']:.2f}x (target >= 2x); "
          f"to the ceiling: {ours / runs['raw aiokafka consume']:.3f}; "
          f"to faust doing nothing: {ours / runs['faust, no work']:.2f}; "
          f"target >= 10,000 events/s: {'met' if ours >= 10_000 else 'not met'}")
    if to_overdue:
        print(f"due instant -> overdue output: p99 {p99(to_overdue):.2f} s, median "
              f"{statistics.median(to_overdue):.2f} s over {len(to_overdue)} cases (target <= 2 s)")
    else:
        print("due instant -> overdue output: no overdue output seen")
    print(f"production -> aggregates topic: p99 {p99(to_aggregates):.2f} s, median "
          f"{statistics.median(to_aggregates):.2f} s over {len(to_aggregates)} events "
          "(target <= 5 s)")
    print(f"logs: {folder}")


if __name__ == "__main__":
    main()
