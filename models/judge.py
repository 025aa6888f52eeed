"""One judgement of a case or a queue ticket: what every driver asks of the rules.

A case is judged at every instant its outcome may change: just past each of its events
and each of its deadlines (`next_check`). The live worker judges it so between its last
judgement and its clock's now; the replay from the case's first event to `--as-of`. The
same history therefore gives the same derived events with the same ids, live or replayed,
whenever it is computed (rulebook §11.12): a case at risk on Monday and closed on
Wednesday has its `case_at_risk` event in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .case import (
    CaseRules,
    CaseState,
    DerivedEvent,
    applicant_needed,
    without_applicant,
)
from .measures import Measure, case_measures, visit_measures
from .queue import QueueRules, TicketState


class _Rules(Protocol):
    def evaluate(self, state: Any, as_of: float) -> Any: ...
    def derive(self, state: Any, view: Any, now: float) -> tuple[Any, list[DerivedEvent]]: ...
    def next_check(self, state: Any, view: Any, now: float) -> float: ...


@dataclass(frozen=True, slots=True)
class Judgement:
    """A case or ticket judged up to `end`: its new state, the derived events that came
    about since `start`, its view as of `end`, the next instant it must be judged
    (infinity: only a new event can change it) and its metric contributions at `end`."""

    state: Any
    derived: tuple[DerivedEvent, ...]
    view: Any
    next_check: float
    measures: tuple[Measure, ...]


def _through(
    rules: _Rules, state: Any, start: float, end: float
) -> tuple[Any, list[DerivedEvent], Any, float]:
    outputs: list[DerivedEvent] = []
    now = min(start, end)
    while True:
        view = rules.evaluate(state, now)
        if view is not None:
            state, new = rules.derive(state, view, now)
            outputs.extend(new)
        after = rules.next_check(state, view, now)
        if now >= end:
            return state, outputs, view, after
        now = min(after, end)


def first_instant(state: CaseState | TicketState) -> float:
    """Where judging a history from its beginning starts: its earliest event."""
    return state.facts[0].at


def judge_case(rules: CaseRules, state: CaseState, start: float, end: float) -> Judgement:
    """The case judged at each instant from `start` to `end` at which its outcome may
    change, then at `end`."""
    state, outputs, view, after = _through(rules, state, start, end)
    measures: tuple[Measure, ...] = ()
    if view is not None and view.applicant is not None and not applicant_needed(
            view, end, rules.settings.allowed_lateness_seconds):
        state = without_applicant(state)
    if view is not None:
        field = rules.reference.procedures[view.procedure].field
        measures = case_measures(view, field, end)
    return Judgement(state, tuple(outputs), view, after, measures)


def judge_ticket(rules: QueueRules, state: TicketState, start: float, end: float) -> Judgement:
    """The ticket judged like a case (`judge_case`)."""
    state, outputs, visit, after = _through(rules, state, start, end)
    measures = () if visit is None else visit_measures(visit)
    return Judgement(state, tuple(outputs), visit, after, measures)
