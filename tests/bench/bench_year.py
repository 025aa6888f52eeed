"""A simulated year: the demo province fed live for 365 simulated days on an accelerated
clock, with the worker's archival of settled cases (issue 16), against a short first leg
with archival effectively off.

    python tests/bench/bench_year.py [--days 365] [--speed 28800] [--volume 1]
                                     [--restart-months 2 12] [--off-days 75]
                                     [--broker tansu|kafka]

What runs, per leg, with the pieces of bench_soak.py (its feeder, sampling and worker
process): a fresh broker, the topics, one worker process (the product's
settings but `ONESTOP_ARCHIVE_AFTER_DAYS`, logging at info so that Faust's recovery
shows in its log), and the feeder producing the simulated province's events when the
accelerated clock reaches their event time, with its duplicates and malformed records.
The broker is the embedded Tansu (`--broker tansu`, the default), or with `--broker
kafka` a single-node Apache Kafka (tests/apache_kafka.py: its jars from Maven, run on
loopback) whose log settings are Kafka's defaults scaled by the clock's speed
(`kafka_log_settings`): a segment rolls after 7 simulated days (`log.roll.ms` = 7 days /
speed, 21 s at the default speed), a tombstone is kept a simulated day after its first
cleaning (`log.cleaner.delete.retention.ms` = 1 day / speed, 3 s), the cleaner looks for
work every second (`log.cleaner.backoff.ms` = 1000) and cleans a log once its uncleaned
part is as large as its cleaned part (`log.cleaner.min.cleanable.ratio` at Kafka's 0.5).

1. "archival off": `--off-days` (75) simulated days with `ONESTOP_ARCHIVE_AFTER_DAYS`
   3650, the slope that archival replaces (`--off-days 0` skips it).
2. "year": `--days` (365) simulated days with the default window of 60 days (or
   `--archive-after-days`). At the end of each simulated month of `--restart-months`
   (2 and 12; a month runs from the start's day of the month to the next), once the
   worker has committed everything fed so far, the worker is stopped with SIGTERM and
   started again: the script times the start to the first tick handled ("ready", as in
   bench_soak) and takes from the worker's log Faust's changelog restore ("Restoring
   state from changelog topics" to "Done reading from changelog topics") and its
   "Worker ready". The feeder holds back meanwhile and sends what fell due once the
   worker is ready (the clock runs on): the stopped process's counters are complete and
   "ready" carries no backlog.

Every `--sample-seconds` the script reads the worker's RSS, its /metrics (events
processed, dead letters, `onestop_held` by stream, `onestop_archived_total`), the lag of
its consumer group and the broker's RSS (on Kafka, its JVM's). Per-process counters are
added up across the restarts. At the end it prints one row per simulated month (RSS
mean, max and at the month's end; cases and tickets held; archived so far), the
restarts, the records on the input topics against the events sent (tick records, key
b"", counted apart: none since the ticks have their own topic), dead letters against the
malformed records sent, derived-event ids seen twice, and the records written to the
changelogs against the cases and tickets held. On Kafka also the records still on the
changelogs, read from the beginning once the worker has stopped at each restart (what
its restore reads) and at the end, and the log cleaner's cleanings of the changelogs
from the broker's log (kept in the leg's folder as broker.log).

Pace: at the default 28,800x a simulated day takes 3 wall seconds, the year about 18
minutes and the whole script (both legs, the restarts, reading the topics) about 26 on
the 2-core development machine. On the embedded broker the month-12 restart alone takes
about two minutes: Tansu compacts no changelog, so the restore reads a year of records.
On Kafka (`--broker kafka --off-days 0`, the year alone: 20.2 wall minutes on
2026-12-01) the worker was ready again in 14.1 s at month 2 and 17.8 s at month 12
(Tansu: 27.3 and 127.0 s): the restores read 20,566 and 32,622 records, of 62,768 and
454,506 written, the cleaner having compacted the changelogs all year (README: Soak
benchmark).
Kept out of the test run: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench_soak import (
    ROOT,
    ZONE,
    Feed,
    Feeder,
    LagProbe,
    Run,
    Sample,
    add_feed_arguments,
    build_feed,
    by_label,
    fetch_metrics,
    interrupt,
    metric_sums,
    print_outputs,
    read_outputs,
    rss_mb,
    simulation_start,
    slope_per_1000,
    soak_settings,
    wait_ready,
    worker_process,
)
from kafka import TopicPartition

from onestop.common.clock import Clock
from onestop.common.codec import OLD_TICK_KEY
from onestop.common.settings import Settings
from onestop.common.topics import create_topics, topics_for
from onestop.streams.broker import EmbeddedBroker
from onestop.streams.tansu_compat import read_to_end

DAY = 86400
DAY_MS = DAY * 1000
# Faust's log lines: "[2026-12-01 20:01:02,345] [pid] [INFO] message".
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\] \[(\d+)\] \[\w+\] (.*)")
LOG_MARKS = {
    "restoring": "Restoring state from changelog topics",
    "restored": "Done reading from changelog topics",
    "faust_ready": "Worker ready",
}
# The log cleaner's report on each log it cleaned (Apache Kafka's server.log), e.g.
# "Log cleaner thread 0 cleaned log soak1a2b3c-cases-changelog-2 (dirty section = [..])"
# then, a few lines on, "Start size: 0.4 MB (2,345 messages)" and "End size: …".
CLEANED = re.compile(r"cleaned log (\S+)-(\d+) \(dirty section")
CLEANER_SIZE = re.compile(r"(Start|End) size: [\d.,]+ MB \(([\d,]+) messages\)")


def kafka_log_settings(speed: float) -> dict[str, object]:
    """Apache Kafka's log defaults that are spans of time, scaled by the clock's speed, so
    that a simulated year sees the segment rolls and the compaction a real year would.

    - `log.roll.ms`: 7 days / speed (Kafka's log.roll.hours, 168). The cleaner never
      touches the active segment, so without a roll a changelog is never compacted.
    - `log.cleaner.delete.retention.ms`: 1 day / speed (Kafka's default): how long a
      tombstone is kept after the cleaner first passed over it.
    - `log.cleaner.backoff.ms`: 1000 (Kafka's 15 s would be 5 simulated days at the
      default speed; scaled, 0.5 ms): how often the cleaner looks for work.
    - `log.cleaner.min.cleanable.ratio`: Kafka's 0.5, a ratio, nothing to scale: a log
      is cleaned once its uncleaned part is as large as its cleaned part.

    Left as they are: the retention of the topics that delete (their days would delete
    the derived events the report reads), and the changelogs' own
    `max.compaction.lag.ms` of a week, which the product sets when it creates them: at
    this pace it never comes due, so the ratio alone starts a cleaning, and a changelog
    here holds at most about as much as one where the week forces one."""
    return {
        "log.roll.ms": round(7 * DAY_MS / speed),
        "log.cleaner.delete.retention.ms": round(DAY_MS / speed),
        "log.cleaner.backoff.ms": 1000,
        "log.cleaner.min.cleanable.ratio": 0.5,
    }


@dataclass
class BenchBroker:
    kind: str  # tansu or kafka
    url: str
    pid: int  # the broker's process (Kafka's JVM), for its RSS


@contextmanager
def bench_broker(kind: str, folder: Path, speed: float) -> Iterator[BenchBroker]:
    """A fresh broker for one leg: the embedded Tansu, or a single-node Apache Kafka
    (tests/apache_kafka.py) with `kafka_log_settings`. Kafka's server.log is copied to
    the leg's folder as broker.log when it stops (its own folder is deleted)."""
    if kind == "tansu":
        with EmbeddedBroker(log_path=str(folder / "broker.log")) as embedded:
            assert embedded.process is not None
            yield BenchBroker(kind, embedded.url, embedded.process.pid)
        return
    sys.path.insert(0, str(ROOT))
    from tests.apache_kafka import ApacheKafka

    with ApacheKafka(properties=kafka_log_settings(speed)) as kafka:
        node = kafka.nodes[0]
        assert node.process is not None
        try:
            yield BenchBroker(kind, f"kafka://{kafka.bootstrap}", node.process.pid)
        finally:
            shutil.copy(node.log, folder / "broker.log")


def cleaner_report(log: Path, topics: list[str]) -> dict[str, tuple[int, int, int]]:
    """Per topic of `topics`, from Kafka's server.log: (cleanings of its partitions, and
    over its partitions' last cleanings, the messages read and the messages written)."""
    cleanings: Counter[str] = Counter()
    last: dict[tuple[str, int], list[int]] = {}
    current: list[int] | None = None
    for line in log.read_text(errors="replace").splitlines():
        cleaned = CLEANED.search(line)
        if cleaned is not None:
            current = None
            if cleaned[1] in topics:
                cleanings[cleaned[1]] += 1
                current = last[(cleaned[1], int(cleaned[2]))] = [0, 0]
            continue
        size = CLEANER_SIZE.search(line)
        if size is not None and current is not None:
            current[0 if size[1] == "Start" else 1] = int(size[2].replace(",", ""))
    return {topic: (cleanings[topic],
                    sum(sizes[0] for (name, _), sizes in last.items() if name == topic),
                    sum(sizes[1] for (name, _), sizes in last.items() if name == topic))
            for topic in topics}


def month_end(start: float, month: int) -> float:
    """The instant simulated month `month` (1, 2 …) ends: the start's day of the month,
    `month` months on."""
    first = dt.datetime.fromtimestamp(start, ZONE)
    index = first.month - 1 + month
    return first.replace(year=first.year + index // 12, month=index % 12 + 1).timestamp()


@dataclass
class YearSample(Sample):
    held_cases: float = 0.0  # onestop_held{stream="cases"}
    held_tickets: float = 0.0
    archived: float = 0.0  # onestop_archived_total, over the worker's processes


@dataclass
class Restart:
    month: int
    at: float  # simulated instant of the stop
    wall: float  # seconds since feeding began
    waited: float  # wall seconds waited for the worker to commit what was fed
    held: float  # cases and tickets held at the stop
    changelog: dict[str, int]  # records written to each changelog (end offsets)
    rss_before: float
    stop_seconds: float = 0.0
    exit_status: int | None = None
    ready_seconds: float = 0.0  # start to the first tick handled
    marks: dict[str, float] = field(default_factory=dict)  # from the log, seconds from start
    rss_after: float = 0.0
    held_after: float = 0.0
    # Records on each changelog once the worker stopped, read from the beginning: what
    # the restore reads (Kafka; on Tansu, all those written).
    present: dict[str, int] | None = None


@dataclass
class Leg(Run):
    archive_days: int = 60
    restart_months: tuple[int, ...] = ()
    sent: int = 0  # records in the feed (its items are dropped after the leg)
    restarts: list[Restart] = field(default_factory=list)
    # Per input topic: (records, of which tick records).
    inputs: dict[str, tuple[int, int]] = field(default_factory=dict)
    sent_by_topic: dict[str, int] = field(default_factory=dict)
    broker: str = "tansu"
    # Records written to each changelog by the end (the embedded broker compacts none).
    changelog_end: dict[str, int] = field(default_factory=dict)
    # On Kafka: the records still on each changelog at the end, read from the beginning,
    # and the log cleaner's work on them (cleanings, messages before and after the last).
    changelog_present: dict[str, int] | None = None
    cleaner: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def month_of(self, instant: float) -> int:
        """1 for the first simulated month …; 0 once the window is over."""
        if instant > self.window_end:
            return 0
        month = 1
        while instant > month_end(self.start, month):
            month += 1
        return month

    @property
    def window_end(self) -> float:
        return self.start + self.days * DAY

    def restart_at(self, month: int) -> float:
        return min(month_end(self.start, month), self.window_end)


class WorkerControl:
    """The leg's worker process, stopped and started again; the counters of the processes
    that have stopped are kept, so that the samples' counters run on across restarts."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings, self.log = settings, log
        self.context: AbstractContextManager[subprocess.Popen[bytes]] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.earlier: Counter[str] = Counter()  # series totals of the stopped processes
        self.earlier_dead: Counter[str] = Counter()  # dead letters by reason, likewise
        self.last_text = ""

    def start(self) -> subprocess.Popen[bytes]:
        self.context = worker_process(self.settings, self.log, loglevel="info")
        self.process = self.context.__enter__()
        self.last_text = ""
        return self.process

    def stop(self) -> float:
        """SIGTERM (SIGKILL after 15 s, as bench_soak does); the wall seconds it took."""
        began = time.monotonic()
        if self.context is not None:
            self.context.__exit__(None, None, None)
            self.context = None
            self.earlier.update(metric_sums(self.last_text))
            self.earlier_dead.update(self.dead_letters(self.last_text, earlier=False))
            self.last_text = ""
        return time.monotonic() - began

    def read(self) -> dict[str, float]:
        """This process's series (summed over labels) plus those of the stopped ones."""
        text = fetch_metrics(self.settings.metrics_port)
        if text is not None:
            self.last_text = text
        sums = metric_sums(self.last_text)
        for name in ("onestop_events_processed_total", "onestop_dead_letters_total",
                     "onestop_archived_total"):
            sums[name] = sums.get(name, 0.0) + self.earlier[name]
        held = by_label(self.last_text, "onestop_held", "stream")
        sums["held_cases"], sums["held_tickets"] = held.get("cases", 0), held.get("tickets", 0)
        return sums

    def dead_letters(self, text: str | None = None, earlier: bool = True) -> dict[str, float]:
        reasons = Counter(by_label(self.last_text if text is None else text,
                                   "onestop_dead_letters_total", "reason"))
        if earlier:
            reasons.update(self.earlier_dead)
        return dict(reasons)


def caught_up(probe: LagProbe, ends: dict[TopicPartition, int]) -> bool:
    """Whether the worker's group has committed every input record up to `ends`."""
    committed = probe.committed()
    return all(committed.get((tp.topic, tp.partition), 0) >= end for tp, end in ends.items())


def log_marks(log: Path, offset: int, pid: int, started: float) -> dict[str, float]:
    """Seconds from `started` (wall) to Faust's recovery marks in the log of process
    `pid`, written after byte `offset`: the first "restoring", the last "restored"
    before the first "Worker ready"."""
    marks: dict[str, float] = {}
    with log.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            match = LOG_LINE.match(raw.decode(errors="replace"))
            if match is None or int(match[3]) != pid:
                continue
            for mark, text in LOG_MARKS.items():
                if text in match[4] and (mark == "restored" or mark not in marks):
                    at = time.mktime(time.strptime(match[1], "%Y-%m-%d %H:%M:%S"))
                    marks[mark] = at + int(match[2]) / 1000 - started
            if "faust_ready" in marks:
                break
    return marks


def changelog_records(probe: LagProbe) -> dict[str, int]:
    """Records written to each changelog: the sum of its partitions' end offsets."""
    records: Counter[str] = Counter()
    for tp, end in probe.ends().items():
        records[tp.topic] += end
    return dict(records)


def changelog_names(settings: Settings) -> list[str]:
    topics = topics_for(settings)
    return [topics.case_changelog.name, topics.ticket_changelog.name,
            topics.archive_changelog.name]


def changelog_present(settings: Settings) -> dict[str, int]:
    """Records on each changelog now, read from the beginning (after compaction)."""
    names = changelog_names(settings)
    counts = Counter(record.topic for record in
                     read_to_end(settings.bootstrap_servers, names, timeout=600))
    return {name: counts[name] for name in names}


def restart(leg: Leg, worker: WorkerControl, feeder: Feeder, month: int, probe: LagProbe,
            changelogs: LagProbe, clock: Clock, wall: float) -> Restart:
    """Stop the worker with SIGTERM once it has committed what was fed, start it again,
    and time its recovery. The feeder holds back meanwhile (the clock runs on, and what
    fell due goes out once the worker is ready), so that the counters of the stopped
    process are complete and "ready" does not include a backlog."""
    assert worker.process is not None and leg.folder is not None
    feeder.paused.set()
    waited = time.monotonic()
    ends = probe.ends()
    while not caught_up(probe, ends) and time.monotonic() - waited < 60:
        time.sleep(0.5)
    metrics = worker.read()
    event = Restart(month, clock.now(), wall, time.monotonic() - waited,
                    metrics["held_cases"] + metrics["held_tickets"], changelog_records(changelogs),
                    rss_mb(worker.process.pid))
    event.stop_seconds = worker.stop()
    event.exit_status = worker.process.returncode
    if leg.broker == "kafka":
        event.present = changelog_present(worker.settings)
    log = leg.folder / "worker.log"
    offset = log.stat().st_size
    started = time.time()
    process = worker.start()
    wait_ready(process, worker.settings.metrics_port, leg.folder, timeout=600)
    event.ready_seconds = time.time() - started
    event.rss_after = rss_mb(process.pid)
    # The held gauges are set on each stream's ticks: wait for both.
    deadline = time.monotonic() + 30
    while True:
        metrics = worker.read()
        streams = by_label(worker.last_text, "onestop_held", "stream")
        if {"cases", "tickets"} <= streams.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    event.held_after = metrics["held_cases"] + metrics["held_tickets"]
    feeder.paused.clear()
    event.marks = log_marks(log, offset, process.pid, started)
    return event


def progress(leg: Leg, sample: YearSample, note: str = "") -> None:
    day = dt.datetime.fromtimestamp(sample.simulated, ZONE)
    print(f"  [{leg.label}] {sample.wall:5.0f} s  simulated {day:%Y-%m-%d %H:%M}  "
          f"fed {sample.fed:>8,}  processed {sample.processed:>8,.0f}  lag {sample.lag:>6,}  "
          f"worker {sample.worker_mb:5.0f} MB  held {sample.held_cases:>6,.0f} cases "
          f"{sample.held_tickets:>6,.0f} tickets  archived {sample.archived:>7,.0f}  "
          f"broker {sample.broker_mb:5.0f} MB{note}", flush=True)


def run_leg(leg: Leg, every: float, startup: float, drain_timeout: float) -> Leg:
    folder = leg.folder = Path(tempfile.mkdtemp(prefix=f"onestop-year-{leg.label.split()[0]}-"))
    feed = leg.feed
    leg.sent = len(feed.items)
    with bench_broker(leg.broker, folder, leg.speed) as broker:
        anchor = time.time() + startup
        settings = soak_settings(broker.url, folder, leg.start, leg.speed, anchor,
                                 flavour=broker.kind, archive_after_days=leg.archive_days)
        clock = Clock(leg.start, leg.speed, anchor)
        create_topics(settings)
        topics = topics_for(settings)
        broker_pid = broker.pid
        worker = WorkerControl(settings, folder / "worker.log")
        process = worker.start()
        feeder: Feeder | None = None
        probe = LagProbe(settings)
        changelogs = LagProbe(settings, (topics.case_changelog, topics.ticket_changelog,
                                         topics.archive_changelog))
        try:
            wait_ready(process, settings.metrics_port, folder)
            leg.idle_mb = rss_mb(process.pid)
            ready_in = startup - (anchor - time.time())
            time.sleep(max(0.0, anchor - time.time()))
            print(f"  [{leg.label}] worker ready in {ready_in:.1f} s, RSS {leg.idle_mb:.0f} MB; "
                  f"feeding {len(feed.items):,} records over {leg.days} simulated days "
                  f"({(leg.window_end - leg.start) / leg.speed:.0f} wall s), archive after "
                  f"{leg.archive_days} days", flush=True)
            feeder = Feeder(settings, feed, clock)
            began = time.time()
            feeder.start()
            restarts = [month for month in leg.restart_months
                        if month_end(leg.start, month - 1) < leg.window_end]
            fed_ends: dict[TopicPartition, int] | None = None
            month = 1
            while True:
                wall = time.time() - began
                metrics = worker.read()
                assert worker.process is not None
                sample = YearSample(
                    wall=wall, simulated=clock.now(), fed=feeder.sent, cases=feeder.cases,
                    processed=metrics.get("onestop_events_processed_total", 0.0),
                    dead_letters=metrics.get("onestop_dead_letters_total", 0.0),
                    lag=probe.lag(),
                    tick_lag=metrics.get("onestop_tick_lag_seconds", 0.0) / leg.speed,
                    worker_mb=rss_mb(worker.process.pid), broker_mb=rss_mb(broker_pid),
                    held_cases=metrics["held_cases"], held_tickets=metrics["held_tickets"],
                    archived=metrics.get("onestop_archived_total", 0.0),
                )
                leg.samples.append(sample)
                if leg.month_of(sample.simulated) != month:
                    progress(leg, sample, f"  (month {month} done)")
                    month = leg.month_of(sample.simulated)
                if feeder.error is not None:
                    raise RuntimeError(f"feeding failed: {feeder.error}")
                if worker.process.poll() is not None:
                    raise RuntimeError(f"the worker stopped; see {folder / 'worker.log'}")
                if restarts and sample.simulated >= leg.restart_at(restarts[0]):
                    print(f"  [{leg.label}] month {restarts[0]}: restarting the worker",
                          flush=True)
                    event = restart(leg, worker, feeder, restarts.pop(0), probe, changelogs,
                                    clock, wall)
                    leg.restarts.append(event)
                    print(f"  [{leg.label}] stopped in {event.stop_seconds:.1f} s (exit "
                          f"{event.exit_status}), ready again in {event.ready_seconds:.1f} s",
                          flush=True)
                    continue
                if feeder.done and fed_ends is None:
                    leg.feed_seconds = wall
                    fed_ends = probe.ends()
                if fed_ends is not None and not restarts:
                    if leg.drained_seconds is None and caught_up(probe, fed_ends):
                        leg.drained_seconds = wall
                    # A few more samples after the drain: ticks, archival, the final lag.
                    if leg.drained_seconds is not None and wall - leg.drained_seconds >= 3 * every:
                        break
                    if wall - leg.feed_seconds > drain_timeout:
                        print(f"  [{leg.label}] NOT drained {drain_timeout:g} s after the last "
                              "record; stopping")
                        break
                time.sleep(max(0.0, every - (time.time() - began - wall)))
            progress(leg, leg.samples[-1], "  (end)")
            leg.changelog_end = changelog_records(changelogs)
            leg.dead_letters = worker.dead_letters()
        finally:
            if feeder is not None:
                feeder.stopping.set()
                feeder.join(30)
                leg.failed_sends = feeder.failed
            probe.close()
            changelogs.close()
            worker.stop()
        read_outputs(leg, settings)
        count_inputs(leg, settings)
        if leg.broker == "kafka":
            leg.changelog_present = changelog_present(settings)
    if leg.broker == "kafka":
        leg.cleaner = cleaner_report(folder / "broker.log", changelog_names(settings))
    return leg


def count_inputs(leg: Leg, settings: Settings) -> None:
    """Records on the input topics, tick records apart (key b"": the versions before the
    ticks topic wrote them there; none now)."""
    topics = topics_for(settings)
    for spec, queue in ((topics.case_events, False), (topics.queue_events, True)):
        records = read_to_end(settings.bootstrap_servers, [spec.name], timeout=600)
        leg.inputs[spec.name] = (len(records), sum(1 for r in records if r.key == OLD_TICK_KEY))
        leg.sent_by_topic[spec.name] = sum(1 for item in leg.feed.items if item.queue == queue)


def by_table(records: dict[str, int]) -> tuple[int, int, int]:
    """Changelog records of the cases, tickets and archived totals tables."""
    cases, tickets, archived = (
        sum(v for k, v in records.items() if k.endswith(f"-{table}-changelog"))
        for table in ("cases", "tickets", "archived"))
    return cases, tickets, archived


# ---- the report --------------------------------------------------------------------------


def print_months(leg: Leg) -> None:
    broker = ("the embedded broker (Tansu)" if leg.broker == "tansu"
              else "Apache Kafka (broker MB: its JVM's RSS)")
    print(f"\n{leg.label}: {leg.feed.cases:,} cases, {leg.feed.tickets:,} queue tickets, "
          f"{leg.days} simulated days at {leg.speed:g}x, archive after {leg.archive_days} days, "
          f"on {broker} (one row per simulated month; worker RSS over the month's samples; "
          "held and archived at the month's end; R: the worker was restarted at the month's "
          "end)")
    print(f"{'month':<6}{'to (simulated)':<12}{'wall s':>7}{'fed':>9}{'processed':>10}"
          f"{'cases fed':>10}{'lag max':>8}{'RSS mean':>9}{'max':>6}{'end':>6}"
          f"{'held cases':>11}{'tickets':>8}{'archived':>9}{'broker MB':>10}")
    restarted = {event.month for event in leg.restarts}
    months: dict[int, list[YearSample]] = {}
    for sample in leg.samples:
        months.setdefault(leg.month_of(sample.simulated), []).append(sample)
    for month in sorted(months, key=lambda m: m or math.inf):
        group = months[month]
        end = group[-1]
        name = f"{month}{' R' if month in restarted else ''}" if month else "drain"
        until = dt.datetime.fromtimestamp(
            leg.restart_at(month) if month else end.simulated, ZONE)
        print(f"{name:<6}{until:%Y-%m-%d}  {end.wall:>7.0f}{end.fed:>9,}{end.processed:>10,.0f}"
              f"{end.cases:>10,}{max(s.lag for s in group):>8,}"
              f"{statistics.fmean(s.worker_mb for s in group):>9.0f}"
              f"{max(s.worker_mb for s in group):>6.0f}{end.worker_mb:>6.0f}"
              f"{end.held_cases:>11,.0f}{end.held_tickets:>8,.0f}{end.archived:>9,.0f}"
              f"{end.broker_mb:>10.0f}")


def fit(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3 or len({x for x, _ in points}) < 2:
        return None
    return statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope


def print_restarts(leg: Leg) -> None:
    if not leg.restarts:
        return
    print(f"\n{leg.label}: restarts (SIGTERM, then the worker started again; ready: its "
          "first tick handled; from its log: joined its group and began restoring, the "
          "changelog restore, Faust's \"Worker ready\"; seconds from the start)")
    # On Kafka, the records still on the changelogs beside those written.
    counted = any(event.present is not None for event in leg.restarts)
    print(f"{'month':<6}{'stopped at (sim.)':<18}{'held':>7}"
          + (f"{'changelog records written':>28}{'on the changelogs':>28}" if counted
             else f"{'changelog records':>28}")
          + f"{'stop s':>7}{'ready s':>8}{'joined s':>9}{'restore s':>10}{'Faust ready s':>14}"
          f"{'RSS before':>11}{'after':>6}{'held after':>11}")
    for event in leg.restarts:
        cases, tickets, archived = by_table(event.changelog)
        records = f"{f'{cases:,} / {tickets:,} / {archived:,}':>28}"
        if counted:
            on = by_table(event.present or {})
            records += f"{f'{on[0]:,} / {on[1]:,} / {on[2]:,}':>28}"
        marks = event.marks
        restore = (f"{marks['restored'] - marks['restoring']:.1f}"
                   if {"restored", "restoring"} <= marks.keys() else "n/a")
        faust_ready = f"{marks['faust_ready']:.1f}" if "faust_ready" in marks else "n/a"
        joined = f"{marks['restoring']:.1f}" if "restoring" in marks else "n/a"
        at = dt.datetime.fromtimestamp(event.at, ZONE)
        print(f"{event.month:<6}{at:%Y-%m-%d %H:%M}  {event.held:>7,.0f}"
              f"{records}{event.stop_seconds:>7.1f}"
              f"{event.ready_seconds:>8.1f}{joined:>9}{restore:>10}{faust_ready:>14}"
              f"{event.rss_before:>11.0f}{event.rss_after:>6.0f}{event.held_after:>11,.0f}")
    print("  (changelog records: cases / tickets / archived totals, records written so far"
          + ("; on the changelogs: the records on them once the worker had stopped, read "
             "from the beginning, what its restore read" if counted else "")
          + "; held: cases and tickets; exit status "
          + ", ".join(f"month {e.month}: {e.exit_status}" for e in leg.restarts)
          + "; waited for the commit of what was fed: "
          + ", ".join(f"{e.waited:.1f} s" for e in leg.restarts) + ")")


def summary(leg: Leg, flat_from: int) -> dict[str, float]:
    feed, final = leg.feed, leg.samples[-1]
    sent = leg.sent
    malformed = sum(feed.malformed.values())
    print(f"\n{leg.label} totals")
    print(f"  events sent: {sent:,} = {feed.events:,} simulated events + {feed.duplicates:,} "
          f"duplicates + {malformed} malformed; failed sends {leg.failed_sends}; processed "
          f"(per /metrics, summed over the worker's {len(leg.restarts) + 1} processes) "
          f"{final.processed:,.0f}; all committed "
          + (f"{leg.drained_seconds - leg.feed_seconds:.0f} s after the last record was sent"
             if leg.drained_seconds is not None else "NOT within the drain timeout"))
    records = sum(total for total, _ in leg.inputs.values())
    ticks = sum(tick for _, tick in leg.inputs.values())
    print(f"  input topics: events sent {sent:,} / records on input topics {records:,} / of "
          f"which tick records {ticks:,} (key b\"\", as before the ticks topic); the others "
          f"{records - ticks:,}: " + ("equal to the events sent" if records - ticks == sent
                                       else "NOT EQUAL to the events sent"))
    for name, (total, tick) in leg.inputs.items():
        print(f"    {name}: {total:,} records = {total - tick:,} sent "
              f"(of {leg.sent_by_topic[name]:,}) + {tick:,} ticks")
    print_outputs(leg)
    cases, tickets, archived = by_table(leg.changelog_end)
    print(f"  changelogs at the end: {cases:,} records of cases, {tickets:,} of tickets, "
          f"{archived:,} of archived totals written ("
          + ("the embedded broker compacts nothing: all still on them"
             if leg.changelog_present is None else
             "{:,} / {:,} / {:,} still on them, read from the beginning".format(
                 *by_table(leg.changelog_present)))
          + f"); held {final.held_cases:,.0f} cases and {final.held_tickets:,.0f} tickets, "
          f"archived {final.archived:,.0f} cases and tickets")
    if leg.broker == "kafka":
        print("  Kafka's log cleaner (broker.log): "
              + "; ".join(f"{topic}: {runs} cleanings of its partitions (their last "
                          f"cleanings read {read:,} records and kept {kept:,})"
                          for topic, (runs, read, kept) in leg.cleaner.items()))
    print(f"  worker RSS: {leg.idle_mb:.0f} MB idle, {max(s.worker_mb for s in leg.samples):.0f}"
          f" MB at most, {final.worker_mb:.0f} MB at the end; broker RSS "
          f"{final.broker_mb:.0f} MB" + (" (Kafka's JVM)" if leg.broker == "kafka" else ""))
    figures: dict[str, float] = {}
    per_1000 = slope_per_1000(leg)
    if per_1000 is not None:
        print(f"  RSS growth over all feeding samples: {per_1000:.1f} MB per 1,000 cases fed")
        figures["all"] = per_1000
    late = [s for s in leg.feeding() if leg.month_of(s.simulated) >= flat_from]
    if leg.restarts:
        last = leg.restarts[-1]
        late = [s for s in late if s.wall < last.wall]  # before the last restart
    if len(late) >= 3:
        days = fit([((s.simulated - leg.start) / DAY, s.worker_mb) for s in late]) or 0.0
        cases = fit([(s.cases / 1000, s.worker_mb) for s in late]) or 0.0
        held = fit([((s.simulated - leg.start) / DAY, s.held_cases + s.held_tickets)
                    for s in late]) or 0.0
        first = statistics.fmean(s.worker_mb for s in late
                                 if leg.month_of(s.simulated) == flat_from)
        last_month = max(leg.month_of(s.simulated) for s in late)
        end = statistics.fmean(s.worker_mb for s in late
                               if leg.month_of(s.simulated) == last_month)
        print(f"  from month {flat_from} to month {last_month} (the archive window filled): RSS "
              f"{first:.0f} MB -> {end:.0f} MB (monthly means); fitted {days * 30:+.1f} MB per "
              f"30 simulated days, {cases:+.2f} MB per 1,000 cases fed; cases and tickets held "
              f"{held * 30:+,.0f} per 30 days")
        figures.update(late_days=days, late_cases=cases)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volume", type=float, default=1,
                        help="times the demo province's case rate (default 1: 4,000 a month)")
    parser.add_argument("--days", type=int, default=365, help="simulated days (default 365)")
    parser.add_argument("--speed", type=float, default=28800,
                        help="simulated seconds per wall second (default 28800: a day in 3 s)")
    parser.add_argument("--archive-after-days", type=int,
                        default=Settings.model_fields["archive_after_days"].default,
                        help="ONESTOP_ARCHIVE_AFTER_DAYS of the year (default: the product's)")
    parser.add_argument("--restart-months", type=int, nargs="*", default=[2, 12],
                        help="restart the worker at the end of these simulated months")
    parser.add_argument("--off-days", type=int, default=75,
                        help="simulated days of the first leg, archival off (0: none)")
    parser.add_argument("--off-archive-days", type=int, default=3650)
    parser.add_argument("--flat-from-month", type=int, default=4,
                        help="the month from which RSS is fitted (the window and a month)")
    parser.add_argument("--broker", choices=["tansu", "kafka"], default="tansu",
                        help="a fresh embedded Tansu per leg (default), or a single-node "
                             "Apache Kafka with time-scaled log settings")
    add_feed_arguments(parser)
    arguments = parser.parse_args()

    signal.signal(signal.SIGTERM, interrupt)
    start = simulation_start()
    plans = []
    if arguments.off_days > 0:
        plans.append(("archival off", arguments.off_days, arguments.off_archive_days, ()))
    plans.append(("year", arguments.days, arguments.archive_after_days,
                  tuple(arguments.restart_months)))
    legs: list[Leg] = []
    began = time.monotonic()
    try:
        for label, days, archive_days, restarts in plans:
            built = time.monotonic()
            feed: Feed = build_feed(arguments.volume, days, arguments.seed,
                                    arguments.duplicate_rate, arguments.malformed)
            print(f"{label}: simulated {feed.cases:,} cases, {len(feed.items):,} records over "
                  f"{days} days, in {time.monotonic() - built:.1f} s", flush=True)
            leg = Leg(label, arguments.volume, days, arguments.speed, feed, start,
                      archive_days=archive_days, restart_months=restarts,
                      broker=arguments.broker)
            legs.append(run_leg(leg, arguments.sample_seconds, arguments.startup,
                                arguments.drain_timeout))
            leg.feed.items.clear()  # the year's feed needs the memory
    except KeyboardInterrupt:
        print("\ninterrupted: the worker and the broker are stopped", file=sys.stderr)
        sys.exit(130)
    print(f"\n(whole script: {(time.monotonic() - began) / 60:.1f} wall minutes)")
    figures = {}
    for leg in legs:
        print_months(leg)
        print_restarts(leg)
    for leg in legs:
        figures[leg.label] = summary(leg, arguments.flat_from_month)
    off, year = figures.get("archival off", {}), figures.get("year", {})
    if "all" in off and "late_cases" in year:
        print(f"\nRSS per 1,000 cases fed: {off['all']:.1f} MB with archival off (all its "
              f"samples) against {year['late_cases']:+.2f} MB in the year from month "
              f"{arguments.flat_from_month}")
    for leg in legs:
        print(f"logs of {leg.label}: {leg.folder}")


if __name__ == "__main__":
    main()
