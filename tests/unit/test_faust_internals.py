"""The faust-streaming internals that streams/transport.py and streams/app.py override
or rely on, pinned by the hash of their source: faust-streaming is pinned exactly in
pyproject.toml, and a new version that changes one of these fails here, not in a
province. When it does, read the new source against the override before updating the
hash."""

from __future__ import annotations

import hashlib
import inspect

from faust.app import base
from faust.sensors import monitor
from faust.transport import conductor, consumer
from faust.transport.drivers import aiokafka

# What each is relied on for.
PINNED = {
    # yields one fetch's records, checking flow and generation (our fetcher loop's source)
    "Consumer.getmany": (consumer.Consumer.getmany, "4b168d84882a70d6"),
    # replaced by streams/transport.py's loop, which must stay close to it
    "Consumer._drain_messages": (consumer.Consumer._drain_messages, "44a2500309e83c63"),
    # replaced: what a commit may move to
    "Consumer._new_offset": (consumer.Consumer._new_offset, "1d2c7ea89a7ad4f1"),
    # extended with the partitions read in batches
    "Consumer._filter_tps_with_pending_acks": (
        consumer.Consumer._filter_tps_with_pending_acks, "f6f9239774234e7e"),
    # calls _new_offset for each partition that the above yields
    "Consumer._filter_committable_offsets": (
        consumer.Consumer._filter_committable_offsets, "dc5e9baf5d994485"),
    # extended: a rebalance waits for the batch being handled
    "Consumer.wait_empty": (consumer.Consumer.wait_empty, "e4662fe24f094819"),
    # extended: pauses the input partitions and forgets handled offsets while seeking
    "Consumer.perform_seek": (consumer.Consumer.perform_seek, "0e8c130ff4b0afd8"),
    # moves Faust's own idea of the commit on even when the commit failed, which is why
    # the worker keeps the commits the broker confirmed (ThreadDelegateConsumer._commit)
    "Consumer._commit_offsets": (consumer.Consumer._commit_offsets, "1a69799041188441"),
    "ThreadDelegateConsumer._commit": (
        consumer.ThreadDelegateConsumer._commit, "a20eec84e4b2ed50"),
    # a rebalance stops the flow; a batch is not handled once it has
    "Consumer.stop_flow": (consumer.Consumer.stop_flow, "cf7e875a2b0d40e8"),
    # stops the flow and waits for the consumer to be empty before it commits
    "App._on_partitions_revoked": (base.App._on_partitions_revoked, "d5c895bbe57dc73a"),
    # which partitions are the tables' changelogs, whose offset gaps are no loss
    "Consumer._is_changelog_tp": (consumer.Consumer._is_changelog_tp, "88867d75cfe9aecf"),
    # subscribes the input topics that have no agent
    "Conductor.add": (conductor.Conductor.add, "9944e209d2cc2250"),
    # extended: forgets the handled ends of revoked partitions after its commit
    "Consumer.on_partitions_revoked": (
        consumer.Consumer.on_partitions_revoked, "d04b7ae72c6fc206"),
    # what a stream notes per record, which the batch path notes per batch instead, for
    # the idle-stream check that reads it
    "Monitor.on_stream_event_in": (monitor.Monitor.on_stream_event_in, "df6d2e5f6397ce44"),
    "AIOKafkaConsumerThread.verify_event_path": (
        aiokafka.AIOKafkaConsumerThread.verify_event_path, "b983e7735f647cb3"),
}


def source_hash(function: object) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]  # type: ignore[arg-type]


def test_the_faust_internals_we_override_are_those_we_wrote_against() -> None:
    changed = [name for name, (function, pinned) in PINNED.items()
               if source_hash(function) != pinned]
    assert changed == [], (
        f"faust-streaming changed {changed}: re-read streams/transport.py against them")
