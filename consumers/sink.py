"""`onestop sink`: the pipeline's outputs into SQL.

A kafka-python consumer group reads the aggregates and derived-events topics and the two
table changelogs (the case and ticket states the period reports judge). Each poll's
records are written in one database transaction, and the group's offsets are committed
only after that transaction commits. A sink that dies in between reads the same records
again, and the upserts (see `consumers.store`) make the second write change nothing.

A record the sink cannot read goes to the dead-letter topic with its reason (contract
§7), and the sink goes on.

When the database cannot be reached, nothing is committed: the consumer goes back to the
committed offsets and the sink tries again after a pause that grows to half a minute, so
an outage of any length costs a delay, never a record.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy.exc import InterfaceError, OperationalError

from onestop.common.clock import parse_clock
from onestop.common.codec import dead_letter_json
from onestop.common.settings import Settings
from onestop.common.topics import create_topics, topics_for
from onestop.consumers.rows import (
    BadRecord,
    add_aggregate_record,
    add_derived_record,
    add_state_record,
)
from onestop.consumers.store import Rows, Store

log = logging.getLogger("onestop.sink")

# The longest pause between two attempts to reach a database that is down.
MAX_RETRY_SECONDS = 30.0

Handler = Callable[[Rows, bytes | None, bytes | None, tuple[int, int]], None]


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached; the batch was not stored and will be read again."""


class Sink:
    def __init__(self, settings: Settings, store: Store, max_records: int = 5000) -> None:
        self.settings = settings
        self.store = store
        self.max_records = max_records
        topics = topics_for(settings)
        self.dead_letter_topic = topics.dead_letters.name
        self.handlers: dict[str, Handler] = {
            topics.aggregates.name: add_aggregate_record,
            topics.derived_events.name: add_derived_record,
            topics.case_changelog.name: add_state_record,
            topics.ticket_changelog.name: add_state_record,
        }
        create_topics(settings)
        self.consumer = KafkaConsumer(
            *self.handlers,
            bootstrap_servers=settings.bootstrap_servers,
            **settings.kafka_options(),
            group_id=self.group_id(settings),
            client_id=f"{settings.app_id}-sql-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(settings.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(settings.session_timeout_seconds * 1000 / 3),
            # Case states are about a kilobyte each: the default 1 MB per partition would
            # cap a poll, and so a transaction, at a thousand of them.
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        self._producer: KafkaProducer | None = None
        self.stored: Counter[str] = Counter()
        self.clock = parse_clock(settings.clock)

    @staticmethod
    def group_id(settings: Settings) -> str:
        return f"{settings.app_id}-sql-sink"

    def poll_once(self, timeout_seconds: float = 0.5) -> int:
        """Store one poll's records and commit their offsets; the number of records."""
        polled = self.consumer.poll(
            timeout_ms=int(timeout_seconds * 1000), max_records=self.max_records
        )
        if not polled:
            return 0
        rows = Rows()
        rejected: list[tuple[Any, str]] = []
        count = 0
        for place, records in polled.items():
            handle = self.handlers[place.topic]
            for record in records:
                count += 1
                try:
                    handle(rows, record.value, record.key, (record.partition, record.offset))
                except BadRecord as error:
                    rejected.append((record, str(error)))
        try:
            self.store.write(rows)
        except (OperationalError, InterfaceError) as error:
            self._rewind(list(polled))
            raise DatabaseUnavailable(type(error.orig or error).__name__) from error
        # After the write, so that a batch read again after an outage is not dead-lettered
        # twice; before the commit, so that nothing is lost if the sink dies.
        if rejected:
            self._dead_letter(rejected)
        self.commit()
        for name, keyed in rows.by_table.items():
            self.stored[name] += len(keyed)
        return count

    def commit(self) -> None:
        """The consumed positions, only ever after the batch's transaction committed."""
        self.consumer.commit()

    def _rewind(self, partitions: list[TopicPartition]) -> None:
        """Back to the committed offsets, so that the unstored batch is read again."""
        for place in partitions:
            offset = self.consumer.committed(place)
            if offset is None:
                self.consumer.seek_to_beginning(place)
            else:
                self.consumer.seek(place, offset)

    def _dead_letter(self, rejected: list[tuple[Any, str]]) -> None:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.settings.bootstrap_servers, **self.settings.kafka_options())
        now = dt.datetime.fromtimestamp(self.clock.now(), dt.UTC).isoformat()
        for record, reason in rejected:
            log.warning("dead letter from %s[%d]@%d: %s", record.topic, record.partition,
                        record.offset, reason)
            body = dead_letter_json(record.value, record.topic, record.partition,
                                    record.offset, f"SQL sink: {reason}", now)
            self._producer.send(self.dead_letter_topic, key=record.key, value=orjson.dumps(body))
        # Sent before the offsets move on, so that nothing is lost if the sink dies.
        self._producer.flush()

    def run(self, stop: threading.Event, report_every: float = 10.0) -> None:
        next_report = time.monotonic() + report_every
        pause = 1.0
        while not stop.is_set():
            try:
                self.poll_once()
            except DatabaseUnavailable as error:
                log.warning("database unavailable (%s); nothing committed, retrying in %.0f s",
                            error, pause)
                stop.wait(pause)
                pause = min(pause * 2, MAX_RETRY_SECONDS)
                continue
            pause = 1.0
            if self.settings.sink_heartbeat_file:
                Path(self.settings.sink_heartbeat_file).touch()
            if time.monotonic() >= next_report:
                log.info("stored so far: %s", dict(self.stored) or "nothing")
                next_report += report_every

    def close(self) -> None:
        # No commit on the way out: the last batch committed its own offsets.
        self.consumer.close(autocommit=False)
        if self._producer is not None:
            self._producer.close()
