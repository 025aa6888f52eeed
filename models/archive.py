"""Settled cases and tickets leave the live state (issue 16): when, and what becomes of an
event that arrives for one after it left.

The live worker holds a case until nothing can change its figures any more. Its final
state stays in the SQL store, marked archived; a late event for it is not started as a
new case but handed to the store, which adds the event's fact to the archived state
(`with_late_facts`), so that the reports still count it."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import TypeVar

from .case import CaseState, without_applicant
from .facts import Fact, is_closed, record
from .queue import TicketState

# The event that opens a case or a ticket: a history without it is only late facts (of
# one already archived) or facts whose opening has not come yet.
OPENING_KINDS = frozenset({"received", "ticket_issued"})

State = TypeVar("State", CaseState, TicketState)


def archive_horizon(newest_opening_at: float, now: float, window_days: int,
                    local_date: Callable[[float], dt.date]) -> dt.date:
    """The first local day whose figures may still change. The days before it are final:
    the live worker no longer judges them or holds what only touches them.

    Counted back `window_days` from the newest opening event applied (a receipt or a
    ticket issued; never later than now), not from the clock alone, so that a worker
    reading a backlog of past months (a reprocess, a backfill) keeps each case until the
    events of the following weeks came in, as it would have live. Not from the newest
    event of any kind: openings arrive in the order they happen, while a case's later
    events may come early (a source system sending a whole history at once) and would
    make days final too soon."""
    return local_date(min(newest_opening_at, now)) - dt.timedelta(days=window_days)


def settled(facts: tuple[Fact, ...], closing_kinds: frozenset[str], next_check: float,
            horizon: dt.date, local_date: Callable[[float], dt.date]) -> bool:
    """Whether a case or ticket may leave the live state: time alone can no longer change
    it (its next check is never), it is closed or was never opened, and its last fact
    falls on a final day (before `horizon`)."""
    if next_check != math.inf or local_date(facts[-1].at) >= horizon:
        return False
    return is_closed(facts, closing_kinds) or not any(
        fact.kind in OPENING_KINDS for fact in facts)


def with_late_facts(stored: State, late: State) -> State:
    """An archived state with the facts of events that arrived after it was archived
    (each once, in event-time order); an erasure request among them erases it."""
    facts = stored.facts
    for fact in late.facts:
        facts = record(facts, fact) or facts
    if isinstance(stored, CaseState):
        merged = CaseState(stored.case_id, facts, stored.emitted)
        if any(fact.kind == "applicant_erased" for fact in facts):
            merged = without_applicant(merged)
        return merged
    return TicketState(stored.ticket_id, facts, stored.wait_exceeded_sent)
