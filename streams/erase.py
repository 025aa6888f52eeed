"""`onestop erase`: one applicant's personal data removed from what the monitor keeps, on
their request (Decree 13/2023/NĐ-CP).

The request travels as an event (`applicant_erased`) on the case topic, so that the
worker holding the case erases it from the live state (and so from the compacted
changelog), and so that a replay of the topics erases it again. The command then waits
for the worker's answer: the case's next changelog record, without the applicant.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from onestop.common.codec import decode_entry
from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.models.case import holds_applicant, procedure_of
from onestop.streams.ingest import ingest_lines


def erasure_event(case_id: str, now: float) -> dict[str, Any]:
    moment = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
    return {"event_id": f"erase:{case_id}:{moment}", "type": "applicant_erased",
            "case_id": case_id, "occurred_at": moment, "source": "onestop erase"}


@dataclass(frozen=True)
class Erased:
    """Where the worker confirmed the erasure, and whether it holds the case live: for a
    mistyped code, or a case it archived once settled, it writes a state of the request
    alone (for an archived case, the SQL sink adds it to the stored case)."""

    partition: int
    offset: int
    case_known: bool


def erase_case(settings: Settings, case_id: str, now: float,
               timeout: float) -> Erased | None:
    """Ask for `case_id`'s applicant to be erased and wait up to `timeout` seconds for a
    worker to do it: the changelog record of the case without the applicant, or None
    when no worker answered in time (the request stays in the topic and takes effect
    when one runs)."""
    topic = topics_for(settings).case_changelog.name
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                             enable_auto_commit=False, client_id=f"{settings.app_id}-erase",
                             **settings.kafka_options())
    try:
        parts = [TopicPartition(topic, partition)
                 for partition in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        # What the changelog holds before the request: the answer comes after it.
        for part, offset in consumer.end_offsets(parts).items():
            consumer.seek(part, offset)
        ingest_lines(settings, [orjson.dumps(erasure_event(case_id, now))])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if orjson.loads(record.key) != case_id:
                        continue
                    state = None if record.value is None else decode_entry(record.value).state
                    if state is None or not holds_applicant(state):
                        known = state is not None and procedure_of(state) is not None
                        return Erased(record.partition, record.offset, known)
        return None
    finally:
        consumer.close()
