"""An entity's history as facts sorted by event time, each event applied once."""

from __future__ import annotations

from bisect import insort
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
