"""A case's view given again instead of computed again (`CaseRules.evaluate` keeps each
case's last one) is the view a fresh evaluation gives, whatever the order of the instants."""

from __future__ import annotations

import datetime as dt
import math
import random

import orjson

from onestop.common.replay import Replay
from onestop.models import case
from onestop.models.case import CaseRules, CaseState
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.simulate import SimulationSettings, simulate


def instants_of(rules: CaseRules, state: CaseState) -> list[float]:
    """Where a case's view may change, and around: its facts, its deadlines, the new due
    instants its apologies set, the end of each day it spans."""
    fresh = CaseRules(rules.reference, rules.calendar, rules.settings)
    last = state.facts[-1].at + 40 * 86400
    view = fresh.evaluate(state, last)
    marks = [fact.at for fact in state.facts]
    # An apology's new due instant (`late_after_reschedule` compares with it).
    marks += [fact.data[1] for fact in state.facts if fact.kind == "apology_issued"]
    if view is not None:
        marks += [at for at in (view.due_at, view.risk_at, view.apology_deadline, view.end_at)
                  if at is not None]
    instants = [step(at) for at in marks for step in (
        lambda at: math.nextafter(at, -math.inf), lambda at: at,
        lambda at: math.nextafter(at, math.inf), lambda at: at + 3600)]
    day = rules.calendar.local_date(state.facts[0].at)
    while rules.calendar.start_of_day(day) < last:
        instants.append(rules.calendar.end_of_day(day))
        day += dt.timedelta(days=1)
    return sorted(instants)


def simulated_cases(rules: CaseRules, settings: SimulationSettings) -> tuple[list[CaseState], float]:
    """The case states of a simulated province, and the end of its last day."""
    replay = Replay.for_rules(rules)
    for event in simulate(rules.reference, settings):
        if "case_id" in event:
            replay.feed(orjson.dumps(event))
    end = rules.calendar.end_of_day(settings.start + dt.timedelta(days=settings.days))
    return list(replay.cases.values()), end


def test_a_reused_view_equals_a_fresh_one_in_any_order_of_instants() -> None:
    reference = load_reference(SAMPLE_PROVINCE)
    rules = CaseRules(reference)
    states, end = simulated_cases(
        rules, SimulationSettings(cases=300, seed=11, days=20, start=dt.date(2026, 3, 2)))
    shuffle = random.Random(5).shuffle
    kinds = {view.status for view in (rules.evaluate(state, end) for state in states) if view}
    assert {"open", "processed", "returned"} <= kinds
    reused = 0
    for state in states:
        instants = instants_of(rules, state)
        descending, scrambled = instants[::-1], list(instants)
        shuffle(scrambled)
        for as_of in instants + descending + scrambled:
            fresh = CaseRules(reference, rules.calendar, rules.settings)
            view = rules.evaluate(state, as_of)
            again = rules.evaluate(state, as_of)
            reused += again is view
            assert view == fresh.evaluate(state, as_of), (state.case_id, as_of)
    assert reused > 0  # the reuse ran: what it gave was checked above


def test_the_views_kept_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(case, "_VIEW_CACHE", 10)
    rules = CaseRules(load_reference(SAMPLE_PROVINCE))
    states, end = simulated_cases(
        rules, SimulationSettings(cases=40, seed=3, days=5, start=dt.date(2026, 3, 2)))
    for state in states:
        rules.evaluate(state, end)
    assert 0 < len(rules._views) <= 10
