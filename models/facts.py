"""An entity's history as facts sorted by event time, each event applied once."""

from __future__ import annotations

import datetime as dt
from bisect import insort
from collections.abc import Callable
from typing import Any, NamedTuple


class Fact(NamedTuple):
    """What one event stated, in a compact form (an open case must stay small)."""

    at: float
    event_id: str
    kind: str
    data: tuple[Any, ...] | None


def record(facts: tuple[Fact, ...], fact: Fact) -> tuple[Fact, ...] | None:
    """`facts` with `fact` in event-time order (ties by event id, so the order does not
    depend on arrival), or None when an event with the same id was already recorded."""
    event_id = fact.event_id
    for known in facts:
        if known.event_id == event_id:
            return None
    if not facts or facts[-1] < fact:
        return (*facts, fact)
    ordered = list(facts)
    insort(ordered, fact)
    return tuple(ordered)


def history_full(facts: tuple[Fact, ...], limit: int) -> str | None:
    """Why one more event is refused for an entity that already holds `facts`, when an
    entity may hold `limit` events at most; None while there is room."""
    if len(facts) < limit:
        return None
    return f"its case or ticket already holds {len(facts):,} events, the most one may hold"


def days_touched(facts: tuple[Fact, ...], closing_kinds: frozenset[str],
                 local_date: Callable[[float], dt.date]) -> tuple[dt.date, dt.date | None]:
    """The local days an entity's per-day figures can touch: from its first fact's day to
    its last fact's day once it is closed (a closing fact in its history); None as the
    last day while it is open (every day up to now). The live worker republishes these
    days, and the backfill writes them."""
    closed_on = local_date(facts[-1].at) if is_closed(facts, closing_kinds) else None
    return local_date(facts[0].at), closed_on


def is_closed(facts: tuple[Fact, ...], closing_kinds: frozenset[str]) -> bool:
    return any(fact.kind in closing_kinds for fact in facts)
