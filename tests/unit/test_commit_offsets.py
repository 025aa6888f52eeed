"""The offset the worker commits after Faust's recovery seek raced its fetcher
(streams/transport.py): every acknowledged record counts once, so the commit reaches the
end of what was acknowledged in one step instead of one offset per commit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import TP

from streams.app import create_app
from streams.settings import Settings

SETTINGS = Settings(broker_url="kafka://127.0.0.1:1", broker_flavour="kafka", metrics_port=0)
tp = TP(f"{SETTINGS.topic_prefix}.case-events", 0)


@pytest.fixture
def consumer() -> Any:
    """The worker's consumer, never started: only its bookkeeping is used."""
    return create_app(SETTINGS).consumer


def test_records_acknowledged_twice_do_not_hold_back_the_commit(consumer: Any) -> None:
    # As in a restarted worker's log: the fetcher delivered records 52..60 while the
    # recovery sought the partition back to its commit (52); the rest of that fetch then
    # looked like a gap after 52, which Faust counts as acknowledged, and the stream
    # acknowledged the records it had been given as well.
    consumer._committed_offset[tp] = 52
    consumer._read_offset[tp] = 52
    asyncio.run(consumer._add_gap(tp, 53, 60))
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
