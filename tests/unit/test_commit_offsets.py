"""The offset the worker commits after Faust's recovery seek raced its fetcher
(streams/transport.py): every acknowledged record counts once, so the commit reaches the
end of what was acknowledged in one step instead of one offset per commit."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from onestop.common.settings import Settings
from onestop.streams.app import create_app

SETTINGS = Settings(broker_url="kafka://127.0.0.1:1", broker_flavour="kafka", metrics_port=0)
tp = TP(f"{SETTINGS.topic_prefix}.case-events", 0)
# A topic that goes through Faust's streams (the portal's records), not in batches.
portal_tp = TP(f"{SETTINGS.topic_prefix}.portal-status", 0)


@pytest.fixture
def consumer() -> Any:
    """The worker's consumer, never started: only its bookkeeping is used."""
    return create_app(SETTINGS).consumer


def test_records_acknowledged_twice_do_not_hold_back_the_commit(consumer: Any) -> None:
    # As in a restarted worker's state dump under Faust's own fetcher loop: records
    # 52..60 listed as acknowledged twice (once as a gap, once by the stream).
    consumer._committed_offset[tp] = 52
    consumer._acked[tp].extend(range(52, 61))
    consumer._acked[tp].extend(range(52, 61))
    consumer._acked_index[tp].update(range(52, 61))

    assert consumer._new_offset(tp) == 61
    assert consumer._acked[tp] == []


def test_an_unacknowledged_record_at_the_commit_holds_the_commit(consumer: Any) -> None:
    consumer._committed_offset[tp] = 52
    consumer._acked[tp].extend([53, 54])  # 52 is still being applied
    consumer._acked_index[tp].update([53, 54])

    assert consumer._new_offset(tp) is None  # Faust 0.15.3 alone commits 55, past 52
    consumer._acked[tp].append(52)
    consumer._acked_index[tp].add(52)
    assert consumer._new_offset(tp) == 55


def test_input_partitions_are_paused_while_they_are_sought_to_their_commit(
    consumer: Any,
) -> None:
    changelog = TP(f"{SETTINGS.app_id}-cases-changelog", 0)
    assigned = {tp, changelog}
    consumer.assignment = lambda: assigned
    consumer.app.tables.changelog_topics.add(changelog.topic)
    consumer.resume_partitions(assigned)  # as Faust's recovery does before seeking
    active_while_seeking: list[set[TP]] = []

    async def seek_to_committed() -> dict[TP, int]:
        active_while_seeking.append(set(consumer._get_active_partitions()))
        return {tp: 52}

    consumer.seek_to_committed = seek_to_committed
    asyncio.run(consumer.perform_seek())

    assert active_while_seeking == [{changelog}]  # the fetcher delivers no input record
    assert tp in consumer._get_active_partitions()
    assert (consumer._read_offset[tp], consumer._committed_offset[tp]) == (52, 52)


def drain_one_fetch(offsets: list[int], handled: list[int], delivered: list[int],
                    sought: list[int], fail: bool = False, rebalance: bool = False,
                    assigned: frozenset[TP] = frozenset({tp, portal_tp})) -> Any:
    """Run the worker consumer's fetcher loop over one fetch: `offsets` of the portal
    topic (Faust's streams) and of case-events (in batches), the read offset of both at
    52. The case-events handler records what it was given, or raises; `rebalance`: a
    rebalance begins (flow stops) as the fetch ends; `assigned`: this worker's partitions
    when the batch is handled."""

    async def drain() -> Any:
        consumer = create_app(SETTINGS).consumer  # on this loop, as the worker's is
        consumer._read_offset[tp] = consumer._read_offset[portal_tp] = 52

        async def deliver(message: Any) -> None:
            delivered.append(message.offset)

        async def handle(messages: list[Any]) -> None:
            if fail:
                raise RuntimeError("applying the batch failed")
            handled.extend(message.offset for message in messages)

        async def seek(partition: TP, offset: int) -> None:
            sought.append(offset)

        async def getmany(timeout: float) -> Any:
            for offset in offsets:
                for where in (portal_tp, tp):
                    yield where, SimpleNamespace(offset=offset, topic=where.topic, tp=where,
                                                 timestamp=1000.0 + offset)
            consumer._stopped.set()  # one fetch, then the loop ends
            if rebalance:
                consumer.stop_flow()

        consumer.callback, consumer._seek, consumer.getmany = deliver, seek, getmany
        consumer.assignment = lambda: assigned
        consumer.app.batch_handlers = {tp.topic: handle}
        fetcher = SimpleNamespace(_stopped=SimpleNamespace(is_set=lambda: False))
        try:
            await asyncio.wait_for(consumer._drain_messages(fetcher), timeout=10)
        finally:
            consumer._committed_offset[tp] = 52
        return consumer

    return asyncio.run(drain())


def test_the_fetcher_reads_an_input_partition_strictly_in_order() -> None:
    """A fetch made before a seek delivers 60 and 61 after it: they wait for 54-59."""
    delivered: list[int] = []
    handled: list[int] = []
    sought: list[int] = []
    consumer = drain_one_fetch([51, 52, 53, 60, 61], handled, delivered, sought)

    assert delivered == [52, 53]  # 51 was read already
    assert handled == [52, 53]  # the same, in one batch
    assert sought == [54, 54]  # once per partition, not once per early record
    assert consumer._read_offset[portal_tp] == consumer._read_offset[tp] == 54


def test_a_handled_batch_is_committed_to_its_end() -> None:
    handled: list[int] = []
    consumer = drain_one_fetch([52, 53, 54], handled, [], [])

    assert handled == [52, 53, 54]
    assert list(consumer._filter_tps_with_pending_acks()) == [tp]
    assert consumer._new_offset(tp) == 55


def test_a_batch_whose_handling_raised_is_not_committed() -> None:
    with pytest.raises(RuntimeError, match="applying the batch failed"):
        drain_one_fetch([52, 53, 54], [], [], [], fail=True)


def test_a_batch_cut_short_by_a_rebalance_is_not_committed() -> None:
    """Flow stops (a rebalance began) after the fetch: the batch is not handled, and
    nothing moves the commit; its records are read again after the rebalance."""
    handled: list[int] = []
    consumer = drain_one_fetch([52, 53], handled, [], [], rebalance=True)

    assert handled == []
    assert consumer._new_offset(tp) is None
    assert consumer._read_offset[tp] == 52  # expected again, not skipped


def test_a_batch_of_a_partition_no_longer_assigned_is_not_applied() -> None:
    """A whole rebalance went by while the fetch was gathered: the partition is another
    worker's now, and its records are not applied here."""
    handled: list[int] = []
    consumer = drain_one_fetch([52, 53], handled, [], [], assigned=frozenset({portal_tp}))

    assert handled == []
    assert consumer._new_offset(tp) is None


def test_a_revoked_partition_s_handled_end_is_not_committed_when_it_comes_back(
    consumer: Any,
) -> None:
    """Handled to 100 here, revoked, taken further by another worker, assigned here
    again: before the seek reads the group's commit, no commit of 100 over it."""
    consumer._handled[tp] = 100
    asyncio.run(consumer.on_partitions_revoked({tp}))
    consumer._committed_offset.pop(tp, None)  # as after a new assignment, before the seek

    assert tp not in set(consumer._filter_tps_with_pending_acks())
    assert consumer._new_offset(tp) is None
