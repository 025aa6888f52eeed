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

A broker that lost records the store was written from (the embedded broker restarted: it
keeps nothing; a topic deleted and created again) stops the sink with `BrokerLostRecords`
before it writes anything more: its offsets start again at 0, so the upserts would
ignore the new records, and tombstones would delete or archive rows they do not belong
to. Two signs are checked: a position the broker says is out of range, and, whenever a partition
is (re)assigned, a high watermark at or below the highest offset the store holds from
that partition. A group that lost its commits on a broker that kept its records is no
such sign: it reads everything again, which the upserts make harmless (a sink that died
before its first commit does just that).

After `onestop reprocess` the store is in a new generation (see `consumers.store`): its
rows replace the older ones whatever their offsets, and once the worker and the sink have
read everything again, the older rows the new rules did not write again are removed.
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
from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from kafka.errors import (
    KafkaError,
    LogTruncationError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
)
from sqlalchemy import Table
from sqlalchemy.exc import InterfaceError, OperationalError

from onestop.common.clock import parse_clock
from onestop.common.codec import dead_letter_json
from onestop.common.settings import Settings
from onestop.common.topics import create_topics, topics_for
from onestop.consumers.rows import (
    BadRecord,
    Rows,
    add_aggregate_record,
    add_derived_record,
    add_state_record,
)
from onestop.consumers.schema import (
    agency_day_figures,
    case_states,
    centre_day_figures,
    derived_events,
    ticket_states,
)
from onestop.consumers.store import Store

log = logging.getLogger("onestop.sink")

# The longest pause between two attempts to reach a database that is down.
MAX_RETRY_SECONDS = 30.0

Handler = Callable[[Rows, bytes | None, bytes | None, tuple[int, int]], None]


# The exit status of `onestop sink` when the broker lost records the store was written
# from: not a failure a restart mends, so a supervisor (and a person) can tell it apart.
LOST_RECORDS_EXIT = 3


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached; the batch was not stored and will be read again."""


class BrokerLostRecords(RuntimeError):
    """The broker no longer holds records the store was written from; nothing more was
    written. The message says what happened and what to do, in both languages."""

    def __init__(self, topic: str, partition: int, what: str) -> None:
        super().__init__(
            f"Sink dừng: broker không còn các bản ghi mà kho SQL đã lưu từ {topic}[{partition}] "
            "(broker mất dữ liệu — broker nhúng không giữ gì sau khi khởi động lại — hoặc "
            "topic bị xoá và tạo lại). Không ghi thêm gì. Cách xử lý: dừng worker, chạy "
            "`onestop reprocess --yes`, rồi chạy lại worker và sink.\n"
            f"The sink stopped: the broker no longer holds records the SQL store was "
            f"written from ({topic} partition {partition}: {what}). The broker lost its "
            "records (the embedded broker keeps nothing across its restarts) or the topic "
            "was deleted and created again; the offsets start again at 0, so the store's "
            "rows would silently stop changing. Nothing more was written. What to do: with "
            "the workers stopped, run `onestop reprocess --yes` (it rebuilds the derived "
            "topics from the input topics and the store's rows from them), then start the "
            "workers and the sink; if the input topics were lost too, ingest the events "
            "again first.")
        self.topic, self.partition = topic, partition


class _Assignments(ConsumerRebalanceListener):
    """Marks every newly assigned partition for the lost-records check."""

    def __init__(self, unchecked: set[TopicPartition]) -> None:
        self.unchecked = unchecked

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.unchecked.difference_update(revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.unchecked.update(assigned)


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
        # The tables each topic's records are written to, for the lost-records check.
        self.tables: dict[str, list[Table]] = {
            topics.aggregates.name: [agency_day_figures, centre_day_figures],
            topics.derived_events.name: [derived_events],
            topics.case_changelog.name: [case_states],
            topics.ticket_changelog.name: [ticket_states],
        }
        # The worker's input topics: the rows of an older generation are removed once the
        # worker has processed them all again.
        self.input_topics = [topics.case_events.name, topics.queue_events.name,
                             topics.portal_status.name]
        create_topics(settings)
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            **settings.kafka_options(),
            group_id=self.group_id(settings),
            client_id=f"{settings.app_id}-sql-sink",
            enable_auto_commit=False,
            # No reset policy: a position out of range raises (the broker lost records),
            # and a partition without a commit is started by `_start_from_beginning`.
            auto_offset_reset="none",
            session_timeout_ms=int(settings.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(settings.session_timeout_seconds * 1000 / 3),
            # Case states are about a kilobyte each: the default 1 MB per partition would
            # cap a poll, and so a transaction, at a thousand of them.
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        # Partitions assigned, or started again from the beginning, whose high watermark
        # the lost-records check has not yet compared with the store.
        self.unchecked: set[TopicPartition] = set()
        self.consumer.subscribe(list(self.handlers), listener=_Assignments(self.unchecked))
        self._producer: KafkaProducer | None = None
        self.stored: Counter[str] = Counter()
        self.clock = parse_clock(settings.clock)
        self.old_rows_waiting = store.old_rows_waiting()
        self._ends_at_last_check: dict[TopicPartition, int] | None = None

    @staticmethod
    def group_id(settings: Settings) -> str:
        return f"{settings.app_id}-sql-sink"

    def poll_once(self, timeout_seconds: float = 0.5) -> int:
        """Store one poll's records and commit their offsets; the number of records."""
        polled = self._poll(timeout_seconds)
        # Before anything of this poll is written.
        try:
            self._check_high_watermarks()
        except (OperationalError, InterfaceError) as error:
            self._rewind(list(polled))
            raise DatabaseUnavailable(type(error.orig or error).__name__) from error
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

    def _poll(self, timeout_seconds: float) -> dict[TopicPartition, list[Any]]:
        """One poll's records. A partition without a commit, or whose records up to the
        sink's position were deleted by retention, is moved instead (nothing polled); a
        broker that lost records raises BrokerLostRecords."""
        try:
            return dict(self.consumer.poll(
                timeout_ms=int(timeout_seconds * 1000), max_records=self.max_records))
        except NoOffsetForPartitionError as error:
            self._start_from_beginning(error.args[0])
            return {}
        except OffsetOutOfRangeError as error:
            place, offset = next(iter(error.args[0].items()))
            start = self.consumer.beginning_offsets([place])[place]
            if offset < start:
                # The topic's retention deleted records the sink had not read yet (a sink
                # stopped for longer than that): the topic's own rule, not a lost broker.
                log.warning("%s[%d]: offsets %d to %d were deleted by the topic's retention "
                            "before the sink read them; reading on from %d", place.topic,
                            place.partition, offset, start - 1, start)
                self.consumer.seek(place, start)
                return {}
            raise BrokerLostRecords(
                place.topic, place.partition,
                f"the sink was to read on from offset {offset}, which the broker says is "
                "beyond its end") from None
        except LogTruncationError as error:
            place = next(iter(error.args[0]))
            raise BrokerLostRecords(
                place.topic, place.partition,
                "the broker cut its log back below the sink's position (a replica without "
                "the newest records became the leader)") from None

    def _start_from_beginning(self, partitions: set[TopicPartition]) -> None:
        """Partitions with no committed offset: a new sink, a new generation, or a group
        whose commits were lost. Read from the beginning; the first fetch's high
        watermark is checked against the store before anything is written."""
        for place in partitions:
            self.consumer.seek_to_beginning(place)
            self.unchecked.add(place)

    def _check_high_watermarks(self) -> None:
        """Stop if a newly assigned partition ends at or below the highest offset the
        store's current generation holds from it: the broker lost those records."""
        known = {place: self.consumer.highwater(place) for place in self.unchecked
                 if place in self.consumer.assignment()}
        known = {place: end for place, end in known.items() if end is not None}
        stored_by_topic: dict[str, dict[int, int]] = {}
        for place, end in known.items():
            if place.topic not in stored_by_topic:
                stored_by_topic[place.topic] = self.store.highest_offsets(
                    self.tables[place.topic])
            stored = stored_by_topic[place.topic].get(place.partition)
            if stored is not None and stored >= end:
                raise BrokerLostRecords(
                    place.topic, place.partition,
                    f"it ends at offset {end}, but the store holds rows from offset "
                    f"{stored} of it")
            self.unchecked.discard(place)

    def caught_up(self) -> bool:
        """Whether the worker has processed, and the sink read, everything that was there at
        the previous check. The ends move on all the time (new events, and the aggregates
        the worker's ticks cause), so "everything up to the ends now"
        may never be true at one instant; everything up to the ends of a check ago is, and
        holds every event sent before it. False at the first check. On Tansu, whose end
        offsets may fall one record batch short (README: the embedded broker), it may say
        so a little early: the older rows removed then are written again by the records
        still to come."""
        assigned = self.consumer.assignment()
        inputs = [TopicPartition(topic, partition) for topic in self.input_topics
                  for partition in range(self.settings.partitions)]
        # The sink's own partitions' ends as its last fetch saw them; the inputs' asked for.
        read_ends = {place: self.consumer.highwater(place) for place in assigned}
        if not assigned or None in read_ends.values():
            return False
        ends = {**self.consumer.end_offsets(inputs), **read_ends}
        earlier, self._ends_at_last_check = self._ends_at_last_check, ends
        if earlier is None or any(
                self.consumer.position(place) < earlier.get(place, 0) for place in assigned):
            return False
        admin = KafkaAdminClient(bootstrap_servers=self.settings.bootstrap_servers,
                                 **self.settings.kafka_options())
        try:
            done = admin.list_group_offsets(self.settings.app_id).get(self.settings.app_id, {})
        finally:
            admin.close()
        committed = {place: meta.offset for place, meta in done.items()}
        return all(committed.get(place, 0) >= earlier.get(place, 0) for place in inputs)

    def finish_reprocessing(self) -> dict[str, int] | None:
        """After `onestop reprocess`, once everything was read again: remove the rows of
        older generations the new rules did not write again. The rows removed per table,
        or None while there is nothing to do yet."""
        if not self.old_rows_waiting or not self.caught_up():
            return None
        removed = self.store.remove_old_rows()
        self.old_rows_waiting = False
        log.info("reprocessing caught up; rows of older generations removed: %s", removed)
        return removed

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
                try:
                    self.finish_reprocessing()
                except (OperationalError, InterfaceError, KafkaError) as error:
                    # Not worth stopping for: it is tried again at the next report.
                    log.warning("the rows of older generations wait (%s)", error)
                next_report += report_every

    def close(self) -> None:
        # No commit on the way out: the last batch committed its own offsets.
        self.consumer.close(autocommit=False)
        if self._producer is not None:
            self._producer.close()
