"""`onestop ingest`: produce a JSON Lines file's events to the input topics."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from kafka import KafkaProducer

from models.events import QUEUE_EVENT_TYPES
from streams.settings import Settings
from streams.topics import topics_for


@dataclass
class IngestCounts:
    case_events: int = 0
    queue_events: int = 0
    # Lines that are not a JSON object with a usable id: produced without a key, so the
    # workers reject them to the dead-letter topic with their reason.
    unkeyed: int = 0
    # The offset after the last record sent, per (topic, partition).
    ends: dict[tuple[str, int], int] = field(default_factory=dict)


def route(line: bytes) -> tuple[bool, bytes | None]:
    """(is a queue event, record key) of a line; the key is None when it cannot be read."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False, None
    if not isinstance(event, dict):
        return False, None
    queue = event.get("type") in QUEUE_EVENT_TYPES
    key = event.get("ticket_id" if queue else "case_id")
    return queue, key.encode() if isinstance(key, str) and key else None


def producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, client_id="onestop-ingest",
        linger_ms=20, batch_size=256 * 1024, acks="all",
    )


def ingest_lines(
    settings: Settings, lines: Iterable[bytes], progress: Callable[[int], None] | None = None
) -> IngestCounts:
    """Send every non-blank line, keyed by its case or ticket id; `progress(bytes)` is
    called every 10,000 lines. Returns what was sent once the broker has it all."""
    topics = topics_for(settings)
    counts = IngestCounts()
    client = producer(settings)

    def sent(metadata: object) -> None:
        place = (metadata.topic, metadata.partition)  # type: ignore[attr-defined]
        counts.ends[place] = max(counts.ends.get(place, 0), metadata.offset + 1)  # type: ignore[attr-defined]

    done = 0
    try:
        for number, line in enumerate(lines, 1):
            done += len(line)
            if progress is not None and number % 10_000 == 0:
                progress(done)
            line = line.strip()
            if not line:
                continue
            queue, key = route(line)
            if key is None:
                counts.unkeyed += 1
            elif queue:
                counts.queue_events += 1
            else:
                counts.case_events += 1
            topic = topics.queue_events.name if queue else topics.case_events.name
            client.send(topic, key=key, value=line).add_callback(sent)
        client.flush()
    finally:
        client.close()
    if progress is not None:
        progress(done)
    return counts
