"""`onestop snapshot`: the live figures, read from the running pipeline's state.

The case and ticket tables' changelogs hold every state the workers have written, so
the figures are rebuilt from them with the same report code as `onestop replay`: the
two outputs can be compared byte for byte.

Each key's latest record counts, as after the changelog's compaction: the cases the
workers hold, open or settled within the archive window. A case the worker archived
ends with a tombstone, and so do the states of late facts it wrote for it since; whole
periods, archived cases included, are `onestop report`'s (the SQL store)."""

from __future__ import annotations

import datetime as dt

import orjson

from onestop.common.codec import decode_entry
from onestop.common.replay import Replay
from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.models.case import CaseRules
from onestop.models.reference import load_reference
from onestop.streams.tansu_compat import read_to_end


def pipeline_clock(settings: Settings) -> float | None:
    """The pipeline's clock as of its newest aggregate record (None before any)."""
    latest = None
    for record in read_to_end(settings.bootstrap_servers, [topics_for(settings).aggregates.name],
                              **settings.kafka_options()):
        if record.value is None:
            continue
        at = dt.datetime.fromisoformat(orjson.loads(record.value)["as_of"]).timestamp()
        latest = at if latest is None else max(latest, at)
    return latest


def live_replay(settings: Settings) -> Replay:
    """A Replay holding the states the workers hold: each key's latest changelog record,
    unless it is a tombstone (the case or ticket was archived)."""
    topics = topics_for(settings)
    replay = Replay.for_rules(CaseRules(load_reference(settings.reference)))
    names = [topics.case_changelog.name, topics.ticket_changelog.name]
    latest: dict[tuple[str, bytes], bytes | None] = {}
    for record in read_to_end(settings.bootstrap_servers, names, **settings.kafka_options()):
        latest[(record.topic, record.key)] = record.value
    for value in latest.values():
        if value is not None:
            replay.hold(decode_entry(value).state)
    return replay
