"""Faust's aiokafka transport with four fixes to what a worker commits after a rebalance.

1. Partitions the group has never committed are sought back to their beginning, as the
committed ones are sought back to their commit.

After an assignment, Faust's recovery clears the records its consumer fetched while the
rebalance went on and then "seeks stream partitions to committed offsets" to read them
again. aiokafka's `seek_to_committed` seeks only partitions whose committed offset is
above 0, so a partition with no commit yet keeps its fetch position past the cleared
records: they are never processed, and the next commit skips them for good. On Apache
Kafka, the first events of a new pipeline's partitions went missing so in about one run
in five of two workers starting together (tests/integration: the two-workers test and
test_rebalance_seek). The consumer's offset reset policy is `earliest`, so the beginning is
where such a partition's first reading starts anyway.

2. The input partitions stay paused while they are sought to their commit. Faust's
recovery resumes them first and seeks after, while its fetcher runs: records fetched in
between were delivered, the rest of that fetch then looked like a gap after the commit,
and Faust added the gap's offsets to the acknowledged ones although the stream
acknowledged the same records too. With every offset listed twice, Faust's run of
consecutive offsets ended after one or two, so the commit moved one offset per commit: a
restarted worker's partitions crept ~30 records a minute behind what it had processed
(the worker-kill test's "stall", reproduced with six kills in a row on Tansu).

3. Each acknowledged offset counts once when the next commit is worked out, and the
commit never passes a record that is not acknowledged (Faust allows one); a commit held
by one record is logged every 30 s.

4. Each input partition is read strictly in order (the fetcher loop, overridden): a record
that arrives before the one expected makes the partition seek back, where Faust counted
the skipped offsets as acknowledged and committed past records never applied (62 of them
in one restarted worker of the combined fault tests on Apache Kafka).

And one change of path: the records of the topics in `app.batch_handlers` (the case and
queue events) skip Faust's streams. Each fetch's records of such a topic go to its handler
as one list, and the commit may move past them once the handler has returned, i.e. once
the broker has everything they caused. Faust's per-message path (a conductor lookup, a
stream queue, `wait_first` with four tasks, an acknowledgement under a lock, per record)
cost more than the rules themselves: the worker ran at 6,000 events/s against Quix
Streams' 60,000 on the same machine (issue 15). Group membership, rebalances, tables,
their changelogs and recovery, and offset commits stay Faust's; so do the ticks, whose
agent takes the keeper's lock between two batches.

Written against faust-streaming 0.15.3 and aiokafka 0.14.0 (pinned in pyproject.toml)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

log = logging.getLogger("onestop")
# How often a partition whose commit waits for one record says so.
HELD_LOG_SECONDS = 30.0
# How long an input partition may have records to read past the one expected, none of
# them delivered, before it is sought back to that record (`_check_partitions`).
STALLED_SECONDS = 15.0

# Applies one fetch's records of a topic, in order per partition; returns once everything
# they caused is delivered.
BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]


async def seek_to_committed(consumer: Any, changelogs: Collection[str]) -> Mapping[Any, Any]:
    """Seek each assigned partition to its committed offset, or to its beginning when it
    has none; where each now reads from (aiokafka's `seek_to_committed` gives None for a
    partition without a commit; here it is its beginning, so that the fetcher knows the
    first offset to expect). Changelog partitions are left to Faust's recovery, which
    positions them itself."""
    committed = dict(await consumer.seek_to_committed())
    never = [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]
    if never:
        await consumer.seek_to_beginning(*never)
        for tp in never:
            committed[tp] = await consumer.position(tp)
    return committed


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Mapping[TP, int]:
        changelogs = self.consumer.app.tables.changelog_topics
        return await seek_to_committed(self._ensure_consumer(), changelogs)


class Consumer(faust_aiokafka.Consumer):
    thread_class: type[ConsumerThread] = ConsumerThread

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per partition: since when its commit waits for the record at the commit, and
        # when that was last logged.
        self._held_since: dict[TP, tuple[float, float]] = {}
        # Set when the worker must stop processing (`_halt`); it stays in its group.
        self._halted = False
        # Per partition, the last offset the broker confirmed as committed by this process
        # (Faust's `_committed_offset` moves on even when a commit failed).
        self._confirmed_commit: dict[TP, int] = {}
        self._ends_checked = 0.0
        # Per input partition, when (monotonic) a record of it was last delivered, or it
        # was last sought: what `_check_partitions` measures a stall from.
        self._delivered_at: dict[TP, float] = {}
        # Of each partition read in batches: the offset after the last record its handler
        # finished, where the next commit may move to.
        self._handled: dict[TP, int] = {}
        # Clear while a handler runs: a rebalance waits for it before it commits.
        self._batch_idle = asyncio.Event()
        self._batch_idle.set()

    async def perform_seek(self) -> None:
        """Faust's seek of every partition to its commit, with the input partitions
        paused meanwhile. Faust's recovery resumes them first and seeks after, while its
        fetcher runs: the rest of a fetch made in between was delivered after the seek,
        and the same records fetched again from the commit were dropped as already read.
        Paused, the fetcher delivers none of their records until the seek is done."""
        inputs = {tp for tp in self.assignment() if not self._is_changelog_tp(tp)}
        paused_before = self._paused_partitions & inputs
        self.pause_partitions(inputs)
        before = {tp: offset for tp, offset in self._confirmed_commit.items() if tp in inputs}
        self._delivered_at.clear()  # each partition's stall is measured from its seek
        # Kept for the partitions still assigned: what was handled past their commit had
        # its effects delivered, and Faust also seeks while a revocation waits to commit.
        assigned = self.assignment()
        self._handled = {tp: end for tp, end in self._handled.items() if tp in assigned}
        try:
            await super().perform_seek()
        finally:
            self.resume_partitions(inputs - paused_before)
        went_back = {tp: (offset, self._committed_offset[tp] or 0)
                     for tp, offset in before.items()
                     if tp in self.assignment() and (self._committed_offset[tp] or 0) < offset}
        if went_back:
            self._halt("the committed offsets went back while this worker ran (" + ", ".join(
                f"{tp.topic}[{tp.partition}] {old} → {new}"
                for tp, (old, new) in sorted(went_back.items())) + ")")

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        committed: bool = await super()._commit(offsets)
        if committed:
            self._confirmed_commit.update(offsets)
        return committed

    async def _check_partitions(self) -> None:
        """Once a second, for each input partition this worker reads:

        Halt if the broker's end is below the offset this worker has read up to: a log
        never gets shorter on a broker that kept its records. (An embedded broker
        restarted under a worker may keep its members and never rebalance, and the
        consumer, its position now out of range, reads again from the start: records this
        worker would take for already read, and drop.)

        Seek back to the record expected if records wait past it and none was delivered
        for STALLED_SECONDS. Faust drops the rest of a fetch when a rebalance or a recovery
        pause cuts its delivery short, while the fetcher's position has moved past it;
        the next record to arrive shows the gap and the loop below seeks back, but with
        nothing more arriving the partition would wait for ever (a restarted worker with
        its backlog fetched once: caught in test_faults, the position at the end, the
        records expected from the commit)."""
        now = time.monotonic()
        for tp in self._get_active_partitions():
            if not self._gaps_are_losses(tp):
                continue
            try:
                high = self.highwater(tp)
            except AssertionError:  # aiokafka's: no longer assigned (a rebalance began)
                continue
            expected = self._read_offset[tp]
            if high is None or expected is None:
                continue
            if expected and high < expected:
                self._halt(f"the broker's end of {tp.topic}[{tp.partition}] is offset {high}, "
                           f"below the {expected} records this worker has read from it")
                return
            since = self._delivered_at.setdefault(tp, now)
            if high > expected and now - since > STALLED_SECONDS and self.flow_active:
                log.warning("onestop: %s[%d]: %d records wait from offset %d and none was "
                            "delivered for %.0f s; reading again from %d", tp.topic,
                            tp.partition, high - expected, expected, now - since, expected)
                await self.seek(tp, expected)
                self._read_offset[tp] = expected  # Faust's seek forgets an offset 0
                self._delivered_at[tp] = now

    def _gaps_are_losses(self, tp: TP) -> bool:
        """Whether records missing between two offsets of `tp` would be records lost: of
        the input topics, yes. Changelogs are compacted: their gaps are real. Ticks the
        topic's retention deleted (a worker down for over an hour) are gone for good, and
        new ones come each second: each tick stands alone."""
        return not self._is_changelog_tp(tp) and tp.topic != self.app.ticks_topic

    def _halt(self, what: str) -> None:
        """The broker no longer holds what this worker has read: it lost its records (an
        embedded broker restarted: it keeps nothing), a topic was recreated, or someone
        reset the group. The tables here hold states built from records the broker no
        longer has, so the worker stops processing (it stays in its group, so that no
        other worker takes the partitions on the same wrong footing) and says what to do."""
        self._halted = True
        self.app.on_halt(
            f"{what}: the broker lost its records (the embedded broker keeps nothing across "
            "a restart), a topic was recreated or the consumer group was reset. This "
            "worker's state no longer matches the broker, so it has stopped processing. "
            "Restart it to rebuild its state from what the broker holds; if the input events "
            "were lost, ingest them again, and run `onestop reprocess` so that the SQL store "
            "follows")

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Faust's revocation (which commits what was handled), then the handled ends of
        the revoked partitions are forgotten: another worker may take them further, and
        should one come back to this worker, an end kept from before would be committed
        over that worker's commit before the seek reads the group's commit again."""
        await super().on_partitions_revoked(revoked)
        for tp in revoked:
            self._handled.pop(tp, None)

    async def wait_empty(self) -> None:
        """Faust's wait for the records being processed before a rebalance's commit, and
        first for the batch being handled."""
        await self._batch_idle.wait()
        await super().wait_empty()

    async def _handle_batches(self, handlers: Mapping[str, BatchHandler],
                              batches: Mapping[str, list[Any]]) -> None:
        """Hand one fetch's records to their topics' handlers; the commit may then move
        past them. A rebalance that began meanwhile leaves the rest unhandled: they are
        expected again (a partition still assigned reads them again, as after a gap: the
        next record to arrive, or `_check_partitions`, seeks back; a new assignment seeks
        to the commit)."""
        self._batch_idle.clear()
        inbound = self.app.monitor.stream_inbound_time
        try:
            for topic, messages in batches.items():
                if not self.flow_active:
                    self._expect_again(messages)
                    continue
                # A whole rebalance may have come and gone while the fetch was gathered:
                # records of a partition no longer this worker's are not applied.
                assigned = self.assignment()
                mine = [message for message in messages if message.tp in assigned]
                if not mine:
                    continue
                await handlers[topic](mine)
                ends = {message.tp: message.offset + 1 for message in mine}
                self._handled.update(ends)
                # What Faust's stream would note: its check for idle streams (after 5
                # minutes) would otherwise log these partitions as stuck.
                inbound.update(dict.fromkeys(ends, time.monotonic()))
        finally:
            self._batch_idle.set()

    def _expect_again(self, messages: Sequence[Any]) -> None:
        """Records gathered and not handled: each partition's next record expected is
        again the first of them."""
        assigned = self.assignment()
        for message in reversed(messages):
            if message.tp in assigned:
                self._read_offset[message.tp] = message.offset

    # Complexity over the limit, on purpose: Faust 0.15.3's loop, kept close to its original.
    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - a loop  # noqa: C901
        """Faust 0.15.3's fetcher loop (`Consumer._drain_messages`), reading each input
        partition strictly in order.

        `_read_offset[tp]` is the next offset expected (what a seek sets). A record below
        it was delivered already and is dropped. A record above it means records were
        skipped (a fetch made before a seek, finishing after it): Faust counted the skipped
        offsets as acknowledged and delivered the record, so a commit could pass records
        never applied; here the partition is sought back to the offset expected and the
        record waits for its turn. A record counts as delivered only if the stream took it
        (Faust advanced the read offset even when a rebalance cut the delivery short).
        The records of topics with a batch handler are gathered per fetch and handled
        after it (`_handle_batches`)."""
        callback = self.callback
        handlers: Mapping[str, BatchHandler] = self.app.batch_handlers
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        expected = self._read_offset
        commit_every = self._commit_every
        gaps_are_losses = self._gaps_are_losses
        sought: dict[TP, int] = {}
        delivered_at = self._delivered_at
        since_yield = 0
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                if self._halted:
                    await self.sleep(1.0)
                    continue
                if time.monotonic() - self._ends_checked >= 1.0:
                    self._ends_checked = time.monotonic()
                    await self._check_partitions()
                    continue
                self.diag.set_flag(CONSUMER_FETCHING)
                records = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                batches: dict[str, list[Any]] = {}
                async for tp, message in records:
                    since_yield += 1
                    if since_yield > 100:
                        await asyncio.sleep(0)
                        since_yield = 0
                    offset, next_offset = message.offset, expected[tp]
                    if next_offset is not None and offset < next_offset:
                        continue  # delivered already
                    if (next_offset is not None and offset > next_offset
                            and gaps_are_losses(tp)):
                        if sought.get(tp) != next_offset:
                            sought[tp] = next_offset
                            log.warning("onestop: %s[%d]: record %d arrived before %d; "
                                        "reading again from %d", tp.topic, tp.partition,
                                        offset, next_offset, next_offset)
                            await self.seek(tp, next_offset)
                            expected[tp] = next_offset  # Faust's seek forgets an offset 0
                            delivered_at[tp] = time.monotonic()
                        continue
                    sought.pop(tp, None)
                    if message.topic in handlers:
                        batches.setdefault(message.topic, []).append(message)
                        expected[tp] = offset + 1
                        delivered_at[tp] = time.monotonic()
                        continue
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    delivery = callback(message)
                    outcome = await self.wait_first(delivery, self.suspend_flow.wait())
                    if delivery in outcome.done:
                        expected[tp] = offset + 1
                        delivered_at[tp] = time.monotonic()
                if batches:
                    await self._handle_batches(handlers, batches)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    def _note_held(self, tp: TP, committed: int, acked: list[int]) -> None:
        """Say, once a minute, that a partition's commit waits for an unacknowledged
        record while later ones are acknowledged: the worker is not moving past it."""
        now = time.monotonic()
        since, logged = self._held_since.setdefault(tp, (now, now))
        if now - logged >= HELD_LOG_SECONDS:
            self._held_since[tp] = (since, now)
            log.warning("onestop: %s[%d]: the commit has waited %.0f s for the record at "
                        "offset %d; %d later records are acknowledged (from %d)",
                        tp.topic, tp.partition, now - since, committed, len(acked), acked[0])

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        """Faust's partitions with acknowledged records, and those with handled batches."""
        yield from super()._filter_tps_with_pending_acks(topics)
        for tp in list(self._handled):
            if tp not in self._acked and (topics is None or tp in topics or tp.topic in topics):
                yield tp

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit for `tp`: the end of the run of acknowledged offsets that
        starts at the last commit; None while its first record is not acknowledged.
        Faust 0.15.3's `Consumer._new_offset`, with the offsets as a set, without its
        allowance of one unacknowledged record at the commit (it compares with the commit
        as if that were the last record read, not the next to read), and without gaps:
        the fetcher loop above never records one (`_add_gap` is Faust's loop's alone).
        A partition read in batches commits the end of its last handled batch."""
        handled = self._handled.get(tp)
        if handled is not None:
            committed = self._committed_offset[tp]
            return handled if committed is None or handled > committed else None
        acked = self._acked[tp]
        if not acked:
            return None
        done = set(acked)
        ordered = sorted(done)
        committed = self._committed_offset[tp]
        if tp.topic == self.app.ticks_topic and committed is not None and ordered[0] > committed:
            committed = ordered[0]  # ticks deleted by retention: each tick stands alone
        if committed is not None and ordered[0] > committed:
            acked[:] = ordered
            self._note_held(tp, committed, ordered)
            return None
        self._held_since.pop(tp, None)
        end = ordered[0]
        while end + 1 in done:
            end += 1
        acked[:] = [offset for offset in ordered if offset > end]
        self._acked_index[tp].difference_update(range(ordered[0], end + 1))
        return end + 1

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return self.thread_class(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
