"""The live pipeline: a Faust app built from settings.

The keepers (fed each fetch's input records in one batch, streams/transport.py) and the
agents (portal records, ticks) only decode, call the rules of `models/`, write state back
and send what the rules return. Time comes in as tick records that the leader's timer
sends into every partition of the ticks topic (kept an hour), co-partitioned with the
input topics: the worker that applies a partition's events also judges its cases when no
event arrives (a Faust timer may not write to tables). A partition whose events are still
being read is judged at the instant its last applied record arrived
(`Keeper.judging_instant`), so an ending still waiting to be read cannot make a case look
late.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import os
import signal
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import faust
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP, Message, TopicT

from onestop.common.clock import Clock, parse_clock
from onestop.common.codec import (
    OLD_TICK_KEY,
    Entry,
    dead_letter_json,
    decode_tick,
    encode_entry,
    encode_tick,
)
from onestop.common.replay import derived_json
from onestop.common.settings import Settings
from onestop.common.topics import ARCHIVE_TABLE, CASE_TABLE, TICKET_TABLE, topics_for
from onestop.models.aggregates import (
    AgencyFigures,
    CentreFigures,
    Period,
    agency_figures,
    centre_figures,
)
from onestop.models.archive import OPENING_KINDS, archive_horizon, settled
from onestop.models.case import CLOSING_KINDS as CASE_CLOSING_KINDS
from onestop.models.case import CaseRules, CaseState, DerivedEvent
from onestop.models.events import (
    CASE_EVENT_TYPES,
    QUEUE_EVENT_TYPES,
    Rejection,
    decode_event,
    oversized,
)
from onestop.models.facts import days_touched, history_full
from onestop.models.judge import Judgement, first_instant, judge_case, judge_ticket
from onestop.models.queue import CLOSING_KINDS as TICKET_CLOSING_KINDS
from onestop.models.queue import QueueRules, TicketState
from onestop.models.reference import load_reference
from onestop.streams.metrics import Tally, WorkerMetrics, serve
from onestop.streams.portal import PortalBridge
from onestop.streams.table_codec import ENTRY_CODEC
from onestop.streams.tansu_compat import TansuTransport, is_tansu
from onestop.streams.transport import Transport

log = logging.getLogger("onestop")

# Derived events that someone must act on; they also go to the alerts topic, keyed by
# the agency that must act.
ALERT_KINDS = frozenset({
    "case_at_risk", "overdue_detected", "apology_missing", "refusal_without_reason",
    "rescheduled_twice", "wait_exceeded",
})
# After a restart, the aggregates of the days this close to "now" are published again,
# as the worker may have died between a state change and its aggregate.
REPUBLISH_DAYS = 35
# The longest pause between two attempts to deliver a batch's outputs, in seconds.
RETRY_PAUSE_MAX = 30.0
# The worker's exit status when applying a batch raised (sysexits' EX_SOFTWARE).
EXIT_BATCH_FAILED = 70
# How often a partition that is behind (catching up on a backlog) is judged, instead of
# every tick: a judgement walks each changed case from its new events to the judging
# instant and rebuilds the figures of each day touched, and a worker catching up would
# pay that every second for the same cases again and again.
CATCH_UP_TICK_SECONDS = 10.0
# The largest record the worker writes: under the 1 MiB that Kafka brokers and producers
# accept by default, with room for the record's key and headers.
MAX_RECORD_BYTES = 1_000_000


class Table(Protocol):
    data: Any
    changelog_topic: Any


@dataclass
class PartitionIndex:
    """What a worker knows of one source partition beyond its table: the local days
    each key's figures may touch, what changed since the last tick, when each key must
    next be judged, and the aggregates last sent. Rebuilt from the table after a
    rebalance or a recovery, never stored."""

    spans: dict[str, tuple[dt.date, dt.date | None]] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    # Of each changed key, the earliest instant from which it must be judged again: its
    # earliest event applied since it was last judged (its first, after a rebuild).
    since: dict[str, float] = field(default_factory=dict)
    wake: dict[str, float] = field(default_factory=dict)
    dirty_days: set[dt.date] = field(default_factory=set)
    # The figures last sent, per local day: aggregate key → figures JSON.
    published: dict[dt.date, dict[bytes, bytes]] = field(default_factory=dict)
    # The newest opening event applied (a receipt or a ticket issued) and the instant of
    # the last tick: the archive horizon counts back from the earlier of the two, and is
    # moved at each tick; the days before it are final (models/archive.py). No horizon
    # before the first tick.
    newest_opening_at: float = -math.inf
    ticked_at: float = -math.inf
    horizon: dt.date | None = None
    # Keys that only wait for their last day to become final to be archived: key → that
    # day, and the same by day, so that a tick looks only at the days that became final.
    settling: dict[str, dt.date] = field(default_factory=dict)
    settling_by_day: dict[dt.date, set[str]] = field(default_factory=dict)


class Outbox:
    """Records to send when a batch is done, grouped by topic partition.

    Each group goes out as one record batch through the pipeline's aiokafka producer, and
    the keeper awaits delivery before the batch's offsets may be committed: a message per
    record through Faust's producer buffer costs more than applying the event itself.
    A delivery that fails is sent again until the broker has every record, so the batch
    is never acknowledged without what it caused."""

    def __init__(self, pipeline: Pipeline, stream: str) -> None:
        self.partitions = pipeline.partition_counts
        self.producer = pipeline.producer
        self.metrics = pipeline.metrics
        self.stream = stream
        self.pending: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = (
            defaultdict(list)
        )
        self.partitioner = DefaultPartitioner()
        self.unkeyed = 0

    def add(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> None:
        if partition is None:
            every = list(range(self.partitions[topic]))
            if key is None:
                self.unkeyed += 1
                partition = every[self.unkeyed % len(every)]
            else:
                partition = self.partitioner(key, every, every)
        self.pending[(topic, partition)].append((key, value))

    async def flush(self) -> None:
        """Return once the broker has acknowledged every pending record. A failed
        delivery is logged, counted, and sent again (all of it: at least once) after a
        pause that doubles up to RETRY_PAUSE_MAX seconds, for as long as it takes."""
        if not self.pending:
            return
        failures = 0
        self.metrics.delivering(self.stream, time.time())
        while True:
            try:
                await self._send()
                break
            except (TimeoutError, KafkaError, OSError) as error:
                failures += 1
                pause = min(RETRY_PAUSE_MAX, 2.0 ** failures)
                self.metrics.count("delivery_failures", (self.stream,))
                self.metrics.publish()
                log.warning(
                    "onestop: %s: delivery of a batch's outputs failed (%s, attempt %d); "
                    "sending again in %.0f s, the batch stays unacknowledged",
                    self.stream, type(error).__name__, failures, pause)
                await asyncio.sleep(pause)
        if failures:
            log.warning("onestop: %s: the batch's outputs were delivered after %d failed "
                        "attempts", self.stream, failures)
        self.metrics.delivering(self.stream, None)
        self.pending.clear()

    async def _send(self) -> None:
        producer = await self.producer()
        deliveries = []
        for (topic, partition), records in self.pending.items():
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    batch.close()
                    deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            batch.close()
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*deliveries)


class Keeper:
    """Drives one kind of entity (cases, or queue tickets) through its rules: applies
    events, judges on ticks, publishes derived events and per-day aggregates."""

    scope = ""
    stream = ""  # the `stream` label of its pipeline metrics
    types: frozenset[str] = frozenset()
    closing_kinds: frozenset[str] = frozenset()  # events after which the entity is done

    def __init__(self, pipeline: Pipeline, table: Table, archive: Table) -> None:
        self.pipeline = pipeline
        self.table = table
        self.changelog = table.changelog_topic.get_topic_name()
        # Shared by both keepers, keyed `<scope>:<partition>:<series>`: the metric totals
        # of what each partition archived, so that they survive the entities.
        self.archive = archive
        self.archive_changelog = archive.changelog_topic.get_topic_name()
        self.archive_after_days = pipeline.settings.archive_after_days
        # Per partition: the totals of what it archived, included in `tally`.
        self.settled_totals: dict[int, Tally] = {}
        # A batch of events and a tick are applied one at a time: they share the table,
        # the changes not yet flushed and the outbox.
        self.busy = asyncio.Lock()
        # Per partition: the offset after the last record applied and when it reached the
        # broker (wall seconds); the instant it was last judged at, and (monotonic) when
        # it was last judged while behind.
        self.read_through: dict[int, tuple[int, float]] = {}
        self.judged_at: dict[int, float] = {}
        self.judged_behind: dict[int, float] = {}
        # Of an input partition: its end as the consumer last saw it (None: not known
        # yet) and the offset committed (what an earlier worker applied; None: nothing);
        # create_app gives it the Faust consumer's.
        self.input_offsets: Callable[[int], tuple[int | None, int | None]] = (
            lambda partition: (None, None))
        self.outbox = Outbox(pipeline, self.stream)
        self.indexes: dict[int, PartitionIndex] = {}
        self.unflushed: dict[str, int] = {}
        # Of each key changed since the last flush: its state before, and its events.
        self.before: dict[str, Any] = {}
        self.applied: dict[str, list[Message]] = {}
        self.metrics = pipeline.metrics
        self.tally: Tally = pipeline.metrics.cases if self.scope == "agency" else (
            pipeline.metrics.tickets)
        calendar = pipeline.rules.calendar
        self.local_date = calendar.local_date

    # -- what differs between cases and tickets --------------------------------------
    def key_of(self, event: Any) -> str:
        raise NotImplementedError

    def apply(self, state: Any, event: Any) -> Any:
        raise NotImplementedError

    def judge(self, state: Any, start: float, now: float) -> Judgement:
        """The state judged at each instant from `start` to `now` at which its outcome
        may change (`models.judge`)."""
        raise NotImplementedError

    def figures(self, states: Iterable[Any], period: Period) -> dict[str, Any]:
        raise NotImplementedError

    # -- shared driving ------------------------------------------------------------
    def index(self, partition: int) -> PartitionIndex:
        index = self.indexes.get(partition)
        if index is None:
            index = self.indexes[partition] = self._rebuild(partition)
        return index

    def _rebuild(self, partition: int) -> PartitionIndex:
        index = PartitionIndex()
        now = self.pipeline.clock.now()
        today = self.local_date(now)
        held = [(key, entry.state) for key, entry in list(self.table.data.items())
                if entry.partition == partition]
        index.newest_opening_at = max((fact.at for _, state in held for fact in state.facts
                                       if fact.kind in OPENING_KINDS), default=-math.inf)
        self._move_horizon(index, now)
        # Days already final are not published again: they may miss archived cases.
        recent = max(today - dt.timedelta(days=REPUBLISH_DAYS), index.horizon or dt.date.min)
        for key, state in held:
            self._note(index, key, state)
            index.changed.add(key)
            # Judged through its whole history once: what came about while no worker
            # held it is found, what was already sent is not sent again.
            index.since[key] = first_instant(state)
            first, last = index.spans[key]
            day = max(first, recent)
            while day <= (last or today):
                index.dirty_days.add(day)
                day += dt.timedelta(days=1)
        if partition not in self.settled_totals:
            totals = self.settled_totals[partition] = Tally()
            prefix = f"{self.scope}:{partition}:"
            for key, raw in list(self.archive.data.items()):
                if key.startswith(prefix):
                    totals.load_series(key[len(prefix):], raw)
            self.tally.absorb(totals)
        return index

    def _move_horizon(self, index: PartitionIndex, now: float) -> None:
        index.ticked_at = now
        index.horizon = None if -math.inf in (index.newest_opening_at, now) else archive_horizon(
            index.newest_opening_at, now, self.archive_after_days, self.local_date)

    def _note(self, index: PartitionIndex, key: str, state: Any) -> None:
        index.spans[key] = days_touched(state.facts, self.closing_kinds, self.local_date)

    def state(self, key: str) -> Any:
        entry = self.table.data.get(key)
        return None if entry is None else entry.state

    def write(self, partition: int, key: str, state: Any) -> None:
        data = self.table.data
        if key not in self.unflushed:
            entry = data.get(key)
            self.before[key] = None if entry is None else entry.state
        data[key] = Entry(partition, state)
        self.unflushed[key] = partition

    def flush(self) -> None:
        """Send each state changed since the last flush to the changelog once, to the
        partition of its source record (not the producer's choice of partition)."""
        data, add = self.table.data, self.outbox.add
        for key, partition in self.unflushed.items():
            value = encode_entry(data[key])
            if len(value) > MAX_RECORD_BYTES:
                self._refuse_growth(partition, key, len(value))
                continue
            # Keys as the table's changelog codec writes them (JSON strings).
            add(self.changelog, orjson.dumps(key), value, partition)
        self.unflushed.clear()
        self.before.clear()
        self.applied.clear()

    def _refuse_growth(self, partition: int, key: str, size: int) -> None:
        """A state too large for one record: back to the state before this batch, and the
        batch's events of that key to the dead-letter topic."""
        before = self.before[key]
        if before is None:
            del self.table.data[key]
            self.tally.set(key, ())
        else:
            self.table.data[key] = Entry(partition, before)
        self.indexes.pop(partition, None)  # rebuilt from the table when next needed
        for message in self.applied.get(key, ()):
            self.dead_letter(
                message, f"with this event its case's or ticket's state would be {size:,} "
                f"bytes; a record may have {MAX_RECORD_BYTES:,} at most", "state_too_large")

    def on_event(self, partition: int, event: Any, source: Message) -> str | None:
        """Apply one decoded event; the reason it is refused, if it is."""
        key = self.key_of(event)
        state = self.state(key)
        index = self.index(partition)
        occurred = event.occurred_at.timestamp()
        day = self.local_date(occurred)
        final = index.horizon is not None and day < index.horizon
        if state is None and final:
            self._hand_to_store(partition, key, event)
            return None
        new = self.apply(state, event)
        if new is state:
            return None  # a duplicate
        # An erasure request is never refused for a full history: it only removes data.
        if state is not None and event.type != "applicant_erased":
            full = history_full(state.facts, self.pipeline.settings.max_case_events)
            if full is not None:
                return full
        self.write(partition, key, new)
        self.applied.setdefault(key, []).append(source)
        self._note(index, key, new)
        index.changed.add(key)
        index.since[key] = min(index.since.get(key, occurred), occurred)
        if not final:
            index.dirty_days.add(day)
        if occurred > index.newest_opening_at and event.type in OPENING_KINDS:
            # The horizon follows at the next tick, once the days dirtied until then are
            # published: moved now, it could make a day final before its figures went out.
            index.newest_opening_at = occurred
        return None

    def _hand_to_store(self, partition: int, key: str, event: Any) -> None:
        """An event, dated on a final day, for a key this worker does not hold: of a case
        or ticket already archived (or so late that it would have been). It is not
        started as a live one: its fact goes to the changelog as a state of its own, at
        once followed by the key's tombstone, and the SQL sink adds it to the archived
        state (models/archive.py `with_late_facts`); the live figures stay as they were."""
        late = self.apply(None, event)
        name = orjson.dumps(key)
        self.outbox.add(self.changelog, name, encode_entry(Entry(partition, late)), partition)
        self.outbox.add(self.changelog, name, None, partition)
        self.metrics.count("late_events_for_archived", (self.stream,))

    def on_tick(self, partition: int, now: float) -> None:
        index = self.index(partition)
        woken = [key for key, at in index.wake.items() if at <= now]
        if woken:
            # Time alone changed these, so the figures of the current day change.
            index.dirty_days.add(self.local_date(now))
        for key in index.changed.union(woken):
            state = self.state(key)
            start = min(index.since.pop(key, now), index.wake.get(key, now))
            judged = self.judge(state, start, now)
            self.tally.set(key, judged.measures)
            if judged.state != state:
                self.write(partition, key, judged.state)
            if judged.next_check == math.inf:
                index.wake.pop(key, None)
            else:
                index.wake[key] = judged.next_check
            self._note_settling(index, key, judged.state, judged.next_check)
            for output in judged.derived:
                self.send_derived(output)
        index.changed.clear()
        self._publish(partition, index, now)
        # Then the horizon moves (days final from now on were just published), and what
        # only touches days before it leaves.
        self._move_horizon(index, max(now, index.ticked_at))
        self._archive(partition, index)
        # This worker's own partitions: the table also keeps standby and revoked ones.
        self.metrics.set_gauge("held", (self.stream,), sum(
            len(held.spans) for held in self.indexes.values()))
        self.metrics.tick_handled(self.stream, now, self.pipeline.clock.now())

    def _note_settling(self, index: PartitionIndex, key: str, state: Any,
                       next_check: float) -> None:
        """Whether `key` only waits for its last day to become final to be archived."""
        day = index.settling.pop(key, None)
        if day is not None:
            index.settling_by_day[day].discard(key)
        # Settled on a horizon past every day: all it asks but that last day be final.
        if settled(state.facts, self.closing_kinds, next_check, dt.date.max, self.local_date):
            day = self.local_date(state.facts[-1].at)
            index.settling[key] = day
            index.settling_by_day.setdefault(day, set()).add(key)

    def _archive(self, partition: int, index: PartitionIndex) -> None:
        """Remove from the live state each key whose last day became final: a tombstone in
        the changelog (the SQL sink keeps its last state, marked archived), its metric
        contribution kept in the partition's settled totals (in the archive table)."""
        horizon = index.horizon
        due = [day for day in index.settling_by_day if horizon is not None and day < horizon]
        if not due:
            return
        totals = self.settled_totals[partition]
        series: set[str] = set()
        archived = 0
        for day in due:
            keys = index.settling_by_day.pop(day)
            for key in keys:
                if key in self.unflushed:
                    # Its last state is not in the changelog yet: archived at the next tick.
                    index.settling_by_day.setdefault(day, set()).add(key)
                    continue
                del index.settling[key]
                measures = self.tally.settle(key)
                totals.add(measures)
                series.update(name for name, _, _ in measures)
                self.table.data.pop(key, None)
                index.spans.pop(key, None)
                index.since.pop(key, None)
                self.outbox.add(self.changelog, orjson.dumps(key), None, partition)
                archived += 1
        for name in sorted(series):
            key = f"{self.scope}:{partition}:{name}"
            raw = totals.series_json(name)
            self.archive.data[key] = raw
            self.outbox.add(self.archive_changelog, orjson.dumps(key), raw, partition)
        self.metrics.count("archived", (self.stream,), archived)

    def _publish(self, partition: int, index: PartitionIndex, now: float) -> None:
        calendar = self.pipeline.rules.calendar
        today = self.local_date(now)
        final = index.horizon or dt.date.min
        for day in [day for day in index.published if day < final]:
            del index.published[day]
        for day in sorted(index.dirty_days):
            if day > today:
                continue  # events from the future are judged when their day comes
            if day < final:
                continue  # its figures were sent before it became final; some left since
            period = Period(calendar.start_of_day(day), min(now, calendar.end_of_day(day)))
            states = (
                self.state(key) for key, (first, last) in index.spans.items()
                if first <= day and (last is None or day <= last)
            )
            prefix = f"{self.scope}:".encode()
            suffix = f":{day.isoformat()}:{partition}".encode()
            fresh = {
                prefix + code.encode() + suffix: (code, orjson.dumps(figures.to_json()))
                for code, figures in self.figures(states, period).items()
            }
            published = index.published.setdefault(day, {})
            for key, (code, figures_json) in fresh.items():
                # Sent only when the figures change, not each time the day is judged.
                if published.get(key) != figures_json:
                    value = orjson.dumps({
                        "scope": self.scope, "code": code, "day": day.isoformat(),
                        "partition": partition, "as_of": calendar.isoformat(now),
                        "figures": orjson.Fragment(figures_json),
                    })
                    self.outbox.add(self.pipeline.topics.aggregates.name, key, value)
                    # A right-sized copy: orjson's result holds a buffer of 4 kB or more
                    # (orjson 3.12+), many times these figures, for as long as it is kept.
                    published[key] = bytes(memoryview(figures_json))
            for key in [key for key in published if key not in fresh]:
                self.outbox.add(self.pipeline.topics.aggregates.name, key, None)
                del published[key]
        index.dirty_days = {day for day in index.dirty_days if day > today}

    def send_derived(self, event: DerivedEvent) -> None:
        key = (event.case_id or event.details.get("ticket_id") or "").encode()
        value = orjson.dumps(derived_json(event, self.pipeline.isoformat))
        topics = self.pipeline.topics
        self.metrics.count("derived_events", (event.agency, event.type))
        self.outbox.add(topics.derived_events.name, key, value)
        if event.type in ALERT_KINDS:
            self.outbox.add(topics.alerts.name, event.agency.encode(), value)

    def dead_letter(self, message: Message, reason: str, category: str) -> None:
        self.pipeline.dead_letter(self.outbox, self.stream, message, reason, category)

    async def handle(self, messages: Sequence[Message]) -> None:
        """One batch from the input topic: events are applied in arrival order, changed
        states go to the changelog once, and the batch is done when the broker has every
        record it caused."""
        async with self.busy:
            await self._handle(messages)

    async def _handle(self, messages: Sequence[Message]) -> None:
        rules, types = self.pipeline.rules, self.types
        max_bytes = self.pipeline.settings.max_event_bytes
        processed = 0
        for message in messages:
            partition = message.partition
            self.read_through[partition] = (message.offset + 1, message.timestamp)
            if message.key == OLD_TICK_KEY:
                continue  # written into the input topics by earlier versions; ticks topic now
            processed += 1
            too_large = oversized(len(message.value or b""), max_bytes)
            if too_large is not None:
                self.dead_letter(message, too_large, "too_large")
                continue
            decoded = decode_event(message.value)
            if type(decoded) is Rejection:
                self.dead_letter(message, decoded.reason, "undecodable")
                continue
            reason = None
            if decoded.type not in types:  # type: ignore[union-attr]
                reason = f"a {decoded.type} event does not belong on topic {message.topic}"  # type: ignore[union-attr]
                category = "wrong_topic"
            else:
                reason = rules.check(decoded)  # type: ignore[arg-type]
                category = "rule_check"
            if reason is None and message.key is not None:
                key = self.key_of(decoded)
                if message.key != key.encode():
                    reason = (f"the record key '{message.key.decode(errors='replace')}' is not "
                              f"the event's id '{key}'")
                    category = "key_mismatch"
            if reason is not None:
                self.dead_letter(message, reason, category)
                continue
            refused = self.on_event(partition, decoded, message)
            if refused is not None:
                self.dead_letter(message, refused, "history_full")
        self.flush()
        await self.outbox.flush()
        self.metrics.count("events_processed", (self.stream,), processed)
        self.metrics.publish()

    async def tick(self, instants: Mapping[int, float]) -> None:
        """Judge each partition at its instant (`judging_instant`); done when the broker
        has every record that caused."""
        async with self.busy:
            for partition, at in instants.items():
                self.on_tick(partition, at)
            self.flush()
            await self.outbox.flush()
            self.metrics.publish()

    def judging_instant(self, partition: int, now: float) -> float | None:
        """The instant to judge a partition at, on a tick at `now`: now once every record
        the broker holds for it is applied. Behind, the instant its last applied record
        was produced (its record timestamp), as a tick written into the partition then
        would have been (an event still waiting to be read cannot make a case look late):
        each tick while that is recent, every CATCH_UP_TICK_SECONDS through a backlog; on a
        fixed clock not at all (every record maps to now).
        None when it is not to be judged now. Never earlier than the last judgement."""
        (end, committed), read = self.input_offsets(partition), self.read_through.get(partition)
        if end is not None and end <= max(read[0] if read else 0, committed or 0):
            at = now
        else:
            clock = self.pipeline.clock
            if read is None or clock.fixed:
                return None
            at = min(now, clock.at(read[1]))
            # Records just fetched and not yet applied (a batch being gathered) leave the
            # partition a second or so behind: judged each tick. A backlog of older
            # records: every CATCH_UP_TICK_SECONDS.
            backlog = time.time() - read[1] > CATCH_UP_TICK_SECONDS
            if backlog and (time.monotonic() - self.judged_behind.get(partition, -math.inf)
                            < CATCH_UP_TICK_SECONDS):
                return None
            self.judged_behind[partition] = time.monotonic()
        at = max(at, self.judged_at.get(partition, at))
        self.judged_at[partition] = at
        return at

    def forget(self) -> None:
        """Partitions were revoked: indexes are rebuilt from the table when next needed,
        and with them the metrics' contributions and what was read."""
        self.indexes.clear()
        self.tally.clear()
        self.settled_totals.clear()
        self.read_through.clear()
        self.judged_behind.clear()


class CaseKeeper(Keeper):
    scope = "agency"
    stream = "cases"
    types = CASE_EVENT_TYPES
    closing_kinds = CASE_CLOSING_KINDS

    def key_of(self, event: Any) -> str:
        return str(event.case_id)

    def apply(self, state: CaseState | None, event: Any) -> CaseState:
        return self.pipeline.rules.apply(state, event)[0]

    def judge(self, state: CaseState, start: float, now: float) -> Judgement:
        return judge_case(self.pipeline.rules, state, start, now)

    def figures(self, states: Iterable[CaseState], period: Period) -> dict[str, AgencyFigures]:
        return agency_figures(self.pipeline.rules, states, period)


class TicketKeeper(Keeper):
    scope = "centre"
    stream = "tickets"
    types = QUEUE_EVENT_TYPES
    closing_kinds = TICKET_CLOSING_KINDS

    def key_of(self, event: Any) -> str:
        return str(event.ticket_id)

    def apply(self, state: TicketState | None, event: Any) -> TicketState:
        return self.pipeline.queue_rules.apply(state, event)[0]

    def judge(self, state: TicketState, start: float, now: float) -> Judgement:
        return judge_ticket(self.pipeline.queue_rules, state, start, now)

    def figures(self, states: Iterable[TicketState], period: Period) -> dict[str, CentreFigures]:
        return centre_figures(self.pipeline.queue_rules, states, period)


class Pipeline:
    """The rules, the clock and the output topics shared by the agents."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.rules = CaseRules(load_reference(settings.reference))
        self.queue_rules = QueueRules(self.rules.settings.wait_target_seconds)
        self.topics = topics_for(settings)
        self.partition_counts = {spec.name: spec.partitions for spec in self.topics.all()}
        self.isoformat = self.rules.calendar.isoformat
        self.metrics = WorkerMetrics()
        self._producer: AIOKafkaProducer | None = None
        self._producer_started: asyncio.Lock | None = None
        # The broker keeps each record once when the producer retries a request whose
        # answer was lost (a leader failing over); create_app turns it on except on Tansu,
        # which has no producer ids.
        self.idempotent = False

    async def producer(self) -> AIOKafkaProducer:
        """The producer of every output, started on first use (on the worker's loop).
        Both agents ask at once at start-up; the lock keeps it to one producer."""
        if self._producer_started is None:
            self._producer_started = asyncio.Lock()
        async with self._producer_started:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.settings.bootstrap_servers, acks="all",
                    enable_idempotence=self.idempotent,
                    **self.settings.aiokafka_options(),
                    max_batch_size=1 << 20,
                    request_timeout_ms=int(self.settings.delivery_timeout_seconds * 1000),
                )
                await producer.start()
                self._producer = producer
        return self._producer

    def dead_letter(
        self, outbox: Outbox, stream: str, message: Message, reason: str, category: str
    ) -> None:
        """Contract §7: the rejected record, why, and when, to the dead-letter topic with
        the batch's other outputs; `category` is the reason's label in the metrics, one
        of a closed set."""
        self.metrics.count("dead_letters", (stream, category))
        # At most the largest event's bytes of the original (so that the dead letter fits
        # in a record); the topic, partition and offset find the whole of it.
        record = dead_letter_json(
            None if message.value is None else message.value[:self.settings.max_event_bytes],
            message.topic, message.partition, message.offset, reason,
            self.isoformat(self.clock.now()),
        )
        outbox.add(self.topics.dead_letters.name, message.key, orjson.dumps(record))

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


async def done_or_stop(stream: str, work: Awaitable[None]) -> None:
    """Apply one batch (or judge on a tick), or end the process at once if that raised.

    Faust's `take_events` acknowledges a batch when the agent's loop moves on, raised or
    not, and a restarted agent would go on past it; an exception in the fetcher loop
    (a keeper's batch) would end its task and leave the worker idle in its group; the
    tables also hold states the changelog may not. Ending the process (no clean stop:
    that would commit) leaves the batch unacknowledged, and the restarted worker reads it
    again from the last commit."""
    try:
        await work
    except Exception:
        log.critical(
            "onestop: %s: applying a batch failed; the worker stops without acknowledging "
            "it and reads it again when restarted", stream, exc_info=True)
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)


def input_offsets(app: faust.App, topic: str, partition: int) -> tuple[int | None, int | None]:
    """Of an input partition: its end as this worker's consumer last fetched it (None
    while not known, or not this worker's), and the offset committed for it (Faust's
    `_committed_offset`, faust-streaming 0.15.3: set on assignment and on each commit)."""
    place = TP(topic, partition)
    consumer = app.consumer
    try:
        end: int | None = consumer.highwater(place)
    except (AssertionError, KeyError):  # aiokafka's: not assigned (a rebalance began)
        return None, None
    committed: int | None = consumer._committed_offset.get(place)
    return end, committed


def _topic(app: faust.App, name: str, partitions: int) -> TopicT:
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=partitions, internal=False,
    )


class OnestopApp(faust.App):
    """A Faust app on our transport (streams/transport.py), which on the embedded broker
    also reads end offsets correctly (streams/tansu_compat.py)."""

    tansu = False
    # The ticks topic's name: read without the input topics' strict order (transport.py).
    ticks_topic = ""
    # Of each topic read in batches (transport.py): what applies one fetch's records.
    batch_handlers: dict[str, Any]

    def on_halt(self, reason: str) -> None:
        """The consumer stopped processing for good (streams/transport.py)."""
        log.critical("onestop: %s", reason)
        self.halted(reason)

    def halted(self, reason: str) -> None:
        raise NotImplementedError  # create_app: the pipeline's metrics

    def _new_transport(self) -> Any:
        kind = TansuTransport if self.tansu else Transport
        return kind(self.conf.broker_consumer, self)


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust's form of the Kafka security settings."""
    if settings.uses_sasl:
        return faust.SASLCredentials(
            username=settings.kafka_username, password=settings.kafka_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism, ssl_context=settings.ssl_context())
    if settings.uses_tls:
        return faust.SSLCredentials(settings.ssl_context())
    return None


# Complexity over the limit, on purpose: the worker's wiring, read top to bottom.
def create_app(settings: Settings, clock: Clock | None = None) -> OnestopApp:  # noqa: C901
    """The Faust app of the pipeline, from settings (the Kafka Streams examples' factory:
    tests build their own app with their own settings and clock)."""
    pipeline = Pipeline(settings, clock or parse_clock(settings.clock))
    clock, spec = pipeline.clock, pipeline.topics
    app = OnestopApp(
        settings.app_id,
        broker=settings.broker_url,
        # The keepers hold Entry objects in the table itself: only the in-memory store
        # keeps objects (rocksdb:// would need bytes, and failed every batch).
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        # Faust's own topics (the leader assignor's) get the replicas of ours.
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_seconds,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=max(settings.session_timeout_seconds / 5, 0.5),
        broker_rebalance_timeout=settings.session_timeout_seconds * 2,
        # Only ticks go through Faust's producer (outputs go through Outbox); a little
        # linger lets one tick per partition leave in one request.
        producer_linger=0.02,
        table_cleanup_interval=3600,
        broker_credentials=broker_credentials(settings),
    )
    app.halted = pipeline.metrics.halt  # type: ignore[method-assign]
    app.ticks_topic = spec.ticks.name
    app.batch_handlers = {}
    flavour = settings.broker_flavour
    app.tansu = flavour == "tansu" or (flavour == "auto" and is_tansu(
        settings.bootstrap_servers, **settings.kafka_options()))
    pipeline.idempotent = not app.tansu
    partitions = settings.partitions
    case_topic = _topic(app, spec.case_events.name, partitions)
    queue_topic = _topic(app, spec.queue_events.name, partitions)
    portal_topic = _topic(app, spec.portal_status.name, partitions)

    def table(name: str, changelog_name: str, codec: str = ENTRY_CODEC) -> Any:
        # The store keeps Entry objects; the changelog carries them as compact JSON, and
        # recovery must read them back with the same codec.
        changelog = app.topic(
            changelog_name, key_type=str, key_serializer="json", value_serializer=codec,
            partitions=partitions,
            compacting=True, deleting=False, acks=False, internal=True,
        )
        created = app.Table(name, partitions=partitions, key_type=str, changelog_topic=changelog)
        created.value_serializer = codec
        return created

    archive = table(ARCHIVE_TABLE, spec.archive_changelog.name, "raw")
    cases = CaseKeeper(pipeline, table(CASE_TABLE, spec.case_changelog.name), archive)
    tickets = TicketKeeper(pipeline, table(TICKET_TABLE, spec.ticket_changelog.name), archive)

    portal = PortalBridge(pipeline, Outbox(pipeline, PortalBridge.stream))

    # The input topics are subscribed without an agent: their records go to the keepers
    # in batches, one per fetch (streams/transport.py).
    def batches_to(keeper: CaseKeeper | TicketKeeper) -> Any:
        async def handle(messages: Sequence[Message]) -> None:
            await done_or_stop(keeper.stream, keeper.handle(messages))
        return handle

    for keeper, topic in ((cases, case_topic), (tickets, queue_topic)):
        name = topic.get_topic_name()
        app.topics.add(topic)
        app.batch_handlers[name] = batches_to(keeper)
        keeper.input_offsets = partial(input_offsets, app, name)

    @app.agent(portal_topic, name="portal")
    async def portal_records(stream: Any) -> None:
        async for batch in stream.take_events(settings.batch_size, settings.batch_seconds):
            await done_or_stop(portal.stream, portal.handle([event.message for event in batch]))

    ticks_topic = _topic(app, spec.ticks.name, partitions)

    @app.agent(ticks_topic, name="ticks")
    async def judge_on_time(stream: Any) -> None:
        async for batch in stream.take_events(settings.batch_size, settings.batch_seconds):
            latest: dict[int, float] = {}
            for event in batch:
                try:
                    now = decode_tick(event.message.value)
                except (ValueError, KeyError, TypeError):
                    log.warning("onestop: a record of the ticks topic without a tick instant")
                    continue
                partition = event.message.partition
                latest[partition] = max(now, latest.get(partition, now))
            for keeper in (cases, tickets):
                instants = {partition: at for partition, now in latest.items()
                            if (at := keeper.judging_instant(partition, now)) is not None}
                if instants:
                    await done_or_stop(keeper.stream, keeper.tick(instants))

    @app.timer(settings.tick_seconds, on_leader=True)
    async def tick() -> None:
        value = encode_tick(clock.now())
        for partition in range(partitions):
            await ticks_topic.send(key=b"", value=value, partition=partition)

    @app.task
    async def serve_metrics() -> None:
        if not settings.metrics_port:
            return
        try:
            server = serve(pipeline.metrics, settings.metrics_host, settings.metrics_port,
                           settings.unhealthy_after_seconds)
        except OSError as error:
            # Cases matter more than their metrics: the worker goes on without them.
            log.error("onestop: cannot serve metrics on %s:%s (%s); set ONESTOP_METRICS_PORT",
                      settings.metrics_host, settings.metrics_port, error)
            return
        log.info("onestop: metrics on http://%s:%s/metrics",
                 settings.metrics_host, settings.metrics_port)
        try:
            await asyncio.Event().wait()
        finally:
            server.shutdown()
            server.server_close()

    @app.task
    async def tasks_on_signal() -> None:
        # `kill -USR1 <worker pid>` writes every task's stack to the log: what a worker
        # that has stopped moving is waiting for.
        def dump() -> None:
            for task in asyncio.all_tasks():
                chain, awaited = [], task.get_coro()
                while awaited is not None and len(chain) < 30:
                    frame = getattr(awaited, "cr_frame", None) or getattr(
                        awaited, "ag_frame", None)
                    if frame is None:
                        chain.append(type(awaited).__name__)
                        break
                    chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
                    awaited = getattr(awaited, "cr_await", None) or getattr(
                        awaited, "ag_await", None)
                log.warning("onestop: task %s: %s", task.get_name(), " → ".join(chain))
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)

    @app.task
    async def stop_outbox() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await pipeline.stop()

    @app.on_partitions_revoked.connect
    async def forget(app: Any, revoked: Any, **kwargs: Any) -> None:
        cases.forget()
        tickets.forget()

    @app.on_partitions_assigned.connect
    async def assigned(app: Any, assigned: Any, **kwargs: Any) -> None:
        mine = sorted(tp.partition for tp in assigned if tp.topic == case_topic.get_topic_name())
        log.info("onestop: case partitions assigned to this worker: %s", mine)

    return app


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run one worker in the foreground until it is stopped (SIGTERM or Ctrl-C)."""
    from faust.worker import Worker

    Worker(create_app(settings), loglevel=loglevel, quiet=True).execute_from_commandline()
