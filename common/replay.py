"""Batch driver: replays a JSON Lines file through the same rules as the live pipeline and
builds the replay output of contract §6."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from onestop.models.aggregates import (
    AgencyFigures,
    CentreFigures,
    Period,
    add_case,
    add_visit,
    notifying_sources,
    province_total,
)
from onestop.models.case import CaseRules, CaseState, CaseView, DerivedEvent
from onestop.models.events import QueueEvent, Rejection, decode_event
from onestop.models.judge import first_instant, judge_case, judge_ticket
from onestop.models.queue import QueueRules, TicketState

_QUEUE_EVENT_CLASSES = frozenset(QueueEvent.__args__)  # type: ignore[attr-defined]


# Lines between two freezes of the collector (see `feed_lines`) and two progress reports.
CHECKPOINT_EVERY = 10_000


@dataclass(slots=True)
class DeadLetter:
    """A rejected line: its number in the file, its text and the reason in plain words."""

    line: int
    text: str
    reason: str


@dataclass
class Replay:
    """Case and ticket states built from events fed one message at a time."""

    rules: CaseRules
    queue_rules: QueueRules
    # Derived events cost judging each case at every instant its outcome may change up to
    # the judging instant, as the live worker does; only when wanted.
    collect_derived: bool = False
    cases: dict[str, CaseState] = field(default_factory=dict)
    tickets: dict[str, TicketState] = field(default_factory=dict)
    derived: list[DerivedEvent] = field(default_factory=list)
    events: int = 0

    @classmethod
    def for_rules(cls, rules: CaseRules, collect_derived: bool = False) -> Replay:
        return cls(rules, QueueRules(rules.settings.wait_target_seconds), collect_derived)

    def feed(self, raw: bytes | str) -> str | None:
        """Apply one message; return the rejection reason, or None when it was used."""
        event = decode_event(raw)
        if type(event) is Rejection:
            return event.reason
        reason = self.rules.check(event)
        if reason is not None:
            return reason
        if type(event) in _QUEUE_EVENT_CLASSES:
            ticket_id = event.ticket_id  # type: ignore[union-attr]
            ticket, outputs = self.queue_rules.apply(self.tickets.get(ticket_id), event)  # type: ignore[arg-type]
            self.tickets[ticket_id] = ticket
        else:
            case_id = event.case_id  # type: ignore[union-attr]
            case, outputs = self.rules.apply(self.cases.get(case_id), event)  # type: ignore[arg-type]
            self.cases[case_id] = case
        if outputs:
            self.derived.extend(outputs)
        self.events += 1
        return None

    def feed_lines(
        self, lines: Iterable[bytes], progress: Callable[[int, int], None] | None = None
    ) -> Iterator[DeadLetter]:
        """Feed every non-blank line; yield each rejected one. `progress(lines, bytes)` is
        called every CHECKPOINT_EVERY lines.

        Case states live until the report, and Python's cyclic collector would otherwise
        walk all of them again and again as they grow (a tenth or more of the replay's time).
        They hold no reference cycles, so the states built so far are frozen out of the
        collector's sight every CHECKPOINT_EVERY lines."""
        feed = self.feed
        done = 0
        try:
            for number, line in enumerate(lines, 1):
                done += len(line)
                if number % CHECKPOINT_EVERY == 0:
                    gc.freeze()
                    if progress is not None:
                        progress(number, done)
                if not line.strip():
                    continue
                reason = feed(line)
                if reason is not None:
                    text = line.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")
                    yield DeadLetter(number, text, reason)
        finally:
            gc.unfreeze()

    def hold(self, state: CaseState | TicketState) -> None:
        """Keep a state built elsewhere (the pipeline's changelog, the SQL store)."""
        if isinstance(state, CaseState):
            self.cases[state.case_id] = state
        else:
            self.tickets[state.ticket_id] = state

    @property
    def latest(self) -> float:
        """The latest event time seen, the natural `as_of` of a file."""
        states = [*self.cases.values(), *self.tickets.values()]
        return max((state.facts[-1].at for state in states), default=float("-inf"))

    def views(self, as_of: float) -> Iterator[CaseView]:
        """Each case as of `as_of`; with `collect_derived`, also the derived events that
        came about by then, each case judged through its history as the live worker
        judges it (`models.judge`)."""
        rules = self.rules
        for case_id, state in self.cases.items():
            if self.collect_derived:
                judged = judge_case(rules, state, first_instant(state), as_of)
                self.cases[case_id] = judged.state
                self.derived.extend(judged.derived)
                view = judged.view
            else:
                view = rules.evaluate(state, as_of)
            if view is not None:
                yield view

    def report(
        self, as_of: float, period_from: dt.date | None = None, period_to: dt.date | None = None,
        by_procedure: bool = False,
    ) -> dict[str, Any]:
        """The replay JSON (contract §6). With a period, cases are judged as of the
        period's end (or `as_of` if earlier) and only cases handled in it are listed.
        `by_procedure` adds `procedures`: each procedure's cases counted as `agencies`
        counts them (procedure → agency → figures), for the report's breakdown; the
        replay's own output has no such key."""
        calendar = self.rules.calendar
        end = as_of if period_to is None else min(as_of, calendar.end_of_day(period_to))
        # The period opens at 24:00 of the day before `period_from` (see Period).
        start = float("-inf") if period_from is None else calendar.start_of_day(period_from)
        period = Period(start, end)
        agencies: dict[str, AgencyFigures] = {}
        procedures: dict[str, dict[str, AgencyFigures]] = {}
        cases: dict[str, Any] = {}
        late_paper: list[dict[str, Any]] = []
        notifying = notifying_sources(self.cases.values(), end)
        for view in self.views(end):
            add_case(agencies, view, period, notifying)
            if by_procedure:
                add_case(procedures.setdefault(view.procedure, {}), view, period, notifying)
            if period.holds(view.late_paper_transfer_at):
                late_paper.append(late_paper_transfer_json(view, calendar.isoformat))
            if (
                period.holds(view.received_at)
                or period.holds(view.end_at)
                or view.status == "open"
            ):
                cases[view.case_id] = case_json(view, calendar.isoformat)
        without_receipt = sum(
            1 for state in self.cases.values() if not any(f.kind == "received" for f in state.facts)
        )
        centres: dict[str, CentreFigures] = {}
        target = self.queue_rules.wait_target_seconds
        for ticket_id, ticket in self.tickets.items():
            if self.collect_derived:
                judged = judge_ticket(self.queue_rules, ticket, first_instant(ticket), end)
                self.tickets[ticket_id] = judged.state
                self.derived.extend(judged.derived)
                visit = judged.view
            else:
                visit = self.queue_rules.evaluate(ticket, end)
            if visit is not None:
                add_visit(centres, visit, period, target)
        figures = {
            "as_of": calendar.isoformat(as_of),
            "period": {
                "from": None if period_from is None else period_from.isoformat(),
                "to": None if period_to is None else period_to.isoformat(),
                "judged_as_of": calendar.isoformat(end),
            },
            "cases": cases,
            "agencies": {code: figures.to_json() for code, figures in sorted(agencies.items())},
            "centres": {code: figures.replay_json() for code, figures in sorted(centres.items())},
            "province": province_total(agencies.values()).to_json(),
            "findings": {
                "cases_without_receipt": without_receipt,
                "late_paper_transfers": sorted(late_paper, key=lambda item: item["case_id"]),
            },
        }
        if by_procedure:
            figures["procedures"] = {
                code: {agency: value.to_json() for agency, value in sorted(per_agency.items())}
                for code, per_agency in sorted(procedures.items())}
        return figures


def case_json(view: CaseView, isoformat: Callable[[float], str]) -> dict[str, Any]:
    return {
        "handling_agency": view.handling_agency,
        "status": view.status,
        "due_at": isoformat(view.due_at),
        "verdict": view.verdict,
        "service_index_verdict": view.service_index_verdict,
        "apology": view.apology,
        "rescheduled_twice": view.rescheduled_twice,
        "responsible": list(view.responsible),
        "procedure": view.procedure,
        "overdue": view.overdue,
        "supplement_requests": view.supplement_requests,
    }


def late_paper_transfer_json(view: CaseView, isoformat: Callable[[float], str]) -> dict[str, Any]:
    """A first paper hand-off that left the centre after its due (rulebook §11.11)."""
    return {
        "case_id": view.case_id,
        "centre": view.centre,
        "handling_agency": view.handling_agency,
        "accepted_at": isoformat(view.accepted_at),
        "due_at": isoformat(view.paper_handoff_due_at),  # type: ignore[arg-type]
        "handed_off_at": isoformat(view.late_paper_transfer_at),  # type: ignore[arg-type]
    }


def derived_json(event: DerivedEvent, isoformat: Callable[[float], str]) -> dict[str, Any]:
    details = {
        key: isoformat(value) if key.endswith("_at") else value
        for key, value in event.details.items()
    }
    return {
        "event_id": event.event_id,
        "type": event.type,
        "case_id": event.case_id or None,
        "agency": event.agency,
        "occurred_at": isoformat(event.occurred_at),
        **details,
    }
