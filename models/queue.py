"""Queue waits at the counter (rulebook §7): wait = first call − ticket issued."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .case import DerivedEvent, derived_event_id, first_instant_after
from .events import QueueEvent, ServiceCompleted, TicketCalled
from .facts import Fact, record

# Events after which a visit is done.
CLOSING_KINDS = frozenset({"service_completed", "ticket_abandoned"})


class TicketState(NamedTuple):
    ticket_id: str
    facts: tuple[Fact, ...]
    wait_exceeded_sent: bool = False


@dataclass(frozen=True, slots=True)
class Visit:
    """One queue ticket as of an instant."""

    ticket_id: str
    centre: str
    issued_at: float
    first_called_at: float | None
    counter: str | None
    wait_seconds: float | None  # None while not called, and for no-shows
    recalls: int
    no_show: bool
    service_seconds: float | None


def ticket_centre(state: TicketState) -> str:
    """The centre its events name (each queue event names the centre, first in its data)."""
    facts = state.facts
    return str(facts[0].data[0]) if facts and facts[0].data else ""


class QueueRules:
    def __init__(self, wait_target_seconds: int = 900) -> None:
        self.wait_target_seconds = wait_target_seconds

    def apply(
        self, state: TicketState | None, event: QueueEvent
    ) -> tuple[TicketState, list[DerivedEvent]]:
        if state is None:
            state = TicketState(event.ticket_id, ())
        data = (event.centre, event.counter if isinstance(event, TicketCalled | ServiceCompleted)
                else None)
        facts = record(state.facts, Fact(event.occurred_at.timestamp(), event.event_id,
                                         event.type, data))
        if facts is None:
            return state, []
        # As for cases, outputs come from ticks only: a wait judged on arrival would change
        # with the order the calls arrive in.
        return TicketState(state.ticket_id, facts, state.wait_exceeded_sent), []

    def on_tick(self, state: TicketState, now: float) -> tuple[TicketState, list[DerivedEvent]]:
        """A wait over the target: the first call's, or one still running at `now`."""
        return self.derive(state, self.evaluate(state, now), now)

    def derive(
        self, state: TicketState, visit: Visit | None, now: float
    ) -> tuple[TicketState, list[DerivedEvent]]:
        """`on_tick` for a visit already judged at `now`."""
        if visit is None or visit.no_show:
            return state, []
        waited = visit.wait_seconds if visit.wait_seconds is not None else now - visit.issued_at
        return self._wait_exceeded(state, visit, waited)

    def next_check(self, state: TicketState, visit: Visit | None, now: float) -> float:
        """The first instant after `now` at which time alone may change what `on_tick`
        gives: the target passing while the ticket waits, or a recorded event coming
        into view. Infinity when only a new event can change it."""
        # Facts are sorted by time: the first one after `now` is the next to come into view.
        candidates = [next((fact.at for fact in state.facts if fact.at > now), None)]
        if visit is not None and visit.first_called_at is None and not state.wait_exceeded_sent:
            candidates.append(visit.issued_at + self.wait_target_seconds)
        return first_instant_after(candidates, now)

    def _wait_exceeded(
        self, state: TicketState, visit: Visit, waited: float
    ) -> tuple[TicketState, list[DerivedEvent]]:
        if state.wait_exceeded_sent or waited <= self.wait_target_seconds:
            return state, []
        event = DerivedEvent(
            derived_event_id("wait_exceeded", state.ticket_id),
            "wait_exceeded",
            "",
            visit.centre,
            visit.issued_at + self.wait_target_seconds,
            {"ticket_id": state.ticket_id, "target_seconds": self.wait_target_seconds},
        )
        return TicketState(state.ticket_id, state.facts, True), [event]

    @staticmethod
    def evaluate(state: TicketState, as_of: float) -> Visit | None:
        """None until the ticket's issue is known: without it there is no wait to measure."""
        issued_at = first_called = completed_at = None
        centre = counter = None
        calls = 0
        abandoned = False
        for fact in state.facts:
            if fact.at > as_of:
                break
            kind = fact.kind
            if kind == "ticket_issued":
                if issued_at is None:
                    issued_at, centre = fact.at, fact.data[0]  # type: ignore[index]
            elif kind == "ticket_called":
                calls += 1
                if first_called is None:
                    first_called, counter = fact.at, fact.data[1]  # type: ignore[index]
            elif kind == "service_completed":
                completed_at = completed_at or fact.at
            elif kind == "ticket_abandoned":
                abandoned = True
        if issued_at is None or centre is None:
            return None
        # A ticket abandoned without being served is a no-show, whether or not it was called.
        no_show = abandoned and completed_at is None
        wait = None if no_show or first_called is None else first_called - issued_at
        service = (
            completed_at - first_called
            if completed_at is not None and first_called is not None
            else None
        )
        return Visit(
            ticket_id=state.ticket_id,
            centre=centre,
            issued_at=issued_at,
            first_called_at=first_called,
            counter=counter,
            wait_seconds=wait,
            recalls=max(0, calls - 1),
            no_show=no_show,
            service_seconds=service,
        )
