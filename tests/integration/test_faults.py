"""Faults a province's servers will see: the network between a worker and the broker cut
and restored, the database gone during sinking, the mail server down. After each, the
figures equal the replay of the same events and every notice goes out once.

(A worker killed and restarted mid-stream is in test_live_pipeline.py, a sink killed
between its database and offset commits in test_sql_sink.py.)"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller

from onestop.common.clock import parse_clock
from onestop.common.replay import Replay
from onestop.common.settings import Settings
from onestop.common.topics import create_topics, topics_for
from onestop.consumers.report import build_report, parse_period
from onestop.consumers.sink import Sink
from onestop.consumers.store import Store, connect, upgrade
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.app import Outbox, Pipeline
from onestop.streams.broker import free_port
from onestop.streams.ingest import ingest_lines
from onestop.streams.tansu_compat import read_to_end
from tests.brokers import broker_of, port_of
from tests.integration.conftest import (
    Inbox,
    committed,
    eventually,
    replay_of,
    settings_for,
    wait_processed,
)
from tests.integration.test_live_pipeline import (
    AS_OF,
    FIXED_CLOCK,
    derived_ids,
    differences,
    live_matches,
    province_file,
)
from tests.integration.test_notifier import CLOCK, EVENTS, OFFICE, run_notifier
from tests.integration.test_sql_sink import expected_rows, stored_rows
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

# Cuts longer than the consumer session (6 s in these tests): the broker drops the worker
# from its group, and the worker must rejoin once the link is back. Each is longer than
# the worker's delivery timeout too, so a batch in flight is sent again, unacknowledged
# meanwhile (the 45-70 s cuts lost about 140 of 2,000 cases when a failed delivery was
# acknowledged anyway).
OUTAGES = [
    pytest.param(12, 5, id="12s"),
    pytest.param(70, 40, id="70s", marks=pytest.mark.slow),
    pytest.param(300, 40, id="5min", marks=pytest.mark.slow),
]


@pytest.fixture
def proxied_broker(broker_kind: str, tmp_path: Path) -> Iterator[tuple[Settings, TcpProxy]]:
    """A broker of its own whose every client, by bootstrap and by metadata, goes
    through a proxy the test can cut."""
    if broker_kind == "external":
        pytest.skip("needs a broker of its own that advertises the proxy's port")
    proxy_port = free_port()
    with broker_of(broker_kind, advertised_port=proxy_port) as servers, \
            TcpProxy(port_of(servers), port=proxy_port) as proxy:
        settings = settings_for(f"127.0.0.1:{proxy_port}", tmp_path)
        create_topics(settings)
        yield settings, proxy


@pytest.mark.parametrize("outage, delivery_timeout", OUTAGES)
def test_a_cut_between_worker_and_broker_loses_nothing_and_counts_nothing_twice(
    proxied_broker: tuple[Settings, TcpProxy], start_worker: Any, tmp_path: Path,
    outage: float, delivery_timeout: float,
) -> None:
    settings, proxy = proxied_broker
    path = province_file(tmp_path, cases=2000, seed=31, duplicate_rate=0.05)
    lines = path.read_bytes().splitlines()
    expected, expected_ids = replay_of(path, AS_OF)
    worker = start_worker(settings, clock=FIXED_CLOCK, delivery_timeout_seconds=delivery_timeout)
    worker.wait_ready()
    half = len(lines) // 2
    first = ingest_lines(settings, lines[:half])
    wait_processed(settings, first.ends, timeout=120)

    rest = ingest_lines(settings, lines[half:])
    proxy.cut()  # while the worker is busy with the second half
    time.sleep(outage)
    proxy.restore()

    wait_processed(settings, {**first.ends, **rest.ends}, timeout=180)
    assert eventually(lambda: live_matches(settings, expected), timeout=60), differences(
        settings, expected)
    assert eventually(lambda: expected_ids <= set(derived_ids(settings)), timeout=20)
    assert worker.process.poll() is None, "the worker died instead of reconnecting"
    assert proxy.accepted > 0


def test_outputs_whose_delivery_fails_are_sent_again_until_the_broker_has_them(
    proxied_broker: tuple[Settings, TcpProxy], broker_kind: str,
) -> None:
    """What the worker does with a batch's outputs during a cut, step by step: the batch
    waits, unacknowledged and visibly, and goes out once the link is back. On Tansu each
    attempt fails after the delivery timeout and is sent again; Apache Kafka's idempotent
    producer keeps its one attempt going until the link is back."""
    settings, proxy = proxied_broker
    settings = settings.model_copy(update={"delivery_timeout_seconds": 3})
    pipeline = Pipeline(settings, parse_clock(FIXED_CLOCK))
    pipeline.idempotent = broker_kind == "kafka"  # as create_app decides
    outbox = Outbox(pipeline, "cases")
    topic = topics_for(settings).derived_events.name
    seen: list[tuple[str, float]] = []

    async def deliver_across_a_cut() -> None:
        await pipeline.producer()
        for number in range(100):
            outbox.add(topic, b"case-%d" % number, b"output %d" % number)
        proxy.cut()
        flushing = asyncio.ensure_future(outbox.flush())
        # Twice the delivery timeout: on Tansu at least one attempt has failed.
        while (oldest := pipeline.metrics.oldest_undelivered(time.time())) is None or (
                oldest[1] < 6):
            await asyncio.sleep(0.2)
        seen.append(oldest)
        assert not flushing.done()
        proxy.restore()
        await flushing
        await pipeline.stop()

    asyncio.run(asyncio.wait_for(deliver_across_a_cut(), timeout=120))
    [(stream, waited)] = seen
    assert stream == "cases" and waited >= 6
    assert pipeline.metrics.oldest_undelivered(time.time()) is None
    failures = pipeline.metrics.pipeline[("delivery_failures", ("cases",))]
    values = [record.value for record in read_to_end(settings.bootstrap_servers, [topic])]
    sent = sorted(b"output %d" % number for number in range(100))
    if pipeline.idempotent:
        assert sorted(values) == sent  # each once
    else:
        assert failures >= 1
        assert sorted(set(values)) == sent  # at least once


def test_a_batch_whose_application_raises_is_not_acknowledged_and_is_read_again(
    settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    path = province_file(tmp_path, cases=200, seed=41)
    lines = path.read_bytes().splitlines()
    expected, _ = replay_of(path, AS_OF)
    seen: set[str] = set()
    for index, line in enumerate(lines):
        case = orjson.loads(line).get("case_id")
        if index >= len(lines) // 2 and case and case not in seen:
            break  # a case whose first event comes after the first half
        seen.add(case)
    faulty = start_worker(settings, clock=FIXED_CLOCK, module="tests.faulty_worker",
                          env={"FAILING_CASE": case})
    faulty.wait_ready()
    before = ingest_lines(settings, lines[:index])
    wait_processed(settings, before.ends, timeout=120)
    culprit = ingest_lines(settings, lines[index:index + 1])
    after = ingest_lines(settings, lines[index + 1:])

    assert faulty.process.wait(timeout=60) == 70
    assert "applying a batch failed" in faulty.log.read_text()
    [(place, end)] = culprit.ends.items()
    assert committed(settings)[place] <= end - 1, "committed past the batch that failed"

    start_worker(settings, clock=FIXED_CLOCK).wait_ready()
    wait_processed(settings, {**before.ends, **culprit.ends, **after.ends}, timeout=120)
    assert eventually(lambda: live_matches(settings, expected), timeout=30), differences(
        settings, expected)


def test_the_database_gone_during_sinking_delays_rows_but_loses_and_doubles_none(
    settings: Settings, start_worker: Any, tmp_path: Path, postgres: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = province_file(tmp_path, cases=200, seed=41)
    lines = path.read_bytes().splitlines()
    worker = start_worker(settings, clock=FIXED_CLOCK)
    worker.wait_ready()
    database = postgres.new_database().rsplit("/", 1)[1]
    with TcpProxy(postgres.port) as proxy:
        engine = connect(f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{database}")
        upgrade(engine)
        store = Store(engine)
        sink = Sink(settings, store, max_records=300)
        stop = threading.Event()
        running = threading.Thread(target=sink.run, args=(stop,), kwargs={"report_every": 5})
        running.start()
        try:
            half = len(lines) // 2
            first = ingest_lines(settings, lines[:half])
            wait_processed(settings, first.ends, timeout=120)
            with caplog.at_level(logging.WARNING, logger="onestop.sink"):
                proxy.cut()
                rest = ingest_lines(settings, lines[half:])
                wait_processed(settings, {**first.ends, **rest.ends}, timeout=120)
                time.sleep(12)
                proxy.restore()
                time.sleep(3 * settings.tick_seconds)  # the last ticks have judged
                worker.stop()
                expected = expected_rows(settings)

                def caught_up() -> bool:
                    stored = stored_rows(store)
                    return stored == {name: expected.get(name, set()) for name in stored}

                assert eventually(caught_up, timeout=90), "the sink did not catch up"
            assert running.is_alive(), "the sink died instead of waiting for the database"
            assert any("database unavailable" in message for message in caplog.messages)
            rules = CaseRules(load_reference(SAMPLE_PROVINCE))
            replay = Replay.for_rules(rules)
            with path.open("rb") as handle:
                list(replay.feed_lines(handle))
            period = parse_period("2026-03")
            report = build_report(engine, rules.reference, period, as_of=AS_OF)
            assert report["province"] == replay.report(AS_OF, period.first, period.last)[
                "province"]
        finally:
            stop.set()
            running.join()
            sink.close()
            engine.dispose()


def test_mail_that_waits_for_the_smtp_server_goes_out_once_when_it_is_back(
    settings: Settings, start_worker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    smtp_port, web_port = free_port(), free_port()
    settings = settings.model_copy(update={
        "smtp_port": smtp_port, "clock": CLOCK,
        "province_office_email": OFFICE, "database_url": f"sqlite:///{tmp_path / 'n.db'}",
        "notifier_port": web_port,
    })
    counts = ingest_lines(settings, [orjson.dumps(event) for event in EVENTS])
    start_worker(settings, clock=CLOCK).wait_ready()
    wait_processed(settings, counts.ends, timeout=60)

    caplog.set_level(logging.WARNING, logger="onestop.notify")
    _notifier, close = run_notifier(settings, threading.Event())
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    started = False
    try:
        assert eventually(lambda: any("cannot send" in message
                                      for message in caplog.messages), timeout=30, every=0.5)
        time.sleep(3)  # several polls with the server still down
        # Each notice was tried once and waits 10 s for its next try: not one try and one
        # warning per notice at every poll (48 in 2.9 s for 11 notices, before).
        tries = [message for message in caplog.messages if "cannot send" in message]
        assert 1 <= len(tries) <= 5 and all("again in 10 s" in m for m in tries), tries
        controller.start()
        started = True
        # The same five as with the server up all along (test_notifier): at risk, late,
        # escalation and one digest per head.
        expected = 5
        assert eventually(lambda: len(inbox.messages) >= expected, timeout=60, every=0.5)
        time.sleep(3)  # nothing more comes
        sent = sorted((message["To"], message["Subject"]) for message in inbox.messages)
        assert len(sent) == expected == len(set(sent)), sent
    finally:
        close()
        if started:
            controller.stop()
