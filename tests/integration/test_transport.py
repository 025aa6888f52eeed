"""The transport's fix (streams/transport.py): after a rebalance, a partition the group
has never committed is read again from its beginning, as a committed one is from its
commit, so that records Faust fetched and cleared during the rebalance are not lost."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from kafka import KafkaProducer

from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.streams.transport import seek_to_committed

pytestmark = pytest.mark.integration


def test_partitions_are_sought_back_to_their_commit_or_else_their_beginning(
    settings: Settings,
) -> None:
    topic = topics_for(settings).case_events.name
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers,
                             **settings.kafka_options())
    for partition in (0, 1):
        for number in range(10):
            producer.send(topic, key=b"k", value=b"%d" % number, partition=partition)
    producer.flush()
    producer.close()
    never, done = TopicPartition(topic, 0), TopicPartition(topic, 1)

    async def positions_after_seeking() -> tuple[dict[TopicPartition, int], dict[str, int]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers, group_id=settings.app_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            **settings.aiokafka_options())
        consumer.assign([never, done])
        await consumer.start()
        try:
            await consumer.commit({done: OffsetAndMetadata(4, "")})
            read = 0
            while read < 16:  # all of partition 0, and partition 1 from its commit
                batches = await consumer.getmany(timeout_ms=1000)
                read += sum(len(records) for records in batches.values())
            committed = await seek_to_committed(consumer, changelogs=())
            return committed, {"never": await consumer.position(never),
                               "done": await consumer.position(done)}
        finally:
            await consumer.stop()

    committed, positions = asyncio.run(positions_after_seeking())
    assert committed == {never: 0, done: 4}
    assert positions == {"never": 0, "done": 4}
