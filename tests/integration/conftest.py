"""Real brokers for the integration tests, and workers as real processes.

Every test here runs once per broker kind (tests/brokers.py): the embedded Tansu of the
demo and Apache Kafka, or only the cluster `KAFKA_BOOTSTRAP_SERVERS` names. Each test
gets its own topic prefix and consumer group, so tests never see each other's records."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from kafka import KafkaAdminClient
from kafka.errors import CoordinatorNotAvailableError

from onestop.common.replay import Replay, derived_json
from onestop.common.settings import Settings
from onestop.common.topics import create_topics
from onestop.consumers.sink import Sink
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.broker import free_port, stop_process
from tests.brokers import broker_kinds, broker_of
from tests.conftest import leaked_secrets

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session", params=broker_kinds(os.environ))
def broker_kind(request: pytest.FixtureRequest) -> str:
    """`tansu`, `kafka` or `external`; session-scoped, so pytest runs every test of one
    kind before it starts the next kind's broker."""
    return str(request.param)


@pytest.fixture(scope="session")
def bootstrap(broker_kind: str) -> Iterator[str]:
    """The shared broker of a kind, for the tests that need no broker of their own."""
    if broker_kind == "external":
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    with broker_of(broker_kind) as servers:
        yield servers


def settings_for(bootstrap: str, folder: Path, **extra: Any) -> Settings:
    """Settings of a pipeline of its own (topic prefix and consumer group) on a broker,
    with the quick session timeout and ticks of the tests."""
    name = "t" + uuid.uuid4().hex[:10]
    return Settings(
        broker_url=bootstrap, app_id=name, topic_prefix=name, data_dir=folder / "faust",
        session_timeout_seconds=6, tick_seconds=0.5, metrics_port=0, **extra,
    )


@pytest.fixture
def settings(bootstrap: str, tmp_path: Path) -> Settings:
    made = settings_for(bootstrap, tmp_path)
    create_topics(made)
    return made


class Worker:
    """`onestop worker` as a child process; its log is kept for the test to read."""

    def __init__(self, settings: Settings, log: Path, module: str = "onestop.streams",
                 env: dict[str, str] | None = None, **extra: object) -> None:
        self.log = log
        handle = log.open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", module, "worker", "--loglevel", "info"],
            env={**settings.model_copy(update=extra).environment(), **(env or {})},
            stdout=handle, stderr=subprocess.STDOUT,
        )
        handle.close()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "case partitions assigned" not in self.log.read_text(errors="replace"):
            assert self.process.poll() is None, f"worker exited:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"worker not ready:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.2)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(settings: Settings, **extra: object) -> Worker:
        worker = Worker(settings, tmp_path / f"worker-{len(workers)}.log", **extra)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    for worker in workers:
        assert not leaked_secrets(worker.log.read_text(errors="replace")), (
            f"a secret of the suite appears in {worker.log}")


def committed(settings: Settings) -> dict[tuple[str, int], int]:
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.kafka_options())
    try:
        offsets = admin.list_group_offsets(settings.app_id).get(settings.app_id, {})
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
    except CoordinatorNotAvailableError:
        # Apache Kafka answers so while it creates its offsets topic on first use.
        return {}
    finally:
        admin.close()


def wait_processed(settings: Settings, ends: dict[tuple[str, int], int], timeout: float) -> None:
    """Until the workers have committed every record sent (their outputs are flushed
    before a commit)."""
    deadline = time.monotonic() + timeout
    while True:
        done = committed(settings)
        behind = {place: end for place, end in ends.items() if done.get(place, -1) < end}
        if not behind:
            return
        assert time.monotonic() < deadline, f"not processed in {timeout} s: {behind} vs {done}"
        time.sleep(0.5)


def eventually(check: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    """`check()` once it is truthy, or its last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def replay_of(path: Path, as_of: float) -> tuple[dict[str, Any], set[str]]:
    """The batch replay's JSON and derived-event ids for a file."""
    rules = CaseRules(load_reference(SAMPLE_PROVINCE))
    replay = Replay.for_rules(rules, collect_derived=True)
    with path.open("rb") as handle:
        list(replay.feed_lines(handle))
    report = replay.report(as_of)
    ids = {derived_json(event, rules.calendar.isoformat)["event_id"] for event in replay.derived}
    return report, ids


class Inbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()

def drain(sink: Sink, idle_polls: int = 3, timeout: float = 60) -> int:
    """Poll until records came and then several polls in a row brought nothing; the
    number of records read."""
    deadline = time.monotonic() + timeout
    while (read := sink.poll_once(1.0)) == 0:
        assert time.monotonic() < deadline, "the sink received nothing"
    idle = 0
    while idle < idle_polls:
        polled = sink.poll_once(1.0)
        read += polled
        idle = idle + 1 if polled == 0 else 0
    return read
