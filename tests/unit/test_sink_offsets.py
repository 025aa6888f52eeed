"""The sink's lost-records rules, on a stand-in consumer and store: when the broker's
offsets say it lost records the store was written from, and when they do not."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import NoOffsetForPartitionError, OffsetOutOfRangeError

from onestop.consumers.sink import BrokerLostRecords, Sink

PLACE = TopicPartition("t.derived-events", 0)


class Consumer:
    """What the sink asks of kafka-python's consumer, answered from fixed figures."""

    def __init__(self, fails: Exception | None = None, start: int = 0,
                 highwater: int | None = None) -> None:
        self.fails, self.start, self.end = fails, start, highwater
        self.seeks: list[tuple[TopicPartition, int | None]] = []

    def poll(self, **_: Any) -> dict[TopicPartition, list[Any]]:
        if self.fails is not None:
            fails, self.fails = self.fails, None
            raise fails
        return {}

    def beginning_offsets(self, places: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {place: self.start for place in places}

    def seek(self, place: TopicPartition, offset: int) -> None:
        self.seeks.append((place, offset))

    def seek_to_beginning(self, place: TopicPartition) -> None:
        self.seeks.append((place, None))

    def assignment(self) -> set[TopicPartition]:
        return {PLACE}

    def highwater(self, _place: TopicPartition) -> int | None:
        return self.end


class StoreWithRows:
    def __init__(self, highest: dict[int, int]) -> None:
        self.highest = highest

    def highest_offsets(self, _tables: Any) -> dict[int, int]:
        return self.highest


def sink_with(consumer: Consumer, highest: dict[int, int]) -> Sink:
    sink = Sink.__new__(Sink)  # no broker: the parts the rules use
    sink.consumer, sink.store = consumer, StoreWithRows(highest)  # type: ignore[assignment]
    sink.tables, sink.unchecked, sink.max_records = {PLACE.topic: []}, set(), 10
    sink.stored = Counter()
    return sink


def test_a_position_beyond_the_end_of_the_log_is_records_lost() -> None:
    sink = sink_with(Consumer(OffsetOutOfRangeError({PLACE: 500})), {0: 499})
    with pytest.raises(BrokerLostRecords, match="offset 500, which the broker says is beyond"):
        sink.poll_once()


def test_a_position_below_the_start_of_the_log_is_retention_and_reads_on() -> None:
    """A sink stopped longer than the topic's retention: those records are gone by the
    topic's own rule, not lost by the broker."""
    consumer = Consumer(OffsetOutOfRangeError({PLACE: 5}), start=80)
    sink = sink_with(consumer, {0: 4})
    assert sink.poll_once() == 0
    assert consumer.seeks == [(PLACE, 80)]


def test_a_partition_without_a_commit_is_read_from_the_start_and_checked() -> None:
    consumer = Consumer(NoOffsetForPartitionError({PLACE}))
    sink = sink_with(consumer, {0: 12})
    assert sink.poll_once() == 0
    assert consumer.seeks == [(PLACE, None)] and sink.unchecked == {PLACE}


@pytest.mark.parametrize(("highwater", "stored", "lost"), [
    (12, {0: 12}, True),    # the store holds offset 12, the broker ends before it
    (3, {0: 12}, True),
    (13, {0: 12}, False),   # a sink that died before its first commit reads it all again
    (0, {}, False),          # nothing stored from this partition yet
    (0, {1: 40}, False),     # only from another partition
])
def test_a_high_watermark_at_or_below_what_the_store_holds_is_records_lost(
    highwater: int, stored: dict[int, int], lost: bool,
) -> None:
    sink = sink_with(Consumer(highwater=highwater), stored)
    sink.unchecked.add(PLACE)
    if lost:
        with pytest.raises(BrokerLostRecords, match=f"ends at offset {highwater}"):
            sink.poll_once()
    else:
        assert sink.poll_once() == 0
        assert sink.unchecked == set()


def test_a_high_watermark_not_yet_known_is_checked_later() -> None:
    sink = sink_with(Consumer(highwater=None), {0: 12})
    sink.unchecked.add(PLACE)
    assert sink.poll_once() == 0
    assert sink.unchecked == {PLACE}
