"""The onestop worker beside its peers, on one broker and one topic of province events.

    python tests/bench/bench_peers.py [--events 20000] [--partitions 8] [--broker tansu|kafka]

The case events of a simulated province (the first `--events` of them, about 5.6 events a
case) are produced once to one case-events topic of `--partitions` partitions, keyed by
case id; then each contender reads that same topic from the beginning, one after another,
with a consumer group of its own:

1. raw aiokafka consume: one consumer reading every record, no decoding (the ceiling);
2. Bytewax (tests/bench/peers/bytewax_peer.py): Kafka input, `stateful_map` keyed by case
   id, state in memory;
3. Quix Streams (tests/bench/peers/quix_peer.py): `update(..., stateful=True)` keyed by
   case id, state in RocksDB with its changelog topic (Quix's default);
4. naive Faust (tests/bench/naive_app.py): the onestop rules, one table write per event;
5. the onestop worker (`python -m onestop.streams worker`).

Both peers keep, per case, the count of its events, its first and last event time and
its status (the type of its latest event), decoding each event's JSON and parsing its
`occurred_at`: the simplest stateful work comparable with the worker's, which decodes and
checks each event against the contract and applies the rulebook. Their counts of events
and of cases are checked against what was produced.

How each is timed: raw consume from its seek to its last record; each peer, inside its
process, from its first record to its last output (Bytewax) or to the end of its last
commit (Quix); naive Faust and the worker as in bench_pipeline.py, from their first
committed offset to their commit of the last event (so their `events` column counts the
events committed after the first commit). Start-up (joining the group, creating topics)
is left out of every figure.

The worker's figures are then checked equal to the batch replay of the same events
(`onestop.common.replay`), read from its table changelogs as `onestop snapshot` does.
The script exits non-zero if they differ or a contender does not finish. It prints
figures and asserts nothing else; it is not run by pytest.

The peers run as subprocesses with the Python of their own virtual environment,
`.venv-peers/` at the repository root (or `--peers-venv`), which the script creates and
fills from tests/bench/peers/requirements.txt (pinned, from PyPI) on first use, and again
when that file changes; nothing of theirs goes into the project's `.venv/`.

The broker is the embedded Tansu (as the other benchmarks); `--broker kafka` runs every
contender on one Apache Kafka broker of tests/apache_kafka.py instead.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

# The repository root, for the tests' helpers (tests.bench.bench_pipeline, tests.apache_kafka).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onestop.common.replay import Replay  # noqa: E402
from onestop.common.settings import Settings  # noqa: E402
from onestop.common.topics import create_topics, topics_for  # noqa: E402
from onestop.models.case import CaseRules  # noqa: E402
from onestop.models.events import QUEUE_EVENT_TYPES  # noqa: E402
from onestop.models.reference import SAMPLE_PROVINCE, load_reference  # noqa: E402
from onestop.streams.broker import EmbeddedBroker  # noqa: E402
from onestop.streams.ingest import ingest_lines  # noqa: E402
from onestop.streams.simulate import SimulationSettings, simulate  # noqa: E402
from onestop.streams.snapshot import live_replay  # noqa: E402
from tests.bench.bench_pipeline import ZONE, raw_consume, settings_for, worker_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "tests" / "bench" / "peers"
REQUIREMENTS = PEERS / "requirements.txt"
SIMULATION = SimulationSettings(seed=1, days=30)
# The worker's fixed clock and the replay's instant: the end of the simulated window.
AS_OF = dt.datetime.combine(SIMULATION.start + dt.timedelta(days=SIMULATION.days), dt.time(17),
                            ZONE)


@dataclass
class Result:
    contender: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def province_case_events(count: int) -> list[bytes]:
    """The first `count` case events of a simulated province, in delivery order (queue
    events left out: they go to another topic and hold no case)."""
    # About 5.6 case events a case: enough cases that the first `count` are there.
    settings = SimulationSettings(cases=count // 5 + 50, seed=SIMULATION.seed,
                                  days=SIMULATION.days)
    events = (event for event in simulate(load_reference(SAMPLE_PROVINCE), settings)
              if event["type"] not in QUEUE_EVENT_TYPES)
    return [orjson.dumps(event) for event in islice(events, count)]


def peers_python(venv: Path) -> Path:
    """The Python of the peers' virtual environment, created and filled from the pinned
    requirements when missing or when they have changed since."""
    python, installed = venv / "bin" / "python", venv / "installed-requirements.txt"
    wanted = REQUIREMENTS.read_text()
    if python.exists() and installed.exists() and installed.read_text() == wanted:
        return python
    print(f"installing the peers into {venv} (from PyPI, about 160 MB, once)", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                   check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
                   check=True)
    installed.write_text(wanted)
    return python


def run_peer(label: str, command: list[str], events: int, cases: int, log: Path,
             timeout: float) -> Result:
    """Run a peer script to its end; its last line of output is its JSON result."""
    with log.open("wb") as handle:
        try:
            finished = subprocess.run(command, stdout=subprocess.PIPE, stderr=handle,
                                      timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{label} did not finish in {timeout:.0f} s; see {log}") from None
    if finished.returncode != 0:
        raise RuntimeError(f"{label} exited with {finished.returncode}; see {log}")
    found = orjson.loads(finished.stdout.splitlines()[-1])
    # Fewer cases than keys would mean a case's state was lost or split along the way.
    if (found["events"], found["cases"]) != (events, cases):
        raise RuntimeError(f"{label} saw {found['events']:,} events of {found['cases']:,} cases; "
                           f"{events:,} events of {cases:,} cases were produced")
    return Result(label, found["events"], found["seconds"])


def contender_settings(base: Settings, folder: Path, label: str) -> Settings:
    """The shared topics, with a consumer group, changelogs and data folder of its own."""
    name = f"{label}-{uuid.uuid4().hex[:6]}"
    return base.model_copy(update={"app_id": name, "data_dir": folder / name})


def differences(live: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Where the worker's figures differ from the replay's, for a readable failure: per
    case, agency or centre, only the fields that differ, as (worker, replay)."""
    found = []
    for section in ("cases", "agencies", "centres"):
        for key in sorted(live[section].keys() | expected[section].keys()):
            mine, theirs = live[section].get(key), expected[section].get(key)
            if isinstance(mine, dict) and isinstance(theirs, dict):
                fields = {name: (mine.get(name), theirs.get(name)) for name in mine.keys() | theirs.keys()
                          if mine.get(name) != theirs.get(name)}
                if fields:
                    found.append(f"{section} {key}: {fields}")
            elif mine != theirs:
                found.append(f"{section} {key}: worker {mine} != replay {theirs}")
    found += [f"{key}: worker {live.get(key)} != replay {value}" for key, value in expected.items()
              if key not in ("cases", "agencies", "centres") and live.get(key) != value]
    return found


def check_worker_equals_replay(settings: Settings, lines: list[bytes], timeout: float = 30) -> None:
    """The worker's case states, read from its changelogs, give the replay's figures. Its
    ticks may still be judging when its last offset is committed, so it has a while."""
    replay = Replay.for_rules(CaseRules(load_reference(SAMPLE_PROVINCE)))
    rejected = list(replay.feed_lines(lines))
    expected = replay.report(AS_OF.timestamp())
    deadline = time.monotonic() + timeout
    while True:
        live = live_replay(settings).report(AS_OF.timestamp())
        if live == expected:
            print(f"the worker's figures equal the replay's ({len(expected['cases']):,} cases; "
                  f"the replay rejected {len(rejected):,} events)")
            return
        if time.monotonic() > deadline:
            found = differences(live, expected)
            shown = "\n  ".join(found[:10])
            raise RuntimeError(f"the worker's figures differ from the replay's in {len(found)} "
                               f"places; the first, as (worker, replay):\n  {shown}")
        time.sleep(1)


@contextmanager
def broker_of(kind: str, folder: Path) -> Iterator[str]:
    """One broker for every contender; yields its bootstrap servers."""
    if kind == "tansu":
        with EmbeddedBroker(log_path=str(folder / "broker.log")) as broker:
            yield broker.bootstrap
    else:
        from tests.apache_kafka import ApacheKafka

        with ApacheKafka() as kafka:
            yield kafka.bootstrap


def print_table(results: list[Result]) -> None:
    raw = next(result for result in results if result.contender.startswith("raw"))
    quix = next(result for result in results if result.contender.startswith("Quix"))
    print(f"{'contender':<34}{'events':>9}{'seconds':>9}{'events/s':>11}{'×raw':>8}{'×Quix':>8}")
    for result in results:
        print(f"{result.contender:<34}{result.events:>9,}{result.seconds:>9.2f}"
              f"{result.rate:>11,.0f}{result.rate / raw.rate:>8.3f}{result.rate / quix.rate:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--broker", choices=["tansu", "kafka"], default="tansu")
    parser.add_argument("--peers-venv", type=Path, default=ROOT / ".venv-peers")
    arguments = parser.parse_args()

    peers = str(peers_python(arguments.peers_venv))
    lines = province_case_events(arguments.events)
    total = len(lines)
    cases = len({orjson.loads(line)["case_id"] for line in lines})
    print(f"simulated province: {total:,} case events of {cases:,} cases, "
          f"{arguments.partitions} partitions, broker {arguments.broker}")
    # Generous: naive Faust, the slowest, does about 1,500 events/s on 2 cores.
    timeout = 90 + total / 200
    folder = Path(tempfile.mkdtemp(prefix="onestop-bench-peers-"))
    results: list[Result] = []
    with broker_of(arguments.broker, folder) as bootstrap:
        base = settings_for(bootstrap, folder, partitions=arguments.partitions,
                            clock=f"fixed:{AS_OF.isoformat()}")
        create_topics(base)
        ends = ingest_lines(base, lines).ends
        topic = topics_for(base).case_events.name
        print(f"  produced to {topic}")

        def measured(result: Result) -> None:
            results.append(result)
            print(f"  {result.contender}: {result.rate:,.0f} events/s", flush=True)

        measured(Result("raw aiokafka consume", *asyncio.run(raw_consume(base, ends))))
        measured(run_peer(
            "Bytewax stateful_map",
            [peers, str(PEERS / "bytewax_peer.py"), "--bootstrap", bootstrap, "--topic", topic],
            total, cases, folder / "bytewax.log", timeout))
        quix = contender_settings(base, folder, "quix")
        measured(run_peer(
            "Quix Streams, RocksDB + changelog",
            [peers, str(PEERS / "quix_peer.py"), "--bootstrap", bootstrap, "--topic", topic,
             "--events", str(total), "--group", quix.app_id, "--state-dir", str(quix.data_dir)],
            total, cases, folder / "quix.log", timeout))
        measured(Result("naive Faust, a table write/event", *worker_run(
            [sys.executable, str(ROOT / "tests/bench/naive_app.py")],
            contender_settings(base, folder, "naive"), ends, folder / "naive.log", timeout)))
        worker = contender_settings(base, folder, "worker")
        measured(Result("onestop worker", *worker_run(
            [sys.executable, "-m", "onestop.streams", "worker", "--loglevel", "info"], worker,
            ends, folder / "worker.log", timeout)))
        check_worker_equals_replay(worker, lines)

    print()
    print_table(results)
    print(f"logs: {folder}")


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as error:
        sys.exit(f"FAILED: {error}")
