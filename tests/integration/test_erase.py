"""`onestop erase --case ID` on a running pipeline: the applicant is gone from everything
the monitor keeps (the live state and its changelog, the SQL store, the notifications
ledger; drafts are never kept), another applicant is untouched, and the command says
what it cannot remove."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import select

from onestop.common.codec import decode_entry
from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.consumers.schema import case_states, notifications
from onestop.consumers.sink import Sink
from onestop.consumers.store import Store, connect
from onestop.models.case import holds_applicant
from onestop.streams.ingest import ingest_lines
from tests.integration.conftest import Inbox, drain, eventually, wait_processed
from tests.integration.test_notifier import CLOCK, received, run_notifier

pytestmark = pytest.mark.integration

ERASED = {"name": "Lê Thị Hoa", "address": "8 Nguyễn Huệ, Bến Đò", "phone": "0987654321"}
KEPT = {"name": "Phạm Văn Kiên", "address": "3 Hàm Nghi, Bến Đò", "phone": "0911222333"}
EVENTS = [
    # Both late, never processed, no apology: each gets a late notice with its draft.
    received("HOA-1", "2026-04-13T09:00:00+07:00", "2026-04-15T17:00:00+07:00",
             "1.001193", "SX-P-BENDO", "SX-P-BENDO-MC", applicant=ERASED),
    received("KIEN-1", "2026-04-13T09:00:00+07:00", "2026-04-15T17:00:00+07:00",
             "1.001193", "SX-P-BENDO", "SX-P-BENDO-MC", applicant=KEPT),
]


def latest_states(settings: Settings) -> dict[str, bytes | None]:
    """Each case's latest record in the case changelog."""
    topic = topics_for(settings).case_changelog.name
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                             enable_auto_commit=False, **settings.kafka_options())
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        latest: dict[str, bytes | None] = {}
        while any(consumer.position(part) < end for part, end in ends.items()):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    latest[orjson.loads(record.key)] = record.value
        return latest
    finally:
        consumer.close()


def mentions(text: str, person: dict[str, str]) -> bool:
    return any(value in text for value in person.values())


def test_erase_removes_one_applicant_from_everything_the_monitor_keeps(
    settings: Settings, start_worker: Any, tmp_path: Path,
    inbox: tuple[Inbox, int],
) -> None:
    messages, smtp_port = inbox
    settings = settings.model_copy(update={
        "clock": CLOCK, "smtp_port": smtp_port,
        "database_url": f"sqlite:///{tmp_path / 'onestop.db'}"})
    counts = ingest_lines(settings, [orjson.dumps(event) for event in EVENTS])
    start_worker(settings, clock=CLOCK).wait_ready()
    wait_processed(settings, counts.ends, timeout=60)
    # The notifier sends each late notice with its draft; the ledger records them.
    _notifier, close = run_notifier(settings.model_copy(update={"notifier_port": 0}),
                                    threading.Event())
    try:
        assert eventually(lambda: len(messages.messages) >= 2, timeout=40, every=0.5)
    finally:
        close()
    states = latest_states(settings)
    assert holds_applicant(decode_entry(states["HOA-1"]).state)

    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "onestop.streams", "erase", "--case", "HOA-1", "--timeout", "60"],
        env=settings.environment(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "HOA-1" in said and not mentions(said, ERASED)
    for cannot in ("case-events", "dead-letter", "e-mail"):
        assert cannot in said, (cannot, said)
    # A mistyped code is not reported as erased.
    typo = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "onestop.streams", "erase", "--case", "HOA-9", "--timeout", "60"],
        env=settings.environment(), capture_output=True, text=True, timeout=120, check=False)
    assert typo.returncode == 2 and "no worker holds a live case HOA-9" in " ".join(
        typo.stderr.split())

    # The live state (and so the changelog's latest record) of HOA-1 holds no applicant;
    # KIEN-1's still does, its case open and late.
    states = latest_states(settings)
    erased, kept = decode_entry(states["HOA-1"]).state, decode_entry(states["KIEN-1"]).state
    assert not holds_applicant(erased) and holds_applicant(kept)
    assert not mentions(str(erased), ERASED) and mentions(str(kept), KEPT)
    # The SQL store (filled by the sink from the changelog's whole history, before and
    # after the erasure) and the ledger never held either applicant.
    engine = connect(settings.database_url)
    sink = Sink(settings, Store(engine))
    try:
        assert drain(sink) > 0
        with engine.connect() as connection:
            ledger = connection.execute(select(notifications)).all()
            stored = connection.execute(select(case_states)).all()
        # (HOA-9 is stored too: the request alone, waiting for a receipt that may come.)
        assert len(ledger) >= 2 and {row.case_id for row in stored} >= {"HOA-1", "KIEN-1"}
        for row in [*ledger, *stored]:
            assert not mentions(str(tuple(row)), ERASED) and not mentions(str(tuple(row)), KEPT)
    finally:
        sink.close()
        engine.dispose()
