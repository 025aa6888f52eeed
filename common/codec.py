"""What the pipeline writes to Kafka besides derived events: table entries, ticks, dead
letters."""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from onestop.models.case import CaseState
from onestop.models.facts import Fact
from onestop.models.queue import TicketState

# The key of the tick records that versions before the ticks topic wrote into the input
# topics (kept forever, so a reprocess reads them): no case or ticket id can be empty.
OLD_TICK_KEY = b""


class Entry(NamedTuple):
    """A table value: a case's or ticket's state and the source partition it belongs to,
    so that the partition's index can be rebuilt from the table after recovery."""

    partition: int
    state: CaseState | TicketState


def _tuples(value: Any) -> Any:
    """JSON arrays back to the tuples the rules keep."""
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


def encode_entry(entry: Entry) -> bytes:
    state = entry.state
    kind = "case" if isinstance(state, CaseState) else "ticket"
    facts = [[fact.at, fact.event_id, fact.kind, fact.data] for fact in state.facts]
    return orjson.dumps([entry.partition, kind, state[0], facts, state[2]])


def decode_entry(raw: bytes) -> Entry:
    partition, kind, key, facts, flag = orjson.loads(raw)
    facts = tuple(Fact(at, event_id, fact_kind, _tuples(data))
                  for at, event_id, fact_kind, data in facts)
    if kind == "case":
        return Entry(partition, CaseState(key, facts, flag))
    return Entry(partition, TicketState(key, facts, flag))


def encode_tick(now: float) -> bytes:
    return orjson.dumps({"tick": now})


def decode_tick(raw: bytes) -> float:
    return float(orjson.loads(raw)["tick"])


def dead_letter_json(
    raw: bytes | None, topic: str, partition: int, offset: int, reason: str, at: str
) -> dict[str, Any]:
    """Contract §7: the original text, where it came from, why, and when."""
    text = None if raw is None else raw.decode("utf-8", errors="backslashreplace")
    return {"original": text, "topic": topic, "partition": partition, "offset": offset,
            "reason": reason, "at": at}
