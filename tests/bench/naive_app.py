"""The naive pattern the pipeline is measured against: the same decoding and rules, one
Faust table write per event, Faust's default settings. With `--empty`, Faust's own floor
instead: the pipeline's batched agents with no work at all.

    python tests/bench/naive_app.py [--empty]   (settings from the ONESTOP_* environment)
"""

from __future__ import annotations

import sys
from typing import Any

import faust

from onestop.common.codec import Entry
from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.models.case import CaseRules
from onestop.models.events import Rejection, decode_event
from onestop.models.queue import QueueRules
from onestop.models.reference import load_reference
from onestop.streams.table_codec import ENTRY_CODEC


def create_empty_app(settings: Settings) -> faust.App:
    """Agents that take the input in batches, as the pipeline does, and do nothing."""
    spec = topics_for(settings)
    app = faust.App(
        settings.app_id, broker=settings.broker_url, store="memory://",
        topic_partitions=settings.partitions, web_enabled=False, autodiscover=False,
        datadir=str(settings.data_dir), broker_commit_interval=settings.commit_seconds,
    )

    async def take(stream: Any) -> None:
        async for _batch in stream.take_events(settings.batch_size, settings.batch_seconds):
            pass

    for name in (spec.case_events.name, spec.queue_events.name):
        topic = app.topic(name, key_type=bytes, value_type=bytes, value_serializer="raw",
                          key_serializer="raw")
        app.agent(topic, name=name)(take)
    return app


def create_naive_app(settings: Settings) -> faust.App:
    spec = topics_for(settings)
    rules = CaseRules(load_reference(settings.reference))
    queue_rules = QueueRules(rules.settings.wait_target_seconds)
    app = faust.App(
        settings.app_id, broker=settings.broker_url, store="memory://",
        topic_partitions=settings.partitions, web_enabled=False, autodiscover=False,
        datadir=str(settings.data_dir),
        # Only so that the benchmark sees progress as often as for the pipeline.
        broker_commit_interval=settings.commit_seconds,
    )
    cases = app.Table("cases", partitions=settings.partitions, key_type=str)
    tickets = app.Table("tickets", partitions=settings.partitions, key_type=str)
    for table in (cases, tickets):
        table.value_serializer = ENTRY_CODEC

    async def case_agent(stream: Any) -> None:
        async for event in stream.events():
            decoded = decode_event(event.value)
            if type(decoded) is Rejection or rules.check(decoded) is not None:
                continue
            entry = cases.get(decoded.case_id)
            state, _ = rules.apply(None if entry is None else entry.state, decoded)
            cases[decoded.case_id] = Entry(event.message.partition, state)

    async def queue_agent(stream: Any) -> None:
        async for event in stream.events():
            decoded = decode_event(event.value)
            if type(decoded) is Rejection:
                continue
            entry = tickets.get(decoded.ticket_id)
            state, _ = queue_rules.apply(None if entry is None else entry.state, decoded)
            tickets[decoded.ticket_id] = Entry(event.message.partition, state)

    for name, agent in ((spec.case_events.name, case_agent), (spec.queue_events.name, queue_agent)):
        topic = app.topic(name, key_type=bytes, value_type=bytes, value_serializer="raw",
                          key_serializer="raw")
        app.agent(topic, name=agent.__name__)(agent)
    return app


if __name__ == "__main__":
    from faust.worker import Worker

    factory = create_empty_app if "--empty" in sys.argv else create_naive_app
    Worker(factory(Settings()), loglevel="warn", quiet=True).execute_from_commandline()
