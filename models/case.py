"""Case state, verdicts, apologies and derived events (rulebook §3–6, contract §5).

A case's state is the set of facts its events stated, kept sorted by event time. Applying
an event only records its fact (once per `event_id`); everything the rulebook asks —
due date, pauses, verdict, apology status, who is responsible — is read from the sorted
facts by `evaluate`. That makes the result independent of arrival order and duplicates by
construction, and keeps an open case small.

Derived events come from ticks (`on_tick`), which judge the whole history, never from a
single event; each fires once per case and kind (a bit in the state) with an id derived
from the case and kind, so reprocessing produces the same ids and consumers drop repeats.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from .calendar import SUPPORTED_YEARS, WorkingCalendar
from .events import CaseEvent, Event, Received
from .facts import Fact, record
from .reference import Procedure, Reference


@dataclass(frozen=True, slots=True)
class ApologyRule:
    """Lead time and re-scheduling limit for apology letters; versioned by receipt date."""

    lead_working_days: int = 1
    max_reschedules: int = 1


@dataclass(frozen=True, slots=True)
class RuleSettings:
    timezone: str = "Asia/Ho_Chi_Minh"
    # Decree 61/2018 for cases received before 2025-07-01; Decree 118/2025 after. The
    # rulebook sets Decree 118's values, by default, equal to Decree 61's.
    apology_decree_61: ApologyRule = ApologyRule()
    apology_decree_118: ApologyRule = ApologyRule()
    decree_118_from: dt.date = dt.date(2025, 7, 1)
    wait_target_seconds: int = 900
    # How long after a case ends its `case_closed` event waits for stragglers.
    allowed_lateness_seconds: int = 0


# ---- state ----------------------------------------------------------------------------


class CaseState(NamedTuple):
    case_id: str
    facts: tuple[Fact, ...]  # sorted by (at, event_id)
    emitted: int = 0  # bit set of DERIVED_KINDS already sent


DERIVED_KINDS = (
    "case_at_risk",
    "apology_required",
    "overdue_detected",
    "apology_missing",
    "rescheduled_twice",
    "case_closed",
    "refusal_without_reason",
)
_BIT = {kind: 1 << number for number, kind in enumerate(DERIVED_KINDS)}

_intern = sys.intern


def _optional_instant(value: dt.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _has_text(value: str | None) -> bool:
    return bool(value and value.strip())


def _received_data(event: Received) -> tuple[Any, ...]:
    applicant = event.applicant
    return (
        _intern(event.procedure),
        _intern(event.handling_agency),
        _intern(event.centre),
        event.channel,
        _optional_instant(event.due_at),
        event.fee,
        event.full_online,
        None
        if applicant is None
        else (applicant.name, applicant.address, applicant.phone, applicant.email),
        event.source,
    )


# Where the applicant sits in a `received` fact's data (contract §2: personal data), and
# the producing system after it (absent from states written before it was kept).
_PROCEDURE = 0
_HANDLING_AGENCY = 1
_APPLICANT = 7
_SOURCE = 8
# Facts after which a case's handling is over and its figures stop changing by the day
# (a rating or an apology may still come): when its state stops being judged day by day
# and the store marks it closed. Not the figures' "ended" (`ENDING_STATUSES`): a withdrawn
# case is closed but never counted as ended (rulebook §11.3).
CLOSING_KINDS = frozenset({"processed", "returned", "refused", "withdrawn", "stopped"})


def without_applicant(state: CaseState) -> CaseState:
    """The state with the applicant's personal data removed: for stores that keep cases
    beyond the pipeline, for a case that no longer needs it, and on request (the rules
    never read it)."""
    facts = tuple(
        fact._replace(data=(*fact.data[:_APPLICANT], None, *fact.data[_APPLICANT + 1:]))
        if fact.kind == "received" and fact.data and fact.data[_APPLICANT] is not None
        else fact
        for fact in state.facts
    )
    return state._replace(facts=facts)


def days_late(view: CaseView, as_of: float, calendar: WorkingCalendar) -> int:
    """Calendar days from the due day to the day processing ended, or to `as_of` for a case
    still open (0: not late). Due at 24:00 of 9 March (shown as 9 March, §11.13) and
    processed on 11 March: 2 days late."""
    end = view.end_at if view.end_at is not None else as_of
    if end <= view.due_at:
        return 0
    return max((calendar.day_ending(end) - calendar.day_ending(view.due_at)).days, 1)


def procedure_of(state: CaseState) -> str | None:
    """The procedure its receipt names; None before the receipt has come."""
    return next((fact.data[_PROCEDURE] for fact in state.facts
                 if fact.kind == "received" and fact.data), None)


def handling_agency_of(state: CaseState) -> str | None:
    """The handling agency its receipt names; None before the receipt has come."""
    return next((fact.data[_HANDLING_AGENCY] for fact in state.facts
                 if fact.kind == "received" and fact.data), None)


def holds_applicant(state: CaseState) -> bool:
    return any(fact.kind == "received" and fact.data and fact.data[_APPLICANT] is not None
               for fact in state.facts)


def applicant_needed(view: CaseView, now: float, allowed_lateness: float) -> bool:
    """Whether the case may still need its applicant's name and address: only for an
    apology letter (contract §2), so while it is open, or late without an apology, or
    until it is closed for good (`case_closed`: stragglers within the allowed lateness
    may still make it late). Decree 13/2023/NĐ-CP: kept no longer than its purpose needs."""
    settled = view.end_at is None or now >= view.end_at + allowed_lateness
    return view.status == "open" or view.apology == "missing" or not settled


# The part of each event the rules need, codes interned so that cases share them.
# supplement_requested, supplement_received, withdrawn and stopped state no more than
# their kind and instant.
_FACT_DATA: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "received": _received_data,
    "transferred": lambda e: (_intern(e.from_unit), _intern(e.to_unit), e.method),
    "processed": lambda e: (e.outcome, _has_text(e.reason), e.electronic_result),
    "apology_issued": lambda e: (_intern(e.agency), e.new_due_at.timestamp()),
    "paid": lambda e: (e.method, e.amount),
    "refused": lambda e: (e.stage, _has_text(e.reason)),
    "returned": lambda e: (e.channel,),
    "rated": lambda e: (e.rating,),
    "overdue": lambda e: (_optional_instant(e.due_at), e.source),
}


# The fields of each event type that name an agency of the reference data.
_AGENCY_FIELDS: dict[str, tuple[str, ...]] = {
    "received": ("handling_agency", "centre"),
    "transferred": ("from_unit", "to_unit"),
    "apology_issued": ("agency",),
    "ticket_issued": ("centre",),
    "ticket_called": ("centre",),
    "service_completed": ("centre",),
    "ticket_abandoned": ("centre",),
}


# ---- derived events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DerivedEvent:
    event_id: str
    type: str
    case_id: str
    agency: str
    occurred_at: float  # the instant the condition became true, not when it was noticed
    details: dict[str, Any] = field(default_factory=dict)


def derived_event_id(kind: str, key: str) -> str:
    return hashlib.blake2b(f"{kind}|{key}".encode(), digest_size=16).hexdigest()


# ---- reading a history ------------------------------------------------------------------


@dataclass(slots=True)
class History:
    """What a case's facts up to one instant state, gathered in one pass."""

    received: Fact | None = None
    transfers: list[tuple[float, str, str, str]] = field(default_factory=list)
    pauses: list[tuple[float, float | None]] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)
    apologies: list[tuple[float, str, float]] = field(default_factory=list)
    processed_at: float | None = None
    processed_data: tuple[Any, ...] | None = None
    returned_at: float | None = None
    returned_channel: str | None = None
    refused_at: float | None = None
    refused_data: tuple[Any, ...] | None = None
    stopped_at: float | None = None
    withdrawn_at: float | None = None
    paid_online: bool = False
    rating: str | None = None
    notices: list[float] = field(default_factory=list)  # the source's overdue notices


# Complexity over the limit, on purpose: one branch per kind of fact.
def read_history(facts: Iterable[Fact]) -> History:  # noqa: C901
    """The facts (sorted by time), each kept as the rules read it: the first receipt,
    processing, return and refusal; every hand-off, pause and apology."""
    history = History()
    for fact in facts:
        at = fact.at
        kind = fact.kind
        data: Any = fact.data
        if kind == "received":
            if history.received is None:
                history.received = fact
        elif kind == "transferred":
            history.transfers.append((at, *data))
        elif kind == "supplement_requested":
            history.request_times.append(at)
            pauses = history.pauses
            if not pauses or pauses[-1][1] is not None:
                pauses.append((at, None))
        elif kind == "supplement_received":
            pauses = history.pauses
            if pauses and pauses[-1][1] is None:
                pauses[-1] = (pauses[-1][0], at)
        elif kind == "apology_issued":
            history.apologies.append((at, data[0], data[1]))
        elif kind == "processed":
            if history.processed_at is None:
                history.processed_at, history.processed_data = at, data
        elif kind == "returned":
            if history.returned_at is None:
                history.returned_at, history.returned_channel = at, data[0]
        elif kind == "refused":
            if history.refused_at is None:
                history.refused_at, history.refused_data = at, data
        elif kind == "stopped":
            history.stopped_at = history.stopped_at or at
        elif kind == "withdrawn":
            history.withdrawn_at = history.withdrawn_at or at
        elif kind == "paid":
            history.paid_online = history.paid_online or data[0] == "online"
        elif kind == "rated":
            history.rating = data[0]
        elif kind == "overdue":
            history.notices.append(at)
    return history


def end_of_processing(history: History) -> tuple[float | None, str]:
    """When processing ended and the case's status (rulebook §4, §11.3, §11.4): processed
    (returned once the result went back; refused when the outcome was a refusal), else
    returned, else refused or stopped; a withdrawn case has no end."""
    processed_at, returned_at = history.processed_at, history.returned_at
    if processed_at is not None:
        if returned_at is not None:
            return processed_at, "returned"
        data = history.processed_data
        refused = data is not None and data[0] == "refused"
        return processed_at, "refused" if refused else "processed"
    if returned_at is not None:
        return returned_at, "returned"
    ends = [at for at in (history.refused_at, history.stopped_at) if at is not None]
    if ends:
        end_at = min(ends)
        return end_at, "refused" if end_at == history.refused_at else "stopped"
    if history.withdrawn_at is not None:
        return None, "withdrawn"
    return None, "open"


def service_index_verdict(
    status: str,
    supplement_requests: int,
    verdict: str | None,
    overdue: bool,
    open_pause_start: float | None,
    due_before_open_pause: float | None,
) -> str | None:
    """The progress verdict of Decision 766, indicator 2.1: more than one supplement
    request is late; an applicant who never returns ends the case at the request (late if
    it came after the due instant); a withdrawn case is not counted (§11.3)."""
    if status == "withdrawn":
        return None
    if supplement_requests > 1:
        return "late"
    if verdict is not None:
        return "late" if verdict == "late" else "on_time"
    if open_pause_start is not None and due_before_open_pause is not None:
        return "late" if open_pause_start > due_before_open_pause else "on_time"
    return "late" if overdue else "on_time"


def apology_status(apologies: list[tuple[float, str, float]], deadline: float) -> str:
    """For a case that is late or overdue (rulebook §6): the first apology issued before
    the deadline (24:00 of the last working day before the due day; 24:00 itself is late,
    §11.2) is in time."""
    if not apologies:
        return "missing"
    return "issued_in_time" if apologies[0][0] < deadline else "issued_late"


def refusal_without_reason_at(history: History) -> float | None:
    """When the case was refused without written reasons (rulebook §6), if it was."""
    if history.refused_data is not None and not history.refused_data[1]:
        return history.refused_at
    data = history.processed_data
    if data is not None and data[:2] == ("refused", False):
        return history.processed_at
    return None


# ---- evaluation -----------------------------------------------------------------------

ENDING_STATUSES = ("processed", "returned", "refused", "stopped")


def first_instant_after(instants: Iterable[float | None], now: float) -> float:
    """The earliest instant just past one of `instants` that is later than `now`.

    Conditions such as "past the due instant" hold only strictly after it, hence the
    next representable float rather than the instant itself."""
    later = (math.nextafter(at, math.inf) for at in instants if at is not None)
    return min((at for at in later if at > now), default=math.inf)


@dataclass(slots=True)
class CaseView:
    """Everything the rulebook says about one case, as of one instant. Never changed once
    made: `evaluate` may give the same view to several callers."""

    case_id: str
    procedure: str
    handling_agency: str
    centre: str
    channel: str
    received_at: float
    accepted_at: float
    status: str
    legal_due_at: float
    receipt_due_at: float | None
    due_at: float  # receipt's (or legal) due instant, moved by pauses
    end_at: float | None
    verdict: str | None
    service_index_verdict: str | None  # None for a withdrawn case (rulebook §11.3)
    apology: str
    apologies: int
    rescheduled_twice: bool
    late_after_reschedule: bool
    rescheduled_at: float | None  # the apology that re-scheduled once too often
    responsible: tuple[str, ...]
    holder: str
    supplement_requests: int
    paused: bool
    overdue: bool  # open and past its due instant
    fee_bearing: bool
    paid_online: bool
    full_online: bool
    full_online_eligible: bool
    paper_result: bool
    returned_channel: str | None
    electronic_result: bool | None
    approved_at: float | None  # processed with outcome approved (§11.6)
    rating: str | None
    refusal_without_reason_at: float | None  # a refusal without written reasons, when
    source: str | None  # the producing system its receipt named (§11.10)
    source_flagged_overdue: bool
    overdue_notice_unfounded: bool  # a source's overdue notice before it was overdue
    transfers: tuple[tuple[float, str, str, str], ...]
    apology_deadline: float | None  # None for a case that cannot be late any more
    risk_at: float | None
    paper_handoff_due_at: float | None  # when its first hand-off is on paper (§11.11)
    late_paper_transfer_at: float | None  # that hand-off, when it left after its due
    applicant: tuple[str | None, ...] | None = None

    @property
    def due_mismatch(self) -> bool:
        """The receipt's due date differs from the legal one: a data-quality finding."""
        return self.receipt_due_at is not None and self.receipt_due_at != self.legal_due_at

    @property
    def refusal_without_reason(self) -> bool:
        return self.refusal_without_reason_at is not None

    @property
    def ended(self) -> bool:
        return self.status in ENDING_STATUSES

    def at_risk(self, now: float) -> bool:
        """At risk at `now` (rulebook §6, §11.12): open, no apology issued, and from the
        first working instant of the last working day before the due day until the due
        instant, so its holder still has that day to finish or apologise in time."""
        return (self.status == "open" and self.apologies == 0 and self.risk_at is not None
                and self.risk_at <= now < self.due_at)


# How many receipts' calendar sums a CaseRules keeps (see its constructor).
_CALENDAR_CACHE = 4096
# How many cases' last views a CaseRules keeps (`evaluate`): a worker's open cases, so that
# each day's figures find theirs from one tick to the next; about 0.5 kB each.
_VIEW_CACHE = 65_536


def _instant(fact: Fact) -> float:
    return fact.at


class CaseRules:
    """The case rules for one province's reference data; pure, no I/O, no wall clock."""

    def __init__(
        self,
        reference: Reference,
        calendar: WorkingCalendar | None = None,
        settings: RuleSettings | None = None,
    ) -> None:
        self.reference = reference
        self.settings = settings or RuleSettings()
        self.calendar = calendar or WorkingCalendar.from_reference(
            reference, self.settings.timezone
        )
        # Judging a case walks its history instant by instant (models/judge.py) and
        # evaluates it at each: the same receipt gives the same calendar sums each time.
        # Bounded: a case's walk is consecutive, so a small cache serves it.
        self._acceptance = lru_cache(maxsize=_CALENDAR_CACHE)(self.calendar.acceptance)
        self._legal_due = lru_cache(maxsize=_CALENDAR_CACHE)(
            lambda code, accepted_at, centre: self.legal_due(
                self.reference.procedures[code], accepted_at, centre))
        self._apology_times_of = lru_cache(maxsize=_CALENDAR_CACHE)(self._apology_times)
        # Of recently evaluated cases: the facts, how many were in view, and the view.
        self._views: dict[str, tuple[tuple[Fact, ...], int, CaseView]] = {}

    # ---- input checks ---------------------------------------------------------------

    def check(self, event: Event) -> str | None:
        """Why an otherwise well-formed event cannot be used, or None."""
        declared = type(event).model_fields  # not an unknown extra field of that name
        for name in ("occurred_at", "due_at", "new_due_at"):
            value = getattr(event, name) if name in declared else None
            if value is not None and not self.calendar.supports(value.timestamp()):
                first, end = SUPPORTED_YEARS
                return (
                    f"field '{name}': {value.isoformat()} is outside the years the working "
                    f"calendar supports ({first}–{end - 1})"
                )
        if isinstance(event, Received) and event.procedure not in self.reference.procedures:
            return f"unknown procedure code '{event.procedure}'"
        # Codes become metric labels and topic keys: only the province's own (never a
        # case id or an address sent in the wrong field).
        for name in _AGENCY_FIELDS.get(event.type, ()):
            code = getattr(event, name)
            if code not in self.reference.agencies:
                return f"field '{name}': unknown agency code '{code}'"
        return None

    # ---- transitions ----------------------------------------------------------------

    def apply(
        self, state: CaseState | None, event: CaseEvent
    ) -> tuple[CaseState, list[DerivedEvent]]:
        """Record an event's fact; a repeated `event_id` changes nothing.

        An event alone brings no output: every derived event comes from `on_tick`, which
        judges the whole history, so that no output depends on the order events arrive in
        (a refusal's agency, say, is only known once the `received` event is in)."""
        if state is None:
            state = CaseState(event.case_id, ())
        kind = event.type
        extract = _FACT_DATA.get(kind)
        fact = Fact(
            event.occurred_at.timestamp(), event.event_id, kind, extract(event) if extract else None
        )
        facts = record(state.facts, fact)
        if facts is None:
            return state, []
        state = CaseState(state.case_id, facts, state.emitted)
        if kind in ("applicant_erased", "received") and any(
                fact.kind == "applicant_erased" for fact in facts):
            # Erased at once, and a receipt that arrives after the request stays erased.
            state = without_applicant(state)
        return state, []

    def on_tick(self, state: CaseState, now: float) -> tuple[CaseState, list[DerivedEvent]]:
        """Outputs that time alone brings about: at risk, overdue, apologies, closing."""
        view = self.evaluate(state, now)
        if view is None:
            return state, []
        return self.derive(state, view, now)

    @staticmethod
    def _emit(
        state: CaseState, kind: str, at: float, details: dict[str, Any], agency: str
    ) -> tuple[CaseState, list[DerivedEvent]]:
        bit = _BIT[kind]
        if state.emitted & bit:
            return state, []
        event = DerivedEvent(
            derived_event_id(kind, state.case_id), kind, state.case_id, agency, at, details
        )
        return CaseState(state.case_id, state.facts, state.emitted | bit), [event]

    def derive(
        self, state: CaseState, view: CaseView, now: float
    ) -> tuple[CaseState, list[DerivedEvent]]:
        """The derived events that hold for `view` at `now`, each once per case."""
        outputs: list[DerivedEvent] = []

        def emit(kind: str, at: float, details: dict[str, Any], agency: str = "") -> None:
            nonlocal state
            state, new = self._emit(state, kind, at, details, agency or view.handling_agency)
            outputs.extend(new)

        if view.at_risk(now) and view.risk_at is not None:
            emit("case_at_risk", view.risk_at, {"due_at": view.due_at, "holder": view.holder},
                 view.holder)
        if view.overdue:
            emit("overdue_detected", view.due_at, {"due_at": view.due_at, "holder": view.holder})
        if view.apology != "not_required":
            emit("apology_required", view.due_at, {"due_at": view.due_at})
            if view.apology == "missing":
                emit("apology_missing", view.due_at, {"due_at": view.due_at,
                                                      "holder": view.holder}, view.holder)
        if view.refusal_without_reason_at is not None:
            emit("refusal_without_reason", view.refusal_without_reason_at, {})
        if view.rescheduled_at is not None:
            emit("rescheduled_twice", view.rescheduled_at, {"apologies": view.apologies})
        if (
            view.end_at is not None
            and view.ended
            and now >= view.end_at + self.settings.allowed_lateness_seconds
        ):
            emit(
                "case_closed",
                view.end_at,
                {"verdict": view.verdict, "responsible": list(view.responsible),
                 "status": view.status},
            )
        return state, outputs

    def next_check(self, state: CaseState, view: CaseView | None, now: float) -> float:
        """The first instant after `now` at which time alone may change what `on_tick`
        gives for this case: just past a deadline, or a recorded event coming into view.
        Infinity when only a new event can change it. A live driver need not judge the
        case again before then."""
        # Facts are sorted by time: the first one after `now` is the next to come into view.
        facts = state.facts
        following = bisect_right(facts, now, key=_instant)
        candidates = [facts[following].at if following < len(facts) else None]
        if view is not None:
            candidates += [view.risk_at, view.due_at, view.apology_deadline]
            if view.end_at is not None:
                candidates.append(view.end_at + self.settings.allowed_lateness_seconds)
        return first_instant_after(candidates, now)

    # ---- reading the facts ----------------------------------------------------------

    def _apology_rule_at(self, received_at: float) -> ApologyRule:
        settings = self.settings
        if self.calendar.local_date(received_at) < settings.decree_118_from:
            return settings.apology_decree_61
        return settings.apology_decree_118

    def legal_due(self, procedure: Procedure, accepted_at: float, centre: str) -> float:
        """The due instant the law gives a case accepted at `accepted_at` (rulebook §3)."""
        calendar = self.calendar
        day = calendar.local_date(accepted_at)
        unit = procedure.limit_unit
        if unit == "working_days":
            return calendar.end_of_day(calendar.add_working_days(day, _whole(procedure.limit)))
        if unit == "calendar_days":
            last = day + dt.timedelta(days=_whole(procedure.limit))
            return calendar.end_of_day(calendar.next_working_day_from(last))
        if unit == "working_hours":
            return calendar.add_working_seconds(accepted_at, procedure.limit * 3600, centre)
        # same_day: end of the acceptance day, or of the next working day after the cut-off
        if calendar.after_cutoff(accepted_at, procedure.same_day_cutoff):
            day = calendar.add_working_days(day, 1)
        return calendar.end_of_day(day)

    def paper_handoff_due(self, accepted_at: float, centre: str) -> float:
        """By when the centre's first paper hand-off must leave (rulebook §11.11): the close
        of the acceptance day if accepted by the centre's cut-off (15:00 itself included),
        else the end of the next working day's first working period."""
        calendar = self.calendar
        day = calendar.local_date(accepted_at)
        if not calendar.after_cutoff(accepted_at, self.reference.handoff_cutoff(centre)):
            return calendar.period_ends(day, centre)[-1]
        return calendar.period_ends(calendar.add_working_days(day, 1), centre)[0]

    def evaluate(
        self, state: CaseState, as_of: float, judge_notices: bool = True
    ) -> CaseView | None:
        """The case as the rulebook sees it at `as_of` (facts after `as_of` are ignored).
        None when no `received` event has arrived yet: a case without receipt has no clock.
        `judge_notices=False` leaves the source's overdue notices unjudged (each is judged
        by evaluating the case at the notice's instant)."""
        facts = state.facts
        in_view = bisect_right(facts, as_of, key=_instant)
        if not judge_notices:
            return self._evaluate(state, in_view, as_of, False)
        # Judging walks a case's instants and the per-day figures evaluate it at each
        # day's end: mostly with the same facts in view and a view that time alone leaves
        # as it was (`_unchanged_at`), then given again instead of computed again.
        kept = self._views.get(state.case_id)
        if (kept is not None and kept[0] is facts and kept[1] == in_view
                and self._unchanged_at(kept[2], as_of)):
            return kept[2]
        view = self._evaluate(state, in_view, as_of, True)
        views = self._views
        views.pop(state.case_id, None)
        if view is not None and self._unchanged_at(view, as_of):
            if len(views) >= _VIEW_CACHE:
                del views[next(iter(views))]
            views[state.case_id] = (facts, in_view, view)
        return view

    def _unchanged_at(self, view: CaseView, as_of: float) -> bool:
        """Whether `view`, evaluated with the same facts in view at another instant, is the
        case's view at `as_of` too. Given the facts, only an open case's view depends on
        the instant: a pause still open moves its due instant; past the due instant it is
        overdue, the last apology's new due decides `late_after_reschedule`, and the step
        budgets `responsible` (both counted until the instant). Any other case's clock
        stopped at a fact."""
        if view.status != "open":
            return True
        if view.paused:
            return False
        overdue = as_of > view.due_at
        if overdue != view.overdue:
            return False
        return not overdue or (
            view.apologies == 0 and not self.reference.procedures[view.procedure].steps)

    def _evaluate(
        self, state: CaseState, in_view: int, as_of: float, judge_notices: bool
    ) -> CaseView | None:
        history = read_history(state.facts[:in_view])
        received = history.received
        if received is None:
            return None
        calendar = self.calendar
        stated = received.data or ()
        (procedure_code, agency, centre, channel, receipt_due, fee, full_online,
         applicant) = stated[:_SOURCE]
        source = stated[_SOURCE] if len(stated) > _SOURCE else None
        procedure = self.reference.procedures[procedure_code]
        accepted_at = self._acceptance(received.at, centre)
        end_at, status = end_of_processing(history)

        # A request after the end of processing is not part of it.
        end_or_now = end_at if end_at is not None else as_of
        supplement_requests = sum(1 for at in history.request_times if at <= end_or_now)
        legal_due = self._legal_due(procedure_code, accepted_at, centre)
        base_due = legal_due if receipt_due is None else receipt_due
        clock_stop = end_at if end_at is not None else (history.withdrawn_at or as_of)
        due_at, due_before_open_pause = self._paused_due(
            base_due, history.pauses, accepted_at, clock_stop, centre)
        paused = bool(history.pauses) and history.pauses[-1][1] is None and status == "open"
        due_day = calendar.day_ending(due_at)
        verdict = self._verdict(end_at, due_at, due_day)
        overdue = status == "open" and as_of > due_at
        si_verdict = service_index_verdict(
            status, supplement_requests, verdict, overdue,
            history.pauses[-1][0] if paused else None, due_before_open_pause)

        apologies = history.apologies
        apology_deadline = risk_at = rule = None
        apology = "not_required"
        late = verdict == "late" or overdue
        if status == "open" or verdict == "late":
            rule = self._apology_rule_at(received.at)
            apology_deadline, risk_at = self._apology_times_of(due_day, rule, centre)
            if late:
                apology = apology_status(apologies, apology_deadline)
        elif apologies:
            rule = self._apology_rule_at(received.at)
        late_after_reschedule = bool(apologies) and late and end_or_now > apologies[-1][2]

        transfers = history.transfers
        holders = self._holding_periods(accepted_at, agency, transfers)
        responsible: tuple[str, ...] = ()
        if late:
            responsible = self._responsible(procedure, holders, due_at, centre, end_at or as_of)

        processed_data = history.processed_data
        approved_at = None
        if processed_data is not None and processed_data[0] == "approved":
            approved_at = history.processed_at
        paper_handoff_due_at = late_paper_transfer_at = None
        if transfers and transfers[0][3] == "paper":
            paper_handoff_due_at = self.paper_handoff_due(accepted_at, centre)
            if transfers[0][0] > paper_handoff_due_at:
                late_paper_transfer_at = transfers[0][0]
        # A notice is founded when the case was overdue at its instant (§11.10).
        overdue_notice_unfounded = judge_notices and any(
            not getattr(self.evaluate(state, notice, judge_notices=False), "overdue", False)
            for notice in history.notices
        )
        rescheduled_at = None
        if rule is not None and len(apologies) > rule.max_reschedules:
            rescheduled_at = apologies[rule.max_reschedules][0]
        return CaseView(
            case_id=state.case_id,
            procedure=procedure_code,
            handling_agency=agency,
            centre=centre,
            channel=channel,
            received_at=received.at,
            accepted_at=accepted_at,
            status=status,
            legal_due_at=legal_due,
            receipt_due_at=receipt_due,
            due_at=due_at,
            end_at=end_at,
            verdict=verdict,
            service_index_verdict=si_verdict,
            apology=apology,
            apologies=len(apologies),
            rescheduled_twice=rescheduled_at is not None,
            late_after_reschedule=late_after_reschedule,
            rescheduled_at=rescheduled_at,
            responsible=responsible,
            holder=holders[-1][1],
            supplement_requests=supplement_requests,
            paused=paused,
            overdue=overdue,
            fee_bearing=(fee > 0) if fee is not None else bool(procedure.fee_bearing),
            paid_online=history.paid_online,
            full_online=bool(full_online),
            full_online_eligible=bool(procedure.full_online_eligible),
            paper_result=bool(procedure.paper_result),
            returned_channel=history.returned_channel,
            electronic_result=processed_data[2] if processed_data is not None else None,
            approved_at=approved_at,
            rating=history.rating,
            refusal_without_reason_at=refusal_without_reason_at(history),
            source=source,
            source_flagged_overdue=bool(history.notices),
            overdue_notice_unfounded=overdue_notice_unfounded,
            transfers=tuple(transfers),
            apology_deadline=apology_deadline,
            risk_at=risk_at,
            paper_handoff_due_at=paper_handoff_due_at,
            late_paper_transfer_at=late_paper_transfer_at,
            applicant=applicant,
        )

    def _paused_due(
        self,
        due: float,
        pauses: list[tuple[float, float | None]],
        accepted_at: float,
        clock_stop: float,
        centre: str,
    ) -> tuple[float, float | None]:
        """The due instant moved by the supplement pauses (rulebook §3, §11.9), and where it
        stood when the pause still open began. The clock stops while the applicant
        completes the file, counted from acceptance to the end of processing (an open
        pause runs to `clock_stop`). A request made once the case is past its due instant
        gives nothing back: the case is already late (§11.1)."""
        calendar = self.calendar
        before_open_pause = None
        for start, finish in pauses:
            start = max(start, accepted_at)
            stop = min(finish if finish is not None else clock_stop, clock_stop)
            if finish is None:
                before_open_pause = due
            if start >= due or stop <= start:
                continue
            paused_seconds = calendar.working_seconds_between(start, stop, centre)
            due = move_due(calendar, due, paused_seconds, centre)
        return due, before_open_pause

    def _verdict(self, end_at: float | None, due_at: float, due_day: dt.date) -> str | None:
        """Early, on time or late (rulebook §4): ended on a day before the due day, on the
        due day by the due instant, or after it; None while the case has not ended."""
        if end_at is None:
            return None
        if end_at > due_at:
            return "late"
        if self.calendar.local_date(end_at) < due_day:
            return "early"
        return "on_time"

    def _apology_times(
        self, due_day: dt.date, rule: ApologyRule, centre: str
    ) -> tuple[float, float]:
        """The apology deadline (24:00 of the last working day `rule` allows before the due
        day) and the instant the case becomes at risk: that day's first working instant
        (rulebook §6, §11.12)."""
        calendar = self.calendar
        deadline_day = calendar.add_working_days(due_day, -rule.lead_working_days)
        return (calendar.end_of_day(deadline_day),
                calendar.acceptance(calendar.start_of_day(deadline_day), centre))

    @staticmethod
    def _holding_periods(
        accepted_at: float, agency: str, transfers: list[tuple[float, str, str, str]]
    ) -> list[tuple[float, str]]:
        """(since, unit) for each unit that held the case; the first holder is the first
        hand-off's sender, or the handling agency when there was no hand-off."""
        if not transfers:
            return [(accepted_at, agency)]
        holders = [(accepted_at, transfers[0][1])]
        holders.extend((at, to_unit) for at, _, to_unit, _ in transfers)
        return holders

    def _responsible(
        self,
        procedure: Procedure,
        holders: list[tuple[float, str]],
        due_at: float,
        centre: str,
        until: float,
    ) -> tuple[str, ...]:
        """Units whose steps overran their budgets; without budgets (or with none overrun),
        the unit holding the case when it passed its due instant (rulebook §5)."""
        overran: list[str] = []
        if procedure.steps:
            for number, (since, unit) in enumerate(holders):
                if number >= len(procedure.steps):
                    break
                end = holders[number + 1][0] if number + 1 < len(holders) else until
                held = self.calendar.working_seconds_between(since, end, centre)
                if held > procedure.steps[number].budget_seconds and unit not in overran:
                    overran.append(unit)
        if overran:
            return tuple(overran)
        holder = holders[0][1]
        for since, unit in holders:
            if since <= due_at:
                holder = unit
        return (holder,)


def move_due(
    calendar: WorkingCalendar, due: float, paused_seconds: float, centre: str
) -> float:
    """A due instant moved later by paused working time, keeping its form (rulebook
    §11.9): counted on the working-time line from the due instant (one outside working
    hours sits at the last working instant before it); a due at the end of a day moves to
    the end of the day the moved instant falls in, any other due to the moved instant."""
    if paused_seconds <= 0:
        return due
    moved = calendar.add_working_seconds(due, paused_seconds, centre)
    if calendar.is_end_of_day(due):
        return calendar.end_of_day(calendar.day_ending(moved))
    return moved


def overdue_notice_source(fact: Fact) -> str | None:
    """The system that sent an `overdue` notice (None for states kept before it was)."""
    data = fact.data or ()
    return data[1] if len(data) > 1 else None


def _whole(limit: float) -> int:
    """Whole days of a limit; a fractional limit is rounded up so that no agency is judged
    against a period shorter than the law gives it."""
    whole = int(limit)
    return whole if whole == limit else whole + 1
