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


def test_the_fetcher_reads_an_input_partition_strictly_in_order() -> None:
    """A fetch made before a seek delivers 60 and 61 after it: they wait for 54-59."""
    delivered: list[int] = []
    sought: list[int] = []

    async def drain_one_fetch() -> Any:
        consumer = create_app(SETTINGS).consumer  # on this loop, as the worker's is
        consumer._read_offset[tp] = 52

        async def deliver(message: Any) -> None:
            delivered.append(message.offset)

        async def seek(partition: TP, offset: int) -> None:
            sought.append(offset)

        async def getmany(timeout: float) -> Any:
            for offset in (51, 52, 53, 60, 61):
                yield tp, SimpleNamespace(offset=offset, topic=tp.topic)
            consumer._stopped.set()  # one fetch, then the loop ends

        consumer.callback, consumer._seek, consumer.getmany = deliver, seek, getmany
        consumer.app.topics.acks_enabled_for = lambda topic: True
        fetcher = SimpleNamespace(_stopped=SimpleNamespace(is_set=lambda: False))
        await asyncio.wait_for(consumer._drain_messages(fetcher), timeout=10)
        return consumer

    consumer = asyncio.run(drain_one_fetch())
    assert delivered == [52, 53]  # 51 was read already
    assert sought == [54]  # once, not once per early record
    assert consumer._read_offset[tp] == 54
