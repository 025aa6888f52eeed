"""`onestop ingest`: produce a JSON Lines file's events to the input topics."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from kafka import KafkaProducer

from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.models.events import QUEUE_EVENT_TYPES, oversized


@dataclass
class IngestCounts:
    case_events: int = 0
    queue_events: int = 0
    portal_records: int = 0
    # Lines that are not a JSON object with a usable id: produced without a key, so the
    # workers reject them to the dead-letter topic with their reason.
    unkeyed: int = 0
    # The offset after the last record sent, per (topic, partition).
    ends: dict[tuple[str, int], int] = field(default_factory=dict)
    # Lines not sent, larger than an event may be: (line number, reason).
    too_large: list[tuple[int, str]] = field(default_factory=list)


def route(line: bytes) -> tuple[bool, bytes | None]:
    """(is a queue event, record key) of a line; the key is None when it cannot be read."""
    event = _object(line)
    queue = event.get("type") in QUEUE_EVENT_TYPES
    return queue, _key(event.get("ticket_id" if queue else "case_id"))


def portal_key(line: bytes) -> bytes | None:
    """The record key of a national-portal status record: its dossier code (MaHoSo)."""
    return _key(_object(line).get("MaHoSo"))


def _object(line: bytes) -> dict[str, object]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _key(value: object) -> bytes | None:
    return value.encode() if isinstance(value, str) and value else None


def producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, client_id="onestop-ingest",
        **settings.kafka_options(),
        linger_ms=20, batch_size=256 * 1024, acks="all",
    )


def ingest_lines(
    settings: Settings, lines: Iterable[bytes], progress: Callable[[int], None] | None = None,
    portal: bool = False,
) -> IngestCounts:
    """Send every non-blank line, keyed by its case or ticket id (or, with `portal`, as a
    national-portal status record keyed by its dossier code), except lines larger than
    an event may be (counted in `too_large`); `progress(bytes)` is called every 10,000
    lines. Returns what was sent once the broker has it all."""
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
            refused = oversized(len(line), settings.max_event_bytes)
            if refused is not None:
                counts.too_large.append((number, refused))
                continue
            if portal:
                key, topic = portal_key(line), topics.portal_status.name
                counts.portal_records += key is not None
            else:
                queue, key = route(line)
                topic = topics.queue_events.name if queue else topics.case_events.name
                if key is not None:
                    counts.queue_events += queue
                    counts.case_events += not queue
            counts.unkeyed += key is None
            client.send(topic, key=key, value=line).add_callback(sent)
        client.flush()
    finally:
        client.close()
    if progress is not None:
        progress(done)
    return counts
