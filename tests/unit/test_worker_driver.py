"""The worker's per-partition driver without a broker: a case keeper fed records and ticks
by hand, its table a dict and its outbox caught before the producer, on a clock that
moves (the idea of Kafka Streams' TopologyTestDriver)."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from onestop.common.clock import Clock
from onestop.common.codec import TICK_KEY, encode_tick
from onestop.common.replay import Replay
from onestop.common.settings import Settings
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.app import CaseKeeper, Pipeline
from onestop.streams.simulate import SimulationSettings, simulate

ZONE = dt.timezone(dt.timedelta(hours=7))


class Driver:
    """One case keeper and the records it sent, partition 0 of the case topic."""

    def __init__(self) -> None:
        settings = Settings(reference=SAMPLE_PROVINCE, partitions=1)
        self.pipeline = Pipeline(settings, Clock(dt.datetime(2026, 3, 1, tzinfo=ZONE).timestamp(), 0))
        table = SimpleNamespace(
            data={}, changelog_topic=SimpleNamespace(get_topic_name=lambda: "changelog"))
        self.keeper = CaseKeeper(self.pipeline, table)  # type: ignore[arg-type]
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.keeper.outbox._send = self._send  # type: ignore[method-assign]
        self.offset = 0

    async def _send(self) -> None:
        for (topic, _partition), records in self.keeper.outbox.pending.items():
            self.sent.extend((topic, key, value) for key, value in records)

    def feed(self, key: bytes, value: bytes) -> None:
        self.offset += 1
        message = SimpleNamespace(topic=self.pipeline.topics.case_events.name, partition=0,
                                  offset=self.offset, key=key, value=value)
        asyncio.run(self.keeper.handle([SimpleNamespace(message=message)]))  # type: ignore[list-item]

    def event(self, event: dict[str, Any]) -> None:
        self.feed(event["case_id"].encode(), orjson.dumps(event))

    def tick(self, now: float) -> None:
        self.feed(TICK_KEY, encode_tick(now))

    def derived(self) -> list[dict[str, Any]]:
        topic = self.pipeline.topics.derived_events.name
        return [orjson.loads(value) for name, _, value in self.sent
                if name == topic and value is not None]


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    reference = load_reference(SAMPLE_PROVINCE)
    settings = SimulationSettings(cases=60, seed=4, days=10, start=dt.date(2026, 3, 2),
                                  disorder_rate=0, duplicate_rate=0)
    cases = [event for event in simulate(reference, settings) if "case_id" in event]
    return sorted(cases, key=lambda event: event["occurred_at"])


def test_a_case_keeper_fed_as_time_passes_sends_the_replay_s_derived_events(events) -> None:
    """Each event arrives when the clock reaches it, with a tick every simulated six
    hours; at the end the keeper has sent exactly the replay's derived events."""
    driver = Driver()
    instant = dt.datetime.fromisoformat
    now = instant(events[0]["occurred_at"]).timestamp()
    end = dt.datetime(2026, 4, 30, tzinfo=ZONE).timestamp()
    pending = list(events)
    while now < end:
        while pending and instant(pending[0]["occurred_at"]).timestamp() <= now:
            driver.event(pending.pop(0))
        driver.tick(now)
        now += 6 * 3600
    driver.tick(end)

    replay = Replay.for_rules(driver.pipeline.rules, collect_derived=True)
    for event in events:
        assert replay.feed(orjson.dumps(event)) is None
    replay.report(end)
    sent = driver.derived()
    assert len({event["event_id"] for event in sent}) == len(sent)  # each once
    assert {event["event_id"] for event in sent} == {event.event_id for event in replay.derived}
    kinds = {event["type"] for event in sent}
    assert {"case_at_risk", "overdue_detected", "case_closed"} <= kinds
