"""`onestop demo`: the whole live pipeline on this machine.

It starts the embedded broker, creates the topics, starts a worker process, feeds a
simulated province into the input topics as its events happen on an accelerated clock,
and shows the figures the worker publishes, until Ctrl-C (or `--seconds`)."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
from kafka import KafkaConsumer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from onestop.common.clock import Clock
from onestop.common.settings import Settings
from onestop.common.topics import create_topics, topics_for
from onestop.consumers.glossary import APOLOGIES_REQUIRED
from onestop.consumers.vietnamese import number
from onestop.models.reference import Reference
from onestop.streams.broker import EmbeddedBroker, stop_process
from onestop.streams.ingest import producer, route
from onestop.streams.live_view import LiveFigures
from onestop.streams.report_tables import live_view
from onestop.streams.simulate import SimulationSettings, simulate


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return _start(settings, log, "worker", "--loglevel", "warn")


def start_sink(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return _start(settings, log, "sink", "--loglevel", "warning")


def _start(settings: Settings, log: Path, *command: str) -> subprocess.Popen[bytes]:
    """This program's `command` as a child process, its output in `log`."""
    with log.open("ab") as handle:
        return subprocess.Popen(  # noqa: S603 - this very program
            [sys.executable, "-m", "onestop.streams", *command],
            env=settings.environment(), stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Out of the terminal's process group: Ctrl-C reaches the demo alone, which
            # then stops its children in order.
            start_new_session=True,
        )


class Feeder(threading.Thread):
    """Produces the simulated events once the clock reaches their event time, as a
    province's systems would. They go in event-time order: the simulator's early
    deliveries (an event sent before an earlier one of its case) would otherwise hold
    back every event behind them until their time came."""

    def __init__(self, settings: Settings, events: list[bytes], clock: Clock) -> None:
        super().__init__(name="feeder", daemon=True)
        timed = [(dt.datetime.fromisoformat(orjson.loads(raw)["occurred_at"]).timestamp(), raw)
                 for raw in events]
        timed.sort(key=lambda pair: pair[0])
        self.settings, self.events, self.clock = settings, timed, clock
        self.stopping = threading.Event()
        self.sent = 0
        self.error: Exception | None = None

    def run(self) -> None:
        topics = topics_for(self.settings)
        client = producer(self.settings)
        try:
            for at, raw in self.events:
                while self.clock.now() < at:
                    if self.stopping.wait(0.05):
                        return
                queue, key = route(raw)
                topic = topics.queue_events if queue else topics.case_events
                client.send(topic.name, key=key, value=raw)
                self.sent += 1
        except Exception as error:  # noqa: BLE001 - shown to the person watching
            self.error = error
        finally:
            client.flush()
            client.close()


def command_name() -> str:
    """How this `onestop` was started (`.venv/bin/onestop` from make demo), so that the
    command printed for the report runs as printed."""
    started = sys.argv[0]
    return started if Path(started).name == "onestop" else "onestop"


def run_demo(
    reference: Reference, reference_dir: Path, simulation: SimulationSettings, speed: float,
    seconds: float | None, console: Console,
) -> LiveFigures:
    """Run everything until Ctrl-C or `seconds`; return the figures last seen."""
    folder = Path(tempfile.mkdtemp(prefix="onestop-demo-"))
    console.print(f"Mô phỏng / simulating {number(simulation.cases)} cases over "
                  f"{simulation.days} days… Broker nhúng không giữ gì sau khi dừng / the "
                  "embedded broker keeps nothing across its restarts: each demo starts "
                  "from nothing, with a database of its own.")
    events = [orjson.dumps(event) for event in simulate(reference, simulation)]
    zone = dt.timezone(dt.timedelta(hours=7))
    start = dt.datetime.combine(simulation.start, dt.time(7), zone)
    anchor = time.time()
    clock = Clock(start.timestamp(), speed, anchor)
    figures = LiveFigures()
    derived: Counter[str] = Counter()
    with EmbeddedBroker(log_path=str(folder / "broker.log")) as broker:
        settings = Settings(
            broker_url=broker.url, reference=reference_dir, broker_flavour="tansu",
            clock=f"accelerated:{start.isoformat()}:{speed}@{anchor}", data_dir=folder / "faust",
            # A database of its own: the demo's broker starts from offset 0 each time.
            database_url=f"sqlite:///{folder / 'onestop.db'}",
        )
        create_topics(settings)
        worker = start_worker(settings, folder / "worker.log")
        sink = start_sink(settings, folder / "sink.log")
        console.print(f"Chỉ số / metrics: http://{settings.metrics_host}:{settings.metrics_port}"
                      "/metrics")
        feeder = Feeder(settings, events, clock)
        feeder.start()
        topics = topics_for(settings)
        reader = KafkaConsumer(
            topics.aggregates.name, topics.derived_events.name,
            bootstrap_servers=settings.bootstrap_servers, group_id=None,
            **settings.kafka_options(), auto_offset_reset="earliest", enable_auto_commit=False,
        )
        began = time.monotonic()
        # Ctrl-C (or SIGTERM, as from `kill` or a supervisor) sets a flag rather than
        # interrupting the Kafka client mid-call, so that the broker, worker and sink,
        # each in a session of its own, are always stopped too.
        interrupted = threading.Event()
        previous = {signum: signal.signal(signum, lambda *_: interrupted.set())
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            with Live(console=console, refresh_per_second=2, screen=False) as live:
                while not interrupted.is_set() and (
                    seconds is None or time.monotonic() - began < seconds
                ):
                    for batch in reader.poll(timeout_ms=500).values():
                        for record in batch:
                            if record.topic == topics.aggregates.name:
                                value = None if record.value is None else orjson.loads(record.value)
                                figures.add(record.key, value)
                            else:
                                derived[orjson.loads(record.value)["type"]] += 1
                    if worker.poll() is not None:
                        raise RuntimeError(f"the worker stopped; see {folder / 'worker.log'}")
                    if sink.poll() is not None:
                        raise RuntimeError(f"the SQL sink stopped; see {folder / 'sink.log'}")
                    report = figures.report()
                    now = clock.now()
                    shown = dt.datetime.fromtimestamp(now, zone)
                    sent = (f"đã gửi hết / feed finished ({number(len(events))} events)"
                            if feeder.sent == len(events) else
                            f"đã gửi / sent {number(feeder.sent)}/{number(len(events))} events")
                    status = Text(
                        f"Giờ mô phỏng / simulated time {shown:%d/%m/%Y %H:%M}"
                        f" (×{speed:g}) · {sent} · {APOLOGIES_REQUIRED.both} "
                        f"{number(derived['apology_required'])} · quá hạn phát hiện / overdue "
                        f"found {number(derived['overdue_detected'])} · Ctrl-C dừng / stops"
                    )
                    width, height = console.size
                    live.update(live_view(report, reference, status, width, height)
                                if report["agencies"] else status)
                    if feeder.error is not None:
                        raise RuntimeError(f"feeding events failed: {feeder.error}")
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            feeder.stopping.set()
            reader.close()
            stop_process(sink)
            stop_process(worker)
            feeder.join(10)
    console.print(
        f"Đã dừng / stopped. Logs: {folder}\n"
        f"Báo cáo / report: {command_name()} report --db {settings.database_url} --period "
        f"{simulation.start:%Y-%m} --out report.xlsx"
    )
    return figures
