"""Faust's aiokafka transport with two fixes to what a worker commits after a rebalance.

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

2. Each acknowledged offset counts once when the next commit is worked out. Faust's
recovery resumes the input partitions and only then seeks them to their commit, while its
fetcher runs: records fetched in between are delivered, the rest of that fetch then looks
like a gap after the commit, and Faust adds the gap's offsets to the acknowledged ones
although the stream acknowledges the same records too. With every offset listed twice,
Faust's run of consecutive offsets ends after one or two, so the commit moved one offset
per commit: a restarted worker's partitions crept ~30 records a minute behind what it had
processed (the worker-kill test's "stall", reproduced with six kills in a row on Tansu).

Written against faust-streaming 0.15.3 and aiokafka 0.14.0 (pinned in pyproject.toml)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


async def seek_to_committed(consumer: Any, changelogs: Collection[str]) -> Mapping[Any, Any]:
    """Seek each assigned partition to its committed offset, or to its beginning when it
    has none; the committed offsets, as aiokafka's `seek_to_committed` returns them.
    Changelog partitions are left to Faust's recovery, which positions them itself."""
    committed = await consumer.seek_to_committed()
    never = [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]
    if never:
        await consumer.seek_to_beginning(*never)
    return dict(committed)


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Mapping[TP, int]:
        changelogs = self.consumer.app.tables.changelog_topics
        return await seek_to_committed(self._ensure_consumer(), changelogs)


class Consumer(faust_aiokafka.Consumer):
    thread_class: type[ConsumerThread] = ConsumerThread

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit for `tp`: the end of the run of acknowledged offsets (gaps
        included) that starts at the last commit; None while its first record is not
        acknowledged. Faust 0.15.3's `Consumer._new_offset`, with the offsets as a set,
        and without its allowance of one unacknowledged record at the commit (it compares
        with the commit as if that were the last record read, not the next to read)."""
        acked = self._acked[tp]
        if not acked:
            return None
        done = set(acked)
        gap = self._gap[tp]
        if gap:
            for interval in gap.overlap(0, max(done)):
                done.update(range(interval.begin, interval.end))
            gap.chop(0, max(done) + 1)
        ordered = sorted(done)
        committed = self._committed_offset[tp]
        if committed is not None and ordered[0] > committed:
            acked[:] = ordered
            return None
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
