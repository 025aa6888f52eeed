"""The province's targets (rulebook §8–10): which figure each target is read against and
whether it is met. Every target is a floor: met when the value reaches it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Target:
    metric: str
    scope: str  # "agency" (agency and province figures) or "centre"


# Their names, as people read them, are in consumers/glossary.py (TARGET_NAMES).
TARGETS = (
    Target("completed_on_time_rate", "agency"),
    Target("service_index_on_time_rate", "agency"),
    Target("apology_compliance", "agency"),
    Target("e_transfer_share", "agency"),
    Target("online_submission_share", "agency"),
    Target("postal_share", "agency"),
    Target("online_payment_share", "agency"),
    Target("electronic_result_share", "agency"),
    Target("satisfaction_share", "agency"),
    Target("service_index_score", "agency"),
    Target("wait_within_target_share", "centre"),
)

_FIGURE_OF = {"wait_within_target_share": "wait_within_target"}


@dataclass(frozen=True, slots=True)
class Judged:
    target: Target
    value: float | None  # a share in 0..1, or points for the score
    numerator: int | None
    denominator: int | None
    goal: float | None
    met: bool | None  # None: no data, no target, or only part of it computable


def judge(figures: dict[str, Any], goals: dict[str, float], scope: str) -> list[Judged]:
    """Each target of `scope` against `figures` (the replay JSON of one agency, the
    province or one centre)."""
    judged = []
    for target in TARGETS:
        if target.scope != scope:
            continue
        goal = goals.get(target.metric)
        if target.metric == "service_index_score":
            groups = figures["service_index"].values()
            computed = [group for group in groups if group["score"] is not None]
            value = sum(group["score"] for group in computed) if computed else None
            # The score is out of 100 only when every group is computed (rulebook §9):
            # part of the points is never judged against the whole target.
            complete = all(group["status"] == "computed" for group in groups)
            met = None if value is None or goal is None or not complete else value >= goal
            judged.append(Judged(target, value, None, None, goal, met))
            continue
        ratio = figures[_FIGURE_OF.get(target.metric, target.metric)]
        numerator, denominator = ratio["numerator"], ratio["denominator"]
        # From the counts, not the rounded ratio, so that a value just short of the goal
        # is never rounded up to meet it.
        value = numerator / denominator if denominator else None
        met = None if value is None or goal is None else value >= goal
        judged.append(Judged(target, value, numerator, denominator, goal, met))
    return judged
