"""The end-offset work-around for Tansu: the broker's ListOffsets answer is short by up
to one batch, the fetched high watermark is exact."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP
from kafka import KafkaProducer

from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.streams.tansu_compat import fetched_high_watermarks, is_tansu, read_to_end

pytestmark = pytest.mark.integration


def produce_one_batch(settings: Settings, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=200)
    for number in range(count):
        producer.send(topic, key=b"k", value=b"%d" % number, partition=0)
    producer.flush()
    producer.close()


async def listed_end(settings: Settings, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


def test_end_offsets_come_from_the_fetched_high_watermark(settings: Settings) -> None:
    topic = topics_for(settings).dead_letters.name  # one partition, empty
    produce_one_batch(settings, topic, 3)
    produce_one_batch(settings, topic, 10)  # the last batch: offsets 3..12
    listed = asyncio.run(listed_end(settings, topic))
    if is_tansu(settings.bootstrap_servers):
        # The fault the work-around exists for; if Tansu fixes it, this says so.
        assert listed == 4, "Tansu's ListOffsets is right now: the work-around can go"
    else:
        assert listed == 13
    fetched = asyncio.run(fetched_high_watermarks(settings.bootstrap_servers, {TP(topic, 0): listed}))
    assert fetched == {TP(topic, 0): 13}
    assert [record.value for record in read_to_end(settings.bootstrap_servers, [topic])] == [
        b"%d" % n for n in [0, 1, 2, *range(10)]
    ]
