"""Shuffling a simulated province's events within each case, and delivering some twice,
leaves the replay output unchanged (contract §2: any arrival order, duplicates applied
once)."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onestop.common.replay import Replay
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.simulate import SimulationSettings, simulate


@pytest.fixture(scope="module")
def province():
    reference = load_reference(SAMPLE_PROVINCE)
    rules = CaseRules(reference)
    simulation = SimulationSettings(cases=300, seed=11, start=dt.date(2026, 3, 2), days=20,
                                    disorder_rate=0.0, duplicate_rate=0.0)
    lines = [orjson.dumps(event) for event in simulate(reference, simulation)]
    as_of = rules.calendar.end_of_day(dt.date(2026, 3, 21))
    return rules, lines, as_of


def replay(rules, lines, as_of, period=(None, None)):
    result = Replay.for_rules(rules)
    for line in lines:
        assert result.feed(line) is None
    return orjson.dumps(result.report(as_of, *period), option=orjson.OPT_SORT_KEYS)


def entity(line: bytes) -> str:
    event = orjson.loads(line)
    return event.get("case_id") if "case_id" in event and "ticket_id" not in event else event["ticket_id"]


def rearranged(lines, seed, duplicate_share):
    """Each case's (and ticket's) events shuffled among the slots that entity occupies in the
    stream, then a share of all events delivered a second time at random places."""
    rng = random.Random(seed)
    slots = defaultdict(list)
    for position, line in enumerate(lines):
        slots[entity(line)].append(position)
    result = list(lines)
    for positions in slots.values():
        own = [lines[p] for p in positions]
        rng.shuffle(own)
        for position, line in zip(positions, own, strict=True):
            result[position] = line
    for line in rng.sample(lines, int(len(lines) * duplicate_share)):
        result.insert(rng.randrange(len(result) + 1), line)
    return result


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), duplicate_share=st.floats(0.0, 0.3))
def test_arrival_order_and_duplicates_do_not_change_the_output(province, seed, duplicate_share):
    rules, lines, as_of = province
    expected = replay(rules, lines, as_of)
    changed = rearranged(lines, seed, duplicate_share)
    assert changed != lines
    assert replay(rules, changed, as_of) == expected


def test_the_same_holds_for_a_reporting_period(province):
    rules, lines, as_of = province
    period = (dt.date(2026, 3, 9), dt.date(2026, 3, 15))
    expected = replay(rules, lines, as_of, period)
    assert replay(rules, rearranged(lines, 5, 0.2), as_of, period) == expected


def test_the_output_is_not_trivially_empty(province):
    rules, lines, as_of = province
    report = orjson.loads(replay(rules, lines, as_of))
    province_figures = report["province"]
    assert len(report["cases"]) > 250
    assert province_figures["ended"] > 100
    assert province_figures["late"] > 0 and province_figures["apologies_required"] > 0
    assert report["centres"]
