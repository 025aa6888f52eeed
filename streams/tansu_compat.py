"""Work-around for Tansu 0.6.0's end offsets, applied only when the broker is Tansu.

Tansu answers ListOffsets(latest) with the base offset of the partition's last record
batch plus one, not the log end offset. With a last batch of 10 records at offsets
40-49 it says 41, where Kafka says 50. Faust reads a changelog during table recovery
only up to that "end" and silently loses the newest updates of the table.

A fetch response carries the partition's true high watermark. So for Tansu the end
offsets are taken from a fetch at the offset ListOffsets gave (at most one batch from
the end, so little is read). Kafka brokers are left untouched.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from kafka import KafkaAdminClient

from onestop.streams.transport import Consumer, ConsumerThread, Transport


def is_tansu(bootstrap_servers: list[str], **client: Any) -> bool:
    """Tansu names its cluster `tansu…` (its default id is `tansu_cluster`); `client`
    holds the security options of kafka-python."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="onestop-probe", **client)
    try:
        return str(admin.describe_cluster().get("cluster_id", "")).startswith("tansu")
    finally:
        admin.close()


async def fetched_high_watermarks(
    bootstrap_servers: str | list[str], listed: Mapping[TP, int], timeout: float = 10.0,
    **client: Any,
) -> dict[TP, int]:
    """The high watermark of each partition, read from fetch responses starting at the
    (possibly short) offsets ListOffsets gave."""
    if not listed:
        return {}
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50,
        max_partition_fetch_bytes=64 * 1024, **client,
    )
    await consumer.start()
    try:
        partitions = [aiokafka.TopicPartition(tp.topic, tp.partition) for tp in listed]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, max(listed[TP(tp.topic, tp.partition)] - 1, 0))
        found: dict[TP, int] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(partitions):
            if time.monotonic() > deadline:
                missing = [tp for tp in partitions if TP(tp.topic, tp.partition) not in found]
                raise TimeoutError(f"no fetch response for {missing} in {timeout} s")
            await consumer.getmany(timeout_ms=100)
            for tp in partitions:
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    found[TP(tp.topic, tp.partition)] = highwater
        return found
    finally:
        await consumer.stop()


class TansuConsumerThread(ConsumerThread):
    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        listed = await super()._highwaters(partitions)
        conf = self.consumer.app.conf
        # The same security options as Faust's own consumer.
        security = faust_aiokafka.credentials_to_aiokafka_auth(
            conf.broker_credentials, conf.ssl_context)
        urls = conf.broker_consumer
        return await fetched_high_watermarks(
            [f"{url.host}:{url.port}" for url in urls], listed, **security)


class TansuConsumer(Consumer):
    thread_class = TansuConsumerThread


class TansuTransport(Transport):
    Consumer = TansuConsumer


def read_to_end(
    bootstrap_servers: list[str], topics: list[str], timeout: float = 60.0, **client: Any
) -> list[Any]:
    """Every record of `topics` up to their current end, read with kafka-python.

    The end is each partition's high watermark from the first fetch response, not
    ListOffsets, so this is exact on Tansu as well as on Kafka."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None,
        client_id="onestop-reader", **client,
    )
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        ends: dict[Any, int] = {}
        deadline = time.monotonic() + timeout
        while True:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            for tp in partitions:
                if tp not in ends and consumer.highwater(tp) is not None:
                    ends[tp] = consumer.highwater(tp)
            if len(ends) == len(partitions) and all(
                consumer.position(tp) >= ends[tp] for tp in partitions
            ):
                return [
                    record for record in records
                    if record.offset < ends[TopicPartition(record.topic, record.partition)]
                ]
            if time.monotonic() > deadline:
                names = sorted(set(topics))
                raise TimeoutError(f"could not read {names} to the end in {timeout} s")
    finally:
        consumer.close()
