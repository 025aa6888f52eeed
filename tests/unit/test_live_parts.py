"""The live pipeline's pure parts: clock, settings, the table codec, ticks, the snapshot's
reading of the changelogs, routing of ingested lines, the live view's sums, and the
queue's next check."""

from __future__ import annotations

import math
from collections import namedtuple

import orjson
import pytest
from pydantic import ValidationError

from onestop.common.clock import parse_clock
from onestop.common.codec import Entry, decode_entry, decode_tick, encode_entry, encode_tick
from onestop.common.replay import Replay
from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.consumers.backfill import aggregate_records
from onestop.models.aggregates import WAIT_BUCKET_SECONDS, centre_figures
from onestop.models.case import CaseRules, CaseState
from onestop.models.facts import Fact
from onestop.models.queue import CLOSING_KINDS, QueueRules, TicketState
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams import snapshot
from onestop.streams.ingest import route
from onestop.streams.live_view import LiveFigures
from onestop.streams.simulate import SimulationSettings, simulate
from tests.conftest import at
from tests.unit.test_queue import ticket


def test_clocks_wall_fixed_and_accelerated():
    assert parse_clock("fixed:2026-03-02T07:00:00+07:00").now() == at("2026-03-02 07:00")
    shared = parse_clock("accelerated:2026-03-02T07:00:00+07:00:600@1000")
    assert (shared.start, shared.factor, shared.anchor) == (at("2026-03-02 07:00"), 600, 1000)
    assert parse_clock("wall").start is None


@pytest.mark.parametrize("text, words", [
    ("fixed:2026-03-02T07:00:00", "no time-zone offset"),
    ("accelerated:2026-03-02T07:00:00+07:00:0", "above 0"),
    ("sundial", "none of wall"),
])
def test_a_bad_clock_says_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=words):
        parse_clock(text)


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("ONESTOP_BROKER_URL", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("ONESTOP_PARTITIONS", "8")
    settings = Settings()
    assert settings.bootstrap_servers == ["kafka-1:9092", "kafka-2:9092"]
    assert settings.partitions == 8
    monkeypatch.setenv("ONESTOP_BROKER_URL", "kafka://ours:9092")
    assert Settings().bootstrap_servers == ["ours:9092"]


def test_bad_settings_are_refused_by_name(monkeypatch):
    monkeypatch.setenv("ONESTOP_CLOCK", "fixed:yesterday")
    with pytest.raises(ValidationError, match="clock"):
        Settings()
    monkeypatch.setenv("ONESTOP_CLOCK", "wall")
    monkeypatch.setenv("ONESTOP_BROKER_URL", "http://x:1")
    with pytest.raises(ValidationError, match="ONESTOP_BROKER_URL"):
        Settings()


def test_table_entries_survive_the_changelog_codec_unchanged():
    reference = load_reference(SAMPLE_PROVINCE)
    replay = Replay.for_rules(CaseRules(reference))
    for event in simulate(reference, SimulationSettings(cases=60, seed=4, days=10)):
        replay.feed(orjson.dumps(event))
    states = [*replay.cases.values(), *replay.tickets.values()]
    assert any(fact.data and any(isinstance(part, tuple) for part in fact.data)
               for state in states for fact in state.facts)  # nested tuples are covered
    for number, state in enumerate(states):
        entry = Entry(number % 4, state)
        assert decode_entry(encode_entry(entry)) == entry
    assert decode_tick(encode_tick(1772409600.25)) == 1772409600.25


def test_a_snapshot_holds_what_the_workers_hold_whether_or_not_compaction_ran(monkeypatch):
    """Each key's latest changelog record counts: a tombstone (the case was archived)
    drops the case, and the states of late facts written for it since, each followed by
    its own tombstone, are not held either."""
    settings = Settings()
    topics = topics_for(settings)
    cases, tickets = topics.case_changelog.name, topics.ticket_changelog.name
    Record = namedtuple("Record", "topic key value")

    def state(entity, kind):
        facts = (Fact(1.0, f"{entity}-{kind}", kind, None),)
        made = TicketState(entity, facts, False) if kind == "ticket_issued" else CaseState(
            entity, facts)
        return encode_entry(Entry(0, made))

    changelogs = [
        Record(cases, b'"H1"', state("H1", "received")),
        Record(cases, b'"H2"', state("H2", "received")),
        Record(cases, b'"H1"', None),  # archived
        Record(cases, b'"H1"', state("H1", "rated")),  # a late fact
        Record(cases, b'"H1"', None),
        Record(tickets, b'"Q1"', state("Q1", "ticket_issued")),
    ]
    monkeypatch.setattr(snapshot, "read_to_end", lambda *_args, **_kw: changelogs)
    held = snapshot.live_replay(settings)
    assert set(held.cases) == {"H2"} and set(held.tickets) == {"Q1"}
    compacted = [changelogs[number] for number in (1, 4, 5)]
    monkeypatch.setattr(snapshot, "read_to_end", lambda *_args, **_kw: compacted)
    again = snapshot.live_replay(settings)
    assert (again.cases, again.tickets) == (held.cases, held.tickets)


def test_ingest_routes_by_type_and_keys_by_id():
    assert route(b'{"type":"ticket_called","ticket_id":"T1"}') == (True, b"T1")
    assert route(b'{"type":"received","case_id":"C1"}') == (False, b"C1")
    assert route(b'{"type":"received"}') == (False, None)
    assert route(b"[1, 2]") == (False, None)
    assert route(b"{broken") == (False, None)


def record(code, day, partition, received, overdue, as_of="2026-03-03T17:00:00+07:00"):
    ratio = {"numerator": received, "denominator": received, "ratio": 1.0}
    figures = {"received": received, "ended": 0, "early": 0, "on_time": 0, "late": 0,
               "completed_on_time_rate": ratio, "e_transfer_share": ratio,
               "apologies_required": 0, "overdue_open": overdue, "apologies_missing": 0,
               "service_index_on_time_rate": ratio}
    return {"scope": "agency", "code": code, "day": day, "partition": partition,
            "as_of": as_of, "figures": figures}


def test_the_live_view_adds_flows_over_days_and_takes_backlogs_from_the_last_day():
    view = LiveFigures()
    view.add(b"a1", record("STP", "2026-03-02", 0, received=3, overdue=5))
    view.add(b"a2", record("STP", "2026-03-03", 0, received=2, overdue=1))
    view.add(b"a3", record("STP", "2026-03-03", 1, received=4, overdue=2))
    view.add(b"a4", record("UBND", "2026-03-02", 1, received=1, overdue=1))
    report = view.report()
    stp = report["agencies"]["STP"]
    assert stp["received"] == 9
    assert stp["completed_on_time_rate"] == {"numerator": 9, "denominator": 9, "ratio": 1.0}
    assert stp["overdue_open"] == 3  # the 3rd: both partitions; the 2nd is history
    assert report["province"]["received"] == 10
    assert report["province"]["overdue_open"] == 4
    view.add(b"a4", None)  # a tombstone of the compacted topic
    assert "UBND" not in view.report()["agencies"]


def test_the_live_views_wait_percentiles_are_the_snapshots_to_the_minute():
    """Median and P90 per centre from the aggregates as the workers publish them (per day
    and partition, through JSON) against the replay's exact figures, which `onestop
    snapshot` prints: never under, less than a minute over. The replay's JSON keeps its
    keys."""
    reference = load_reference(SAMPLE_PROVINCE)
    replay = Replay.for_rules(CaseRules(reference))
    list(replay.feed_lines(orjson.dumps(event) for event in simulate(
        reference, SimulationSettings(cases=600, seed=11, days=12))))
    as_of = replay.latest
    exact = replay.report(as_of)["centres"]
    live = LiveFigures()
    for record in aggregate_records(
            replay.tickets, CLOSING_KINDS,
            lambda states, period: centre_figures(replay.queue_rules, states, period),
            4, as_of, replay.rules.calendar, "centre"):
        key = f"centre:{record['code']}:{record['day']}:{record['partition']}".encode()
        live.add(key, orjson.loads(orjson.dumps(record)))
    shown = live.report()["centres"]
    assert set(shown) == set(exact) and len(exact) >= 2
    for code, figures in exact.items():
        assert "wait_histogram" not in figures
        assert shown[code]["visits_waited"] == figures["visits_waited"] > 50
        for key in ("wait_p50_seconds", "wait_p90_seconds"):
            assert 0 <= shown[code][key] - figures[key] < WAIT_BUCKET_SECONDS, (code, key)
    # A record of an older worker, without its waits per minute: no percentile rather
    # than one of only part of the waits.
    code, older = next(iter(live.records.items()))
    live.add(code, {**older, "figures": {
        name: value for name, value in older["figures"].items() if name != "wait_histogram"}})
    assert live.report()["centres"][older["code"]]["wait_p50_seconds"] is None


def test_a_waiting_ticket_is_judged_again_just_after_the_target():
    rules = QueueRules(900)
    state, _ = rules.apply(None, ticket("ticket_issued", "2026-03-02 08:00"))
    now = at("2026-03-02 08:01")
    wake = rules.next_check(state, rules.evaluate(state, now), now)
    assert at("2026-03-02 08:15") < wake < at("2026-03-02 08:15") + 0.001
    assert rules.on_tick(state, at("2026-03-02 08:15"))[1] == []
    state, outputs = rules.on_tick(state, wake)
    assert [output.type for output in outputs] == ["wait_exceeded"]
    assert rules.next_check(state, rules.evaluate(state, wake), wake) == math.inf
