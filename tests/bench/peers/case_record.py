"""The per-case state both peers keep, so that they do the same work: its event count,
first and last event time, and status (the type of its latest event)."""

from __future__ import annotations

import datetime as dt


def updated_case(case: dict | None, event: dict) -> dict:
    """`case` (None: the case's first event) with `event` counted in."""
    at = dt.datetime.fromisoformat(event["occurred_at"]).timestamp()
    if case is None:
        case = {"count": 0, "first": at, "last": at, "status": event["type"]}
    case["count"] += 1
    case["first"] = min(case["first"], at)
    if at >= case["last"]:
        case["last"], case["status"] = at, event["type"]
    return case
