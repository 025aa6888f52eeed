"""Per-agency, per-centre and province figures (rulebook §4, §7–9; contract §6).

Every ratio is carried as numerator and denominator and only divided when shown, so
figures can be summed across agencies, days and partitions.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from itertools import accumulate
from typing import Any

from .case import CaseRules, CaseState, CaseView, overdue_notice_source
from .queue import QueueRules, TicketState, Visit


@dataclass(slots=True)
class Ratio:
    numerator: int = 0
    denominator: int = 0

    def count(self, hit: bool) -> None:
        self.denominator += 1
        self.numerator += hit

    @property
    def ratio(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def __iadd__(self, other: Ratio) -> Ratio:
        self.numerator += other.numerator
        self.denominator += other.denominator
        return self

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "ratio": None if ratio is None else round(ratio, 6),
        }


@dataclass(slots=True)
class AgencyFigures:
    received: int = 0
    ended: int = 0
    early: int = 0
    on_time: int = 0
    late: int = 0
    overdue_open: int = 0
    completed_on_time_rate: Ratio = field(default_factory=Ratio)
    service_index_on_time_rate: Ratio = field(default_factory=Ratio)
    apologies_required: int = 0
    apologies_in_time: int = 0
    apologies_late: int = 0
    apologies_missing: int = 0
    rescheduled_twice: int = 0
    late_after_reschedule: int = 0
    e_transfer_share: Ratio = field(default_factory=Ratio)
    # Beyond contract §6: the other shares of rulebook §8 and the findings.
    received_counter: int = 0
    received_online: int = 0
    received_postal: int = 0
    online_submission_share: Ratio = field(default_factory=Ratio)
    postal_share: Ratio = field(default_factory=Ratio)
    full_online_share: Ratio = field(default_factory=Ratio)
    online_payment_share: Ratio = field(default_factory=Ratio)
    electronic_result_share: Ratio = field(default_factory=Ratio)
    satisfaction_share: Ratio = field(default_factory=Ratio)
    apology_compliance: Ratio = field(default_factory=Ratio)
    refusals_without_reason: int = 0
    due_date_mismatches: int = 0
    # The source system's own overdue notice disagrees with the monitor's verdict.
    overdue_notice_mismatches: int = 0
    # Counted under the centre: first paper hand-offs that left too late (§11.11).
    late_paper_transfers: int = 0

    def __iadd__(self, other: AgencyFigures) -> AgencyFigures:
        for item in fields(self):
            mine = getattr(self, item.name)
            if isinstance(mine, Ratio):
                mine += getattr(other, item.name)
            else:
                setattr(self, item.name, mine + getattr(other, item.name))
        return self

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            result[item.name] = value.to_json() if isinstance(value, Ratio) else value
        result["service_index"] = service_index_groups(self)
        return result


@dataclass(slots=True)
class CentreFigures:
    waits: list[float] = field(default_factory=list)
    wait_within_target: Ratio = field(default_factory=Ratio)
    no_shows: int = 0
    recalls: int = 0
    waiting_now: int = 0

    def replay_json(self) -> dict[str, Any]:
        """The figures of the replay JSON (contract §6), percentiles exact."""
        waits = sorted(self.waits)
        return {
            "visits_waited": len(waits),
            "wait_within_target": self.wait_within_target.to_json(),
            "wait_p50_seconds": percentile(waits, 0.5),
            "wait_p90_seconds": percentile(waits, 0.9),
            "no_shows": self.no_shows,
            "recalls": self.recalls,
            "waiting_now": self.waiting_now,
        }

    def to_json(self) -> dict[str, Any]:
        """The figures as a worker publishes them for one day and partition: the replay's,
        and the waits counted per minute, which add up across days and partitions where
        percentiles do not (the live view's median and P90 come from their sum)."""
        return {**self.replay_json(), "wait_histogram": wait_histogram(self.waits)}


def percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list: the smallest value with at least
    `fraction` of the values at or below it."""
    if not ordered:
        return None
    return ordered[_nearest_rank(fraction, len(ordered)) - 1]


def _nearest_rank(fraction: float, count: int) -> int:
    # Rounded first so that 0.9 × 10 counts as 9, not 9.000000000000002.
    return min(max(1, math.ceil(round(fraction * count, 9))), count)


WAIT_BUCKET_SECONDS = 60
# Waits over 10 hours share the last minute: a histogram stays short whatever a faulty
# ticket says.
WAIT_HISTOGRAM_MINUTES = 600


def wait_histogram(waits: Iterable[float]) -> list[list[int]]:
    """Waits counted per minute, as [minute, count] pairs in order of the minute: minute
    n counts the waits over n − 1 and up to n minutes (0: called at once), the last one
    the longer waits too."""
    counts = Counter(min(math.ceil(wait / WAIT_BUCKET_SECONDS), WAIT_HISTOGRAM_MINUTES)
                     for wait in waits)
    return [[minute, counts[minute]] for minute in sorted(counts)]


def add_wait_histograms(histograms: Iterable[list[list[int]]]) -> list[list[int]]:
    """The histogram of all the waits of several histograms (days, partitions)."""
    counts: Counter[int] = Counter()
    for histogram in histograms:
        for minute, count in histogram:
            counts[minute] += count
    return [[minute, counts[minute]] for minute in sorted(counts)]


def wait_histogram_percentile(histogram: list[list[int]], fraction: float) -> float | None:
    """The nearest-rank percentile of the waits a histogram counts, to the minute: the end
    of the minute the exact percentile falls in, so never under it and less than a minute
    over (except past WAIT_HISTOGRAM_MINUTES)."""
    minutes = sorted(histogram)
    at_or_below = list(accumulate(count for _minute, count in minutes))
    if not at_or_below or not at_or_below[-1]:
        return None
    rank = _nearest_rank(fraction, at_or_below[-1])
    return float(minutes[bisect_left(at_or_below, rank)][0] * WAIT_BUCKET_SECONDS)


@dataclass(slots=True)
class Period:
    """Reporting period (start, end] as instants; cases are evaluated as of `end`.

    Open at the start and closed at the end, like a day that runs to its 24:00: an instant
    at midnight belongs to the day that ends there, so consecutive periods never count one
    event twice."""

    start: float
    end: float

    def holds(self, instant: float | None) -> bool:
        return instant is not None and self.start < instant <= self.end


def notifying_sources(states: Iterable[CaseState], as_of: float) -> frozenset[str | None]:
    """The sources that had sent at least one `overdue` notice by `as_of` (§11.10)."""
    return frozenset(
        overdue_notice_source(fact)
        for state in states
        for fact in state.facts
        if fact.kind == "overdue" and fact.at <= as_of
    )


def overdue_notice_mismatch(view: CaseView, notifying: frozenset[str | None]) -> bool:
    """The source's overdue notices disagree with the monitor (rulebook §11.10): a notice
    came while the case was not overdue, or a case the monitor finds late or overdue has
    none though its source sends them."""
    if view.overdue_notice_unfounded:
        return True
    found = view.verdict == "late" or view.overdue
    return found and not view.source_flagged_overdue and view.source in notifying


def _figures_of(figures: dict[str, AgencyFigures], code: str) -> AgencyFigures:
    found = figures.get(code)
    if found is None:
        found = figures[code] = AgencyFigures()
    return found


# Complexity over the limit, on purpose: one count per figure of contract §6 and rulebook §8.
def add_case(  # noqa: C901
    figures: dict[str, AgencyFigures],
    view: CaseView,
    period: Period,
    notifying: frozenset[str | None],
) -> None:
    """Count one case (evaluated as of the period's end) into its agencies' figures.
    `notifying`: the sources that send overdue notices (`notifying_sources`)."""
    agency = _figures_of(figures, view.handling_agency)
    if period.holds(view.received_at):
        agency.received += 1
        channel = view.channel
        if channel == "counter":
            agency.received_counter += 1
        elif channel == "online":
            agency.received_online += 1
        else:
            agency.received_postal += 1
        agency.online_submission_share.count(channel == "online")
        agency.postal_share.count(channel == "postal" or view.returned_channel == "postal")
        if view.full_online_eligible:
            agency.full_online_share.count(view.full_online)
        if view.fee_bearing:
            agency.online_payment_share.count(view.paid_online)
        if view.due_mismatch:
            agency.due_date_mismatches += 1
    for at, from_unit, _to_unit, method in view.transfers:
        if period.holds(at):
            _figures_of(figures, from_unit).e_transfer_share.count(method == "electronic")
    if period.holds(view.late_paper_transfer_at):
        _figures_of(figures, view.centre).late_paper_transfers += 1
    # Rulebook §11.6: every approved case of a paper-result procedure, in the period of
    # its processing; a result the producer did not call electronic is not.
    if view.paper_result and period.holds(view.approved_at):
        agency.electronic_result_share.count(view.electronic_result is True)

    ended_in_period = view.ended and period.holds(view.end_at)
    handled = ended_in_period or view.status == "open"
    if not handled:
        return
    if ended_in_period:
        agency.ended += 1
        verdict = view.verdict
        if verdict == "early":
            agency.early += 1
        elif verdict == "on_time":
            agency.on_time += 1
        else:
            agency.late += 1
        agency.completed_on_time_rate.count(verdict != "late")
        if view.refusal_without_reason:
            agency.refusals_without_reason += 1
    elif view.overdue:
        agency.overdue_open += 1
    if overdue_notice_mismatch(view, notifying):
        agency.overdue_notice_mismatches += 1
    agency.service_index_on_time_rate.count(view.service_index_verdict == "on_time")
    agency.satisfaction_share.count(
        view.rating != "unsatisfied" and view.service_index_verdict == "on_time"
    )
    apology = view.apology
    if apology != "not_required":
        agency.apologies_required += 1
        agency.apology_compliance.count(apology == "issued_in_time")
        if apology == "issued_in_time":
            agency.apologies_in_time += 1
        elif apology == "issued_late":
            agency.apologies_late += 1
        else:
            agency.apologies_missing += 1
    if view.rescheduled_twice:
        agency.rescheduled_twice += 1
    if view.late_after_reschedule:
        agency.late_after_reschedule += 1


def add_visit(
    figures: dict[str, CentreFigures], visit: Visit, period: Period, target_seconds: float
) -> None:
    if not period.holds(visit.issued_at):
        return
    centre = figures.get(visit.centre)
    if centre is None:
        centre = figures[visit.centre] = CentreFigures()
    centre.recalls += visit.recalls
    if visit.no_show:
        centre.no_shows += 1
    elif visit.wait_seconds is None:
        centre.waiting_now += 1
    else:
        centre.waits.append(visit.wait_seconds)
        centre.wait_within_target.count(visit.wait_seconds <= target_seconds)


def agency_figures(
    rules: CaseRules, states: Iterable[CaseState], period: Period
) -> dict[str, AgencyFigures]:
    """The figures per agency of `states`, each case judged as of the period's end; the
    sources that send overdue notices are those among `states`."""
    states = list(states)
    notifying = notifying_sources(states, period.end)
    figures: dict[str, AgencyFigures] = {}
    for state in states:
        view = rules.evaluate(state, period.end)
        if view is not None:
            add_case(figures, view, period, notifying)
    return figures


def centre_figures(
    rules: QueueRules, states: Iterable[TicketState], period: Period
) -> dict[str, CentreFigures]:
    """The figures per centre of the tickets `states`, as of the period's end."""
    figures: dict[str, CentreFigures] = {}
    for state in states:
        visit = rules.evaluate(state, period.end)
        if visit is not None:
            add_visit(figures, visit, period, rules.wait_target_seconds)
    return figures


def province_total(agencies: Iterable[AgencyFigures]) -> AgencyFigures:
    total = AgencyFigures()
    for figures in agencies:
        total += figures
    return total


# ---- service index (Decision 766, rulebook §9) ------------------------------------------

_NOT_AVAILABLE = "not_available"


def service_index_groups(figures: AgencyFigures) -> dict[str, Any]:
    """The service-index groups as far as case events allow. Each group says whether it
    was computed in full, in part (`computed_max` of its points), or not at all."""

    def group(maximum: float, parts: list[tuple[float, float | None]]) -> dict[str, Any]:
        available = [(points, ratio) for points, ratio in parts if ratio is not None]
        if not available:
            return {"max": maximum, "status": _NOT_AVAILABLE, "score": None, "computed_max": 0}
        computed_max = sum(points for points, _ in available)
        score = sum(points * ratio for points, ratio in available)
        status = "computed" if computed_max == maximum else "partial"
        return {
            "max": maximum,
            "status": status,
            "score": round(score, 3),
            "computed_max": computed_max,
        }

    satisfaction = figures.satisfaction_share.ratio
    return {
        "publicity": group(18, []),
        "progress": group(20, [(20, figures.service_index_on_time_rate.ratio)]),
        "online_service": group(12, [(12, figures.full_online_share.ratio)]),
        "online_payment": group(10, [(6, figures.online_payment_share.ratio)]),
        # Electronic result (6 points); the digitised-case part (4) needs data the events
        # do not carry.
        "digitisation": group(22, [(6, figures.electronic_result_share.ratio)]),
        "satisfaction": group(
            18, [(6, None if satisfaction is None else min(1.0, satisfaction / 0.9))]
        ),
    }
