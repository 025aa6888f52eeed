"""A broker that lost its records under a running worker (issue 16): the embedded broker
keeps nothing across a restart. The worker must not go on judging on states built from
records the broker no longer has; it stops processing and says what happened."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from onestop.common.topics import create_topics
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.broker import EmbeddedBroker, free_port
from onestop.streams.ingest import ingest_lines
from onestop.streams.simulate import SimulationSettings, simulate
from tests.integration.conftest import eventually, settings_for, wait_processed

FIXED_CLOCK = "fixed:2026-04-20T17:00:00+07:00"


def health(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_worker_whose_broker_lost_its_records_stops_and_says_why(
    start_worker: Any, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    broker = EmbeddedBroker(port=port, log_path=str(tmp_path / "broker.log")).start()
    try:
        settings = settings_for(broker.bootstrap, tmp_path)
        create_topics(settings)
        worker = start_worker(settings, clock=FIXED_CLOCK, metrics_port=metrics_port)
        worker.wait_ready()
        events = simulate(load_reference(SAMPLE_PROVINCE),
                          SimulationSettings(cases=40, seed=5, days=10))
        counts = ingest_lines(settings, [orjson.dumps(event) for event in events])
        wait_processed(settings, counts.ends, timeout=120)
        assert health(metrics_port)[0] == 200

        broker.stop()
        broker = EmbeddedBroker(port=port, log_path=str(tmp_path / "broker-2.log")).start()
        create_topics(settings)  # as `onestop topics` or a worker starting would

        log = worker.log
        assert eventually(lambda: "stopped processing" in log.read_text(), timeout=120,
                          every=1), log.read_text()[-3000:]
        text = log.read_text()
        assert "the embedded broker keeps nothing across a restart" in text
        assert "onestop reprocess" in text
        status, answer = health(metrics_port)
        assert status == 503 and "halted" in answer
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as page:  # noqa: S310
            assert "onestop_halted 1.0" in page.read().decode()
        assert worker.process.poll() is None  # it stays, holding its partitions, unhealthy
    finally:
        broker.stop()
