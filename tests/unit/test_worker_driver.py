"""The worker's per-partition driver without a broker: a case keeper fed records and ticks
by hand, its table a dict and its outbox caught before the producer, on a clock that
moves (the idea of Kafka Streams' TopologyTestDriver)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from onestop.common.clock import Clock
from onestop.common.replay import Replay
from onestop.common.settings import Settings
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.app import CaseKeeper, Pipeline
from onestop.streams.simulate import SimulationSettings, simulate

ZONE = dt.timezone(dt.timedelta(hours=7))


class Driver:
    """One case keeper and the records it sent, partition 0 of the case topic."""

    def __init__(self, archive_after_days: int = 60) -> None:
        settings = Settings(reference=SAMPLE_PROVINCE, partitions=1,
                            archive_after_days=archive_after_days)
        self.pipeline = Pipeline(settings, Clock(dt.datetime(2026, 3, 1, tzinfo=ZONE).timestamp(), 0))
        table = SimpleNamespace(
            data={}, changelog_topic=SimpleNamespace(get_topic_name=lambda: "changelog"))
        archive = SimpleNamespace(
            data={}, changelog_topic=SimpleNamespace(get_topic_name=lambda: "archive"))
        self.keeper = CaseKeeper(self.pipeline, table, archive)  # type: ignore[arg-type]
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.keeper.outbox._send = self._send  # type: ignore[method-assign]
        self.offset = 0

    async def _send(self) -> None:
        for (topic, _partition), records in self.keeper.outbox.pending.items():
            self.sent.extend((topic, key, value) for key, value in records)

    def feed(self, key: bytes, value: bytes) -> None:
        self.offset += 1
        message = SimpleNamespace(topic=self.pipeline.topics.case_events.name, partition=0,
                                  offset=self.offset, key=key, value=value, timestamp=0.0)
        asyncio.run(self.keeper.handle([message]))  # type: ignore[list-item]

    def event(self, event: dict[str, Any]) -> None:
        self.feed(event["case_id"].encode(), orjson.dumps(event))

    def tick(self, now: float) -> None:
        asyncio.run(self.keeper.tick({0: now}))

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


END = dt.datetime(2026, 4, 30, tzinfo=ZONE).timestamp()


def fed_as_time_passes(driver: Driver, events: list[dict[str, Any]], end: float) -> None:
    instant = dt.datetime.fromisoformat
    now = instant(events[0]["occurred_at"]).timestamp()
    pending = list(events)
    while now < end:
        while pending and instant(pending[0]["occurred_at"]).timestamp() <= now:
            driver.event(pending.pop(0))
        driver.tick(now)
        now += 6 * 3600
    driver.tick(end)


def test_a_case_keeper_fed_as_time_passes_sends_the_replay_s_derived_events(events) -> None:
    """Each event arrives when the clock reaches it, with a tick every simulated six
    hours; at the end the keeper has sent exactly the replay's derived events."""
    driver = Driver()
    fed_as_time_passes(driver, events, END)
    end = END

    replay = Replay.for_rules(driver.pipeline.rules, collect_derived=True)
    for event in events:
        assert replay.feed(orjson.dumps(event)) is None
    replay.report(end)
    sent = driver.derived()
    assert len({event["event_id"] for event in sent}) == len(sent)  # each once
    assert {event["event_id"] for event in sent} == {event.event_id for event in replay.derived}
    kinds = {event["type"] for event in sent}
    assert {"case_at_risk", "overdue_detected", "case_closed"} <= kinds


def last_values(driver: Driver, topic: str) -> dict[bytes | None, bytes | None]:
    """What a compacted topic keeps: the last value per key."""
    return {key: value for name, key, value in driver.sent if name == topic}


def nonzero(counts: Any) -> dict[Any, Any]:
    return {key: value for key, value in counts.items() if value}


def test_settled_cases_leave_the_live_state_and_change_no_output(events) -> None:
    """Archiving after 3 days (longer than any case here takes from its closing to its return and rating) changes no derived event, no day's figures and no metric
    total; what is archived leaves the table with a tombstone after its last state; a
    rebalance brings the archived totals back from the archive table; a late event for
    an archived case goes to the store's side, not into the live state."""
    kept, archiving = Driver(archive_after_days=3650), Driver(archive_after_days=3)
    for driver in (kept, archiving):
        fed_as_time_passes(driver, events, END)
    keeper = archiving.keeper
    assert sorted(e["event_id"] for e in archiving.derived()) == sorted(
        e["event_id"] for e in kept.derived())
    aggregates = archiving.pipeline.topics.aggregates.name
    assert last_values(archiving, aggregates) == last_values(kept, aggregates)
    assert nonzero(keeper.tally.counts) == nonzero(kept.keeper.tally.counts)

    changelog = last_values(archiving, "changelog")
    archived = {orjson.loads(key) for key, value in changelog.items() if value is None}
    assert len(archived) >= 15, len(archived)
    assert not archived & set(keeper.table.data)
    assert set(keeper.table.data) | archived == set(kept.keeper.table.data)
    states = [(orjson.loads(key), value) for name, key, value in archiving.sent
              if name == "changelog"]
    for case_id in archived:  # its last state went out before its tombstone
        values = [value for key, value in states if key == case_id]
        assert values[-1] is None and values[-2] is not None
    assert keeper.metrics.pipeline[("archived", ("cases",))] == len(archived)
    assert keeper.archive.data  # the archived totals, per series

    totals = nonzero(keeper.tally.counts)
    keeper.forget()  # a rebalance: the tally is rebuilt from the tables
    archiving.tick(END)
    assert nonzero(keeper.tally.counts) == totals

    case_id = sorted(archived)[0]
    ended = max(fact.at for fact in kept.keeper.table.data[case_id].state.facts)
    sent_before = len(archiving.sent)
    archiving.event({"event_id": "late-rating", "type": "rated", "case_id": case_id,
                     "occurred_at": dt.datetime.fromtimestamp(ended + 3600, ZONE).isoformat(),
                     "rating": "unsatisfied"})
    late = [(name, orjson.loads(key), value) for name, key, value in archiving.sent[sent_before:]]
    assert [(name, key) for name, key, _ in late] == [("changelog", case_id)] * 2
    assert late[0][2] is not None and late[1][2] is None
    assert case_id not in keeper.table.data
    assert keeper.metrics.pipeline[("late_events_for_archived", ("cases",))] == 1


def test_a_partition_still_being_read_is_judged_at_its_last_record_s_arrival() -> None:
    """Caught up: judged at the tick's instant. Behind: at the instant the last record
    applied reached the broker (as a tick written then would have been), every 10 s at
    most, never earlier than before; on a fixed clock, not while behind."""
    keeper = Driver().keeper
    end = {"offset": 10}
    keeper.input_offsets = lambda partition: (end["offset"], end.get("committed"))
    assert keeper.judging_instant(0, 1000.0) is None  # nothing applied yet
    end["committed"] = 10  # an earlier worker applied everything
    assert keeper.judging_instant(0, 999.0) == 999.0
    del end["committed"]
    keeper.read_through[0] = (10, 500.0)
    assert keeper.judging_instant(0, 1000.0) == 1000.0
    end["offset"] = 20  # ten more records wait
    assert keeper.judging_instant(0, 1001.0) is None  # a fixed clock: no earlier instant
    keeper.pipeline.clock = Clock()  # the wall clock: a record's arrival is its instant
    keeper.judged_at.clear()  # as if judged at no instant yet
    assert keeper.judging_instant(0, 1002.0) == 500.0
    assert keeper.judging_instant(0, 1003.0) is None  # judged behind less than 10 s ago
    keeper.judged_behind.clear()
    keeper.read_through[0] = (15, 400.0)  # a record that arrived earlier: not back in time
    assert keeper.judging_instant(0, 1004.0) == 500.0
    keeper.read_through[0] = (20, 900.0)
    assert keeper.judging_instant(0, 1005.0) == 1005.0
    # Under steady load a batch is often being gathered: its partition is judged each
    # tick, at the instant its last applied record was produced.
    end["offset"] = 25
    produced = time.time() - 1
    keeper.read_through[0] = (24, produced)
    keeper.judged_at.clear()
    assert keeper.judging_instant(0, produced + 5) == produced
    assert keeper.judging_instant(0, produced + 6) == produced
