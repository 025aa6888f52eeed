"""Faults a province's servers will see: the network between a worker and the broker cut
and restored, the database gone during sinking, the mail server down. After each, the
figures equal the replay of the same events and every notice goes out once.

(A worker killed and restarted mid-stream is in test_live_pipeline.py, a sink killed
between its database and offset commits in test_sql_sink.py.)"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.broker import EmbeddedBroker, free_port
from streams.ingest import ingest_lines
from streams.settings import Settings
from streams.topics import create_topics
from tests.integration.conftest import eventually, replay_of, wait_processed
from tests.integration.test_live_pipeline import (
    AS_OF,
    FIXED_CLOCK,
    derived_ids,
    differences,
    live_matches,
    province_file,
)
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

# Longer than the consumer session (6 s in these tests): the broker drops the worker from
# its group, and the worker must rejoin once the link is back.
OUTAGE_SECONDS = 12


@pytest.fixture
def proxied_broker(tmp_path: Path) -> Iterator[tuple[Settings, TcpProxy]]:
    """A broker of its own whose every client, by bootstrap and by metadata, goes
    through a proxy the test can cut."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("needs an embedded broker that advertises the proxy's port")
    proxy_port = free_port()
    with EmbeddedBroker(advertised_port=proxy_port) as broker, \
            TcpProxy(broker.port, port=proxy_port) as proxy:
        name = "t" + uuid.uuid4().hex[:10]
        settings = Settings(
            broker_url=f"127.0.0.1:{proxy_port}", app_id=name, topic_prefix=name,
            data_dir=tmp_path / "faust", session_timeout_seconds=6, tick_seconds=0.5,
            metrics_port=0,
        )
        create_topics(settings)
        yield settings, proxy


def test_a_cut_between_worker_and_broker_loses_nothing_and_counts_nothing_twice(
    proxied_broker: tuple[Settings, TcpProxy], start_worker: Any, tmp_path: Path
) -> None:
    settings, proxy = proxied_broker
    path = province_file(tmp_path, cases=300, seed=31, duplicate_rate=0.05)
    lines = path.read_bytes().splitlines()
    expected, expected_ids = replay_of(path, AS_OF)
    worker = start_worker(settings, clock=FIXED_CLOCK)
    worker.wait_ready()
    half = len(lines) // 2
    first = ingest_lines(settings, lines[:half])
    wait_processed(settings, first.ends, timeout=120)

    rest = ingest_lines(settings, lines[half:])
    proxy.cut()  # while the worker is busy with the second half
    time.sleep(OUTAGE_SECONDS)
    proxy.restore()

    wait_processed(settings, {**first.ends, **rest.ends}, timeout=180)
    assert eventually(lambda: live_matches(settings, expected), timeout=60), differences(
        settings, expected)
    assert eventually(lambda: expected_ids <= set(derived_ids(settings)), timeout=20)
    assert worker.process.poll() is None, "the worker died instead of reconnecting"
    assert proxy.accepted > 0
