"""Targets are floors judged from counts; the service-index total only when complete."""

from __future__ import annotations

from onestop.models.aggregates import AgencyFigures, Ratio
from onestop.models.targets import judge


def figures(numerator: int, denominator: int) -> dict:
    return AgencyFigures(completed_on_time_rate=Ratio(numerator, denominator)).to_json()


def judged(value: dict, goals: dict, metric: str):
    return next(item for item in judge(value, goals, "agency") if item.target.metric == metric)


def test_a_share_meets_its_target_from_the_counts_not_a_rounded_ratio():
    goals = {"completed_on_time_rate": 0.95}
    assert judged(figures(19, 20), goals, "completed_on_time_rate").met is True
    # 0.9499999 would round to 0.95 at six digits; it still falls short.
    short = judged(figures(9_499_999, 10_000_000), goals, "completed_on_time_rate")
    assert short.met is False and (short.numerator, short.denominator) == (9_499_999, 10_000_000)
    assert judged(figures(0, 0), goals, "completed_on_time_rate").met is None
    assert judged(figures(19, 20), {}, "completed_on_time_rate").met is None


def test_the_service_index_total_is_not_judged_while_groups_are_missing():
    value = AgencyFigures(service_index_on_time_rate=Ratio(20, 20)).to_json()
    score = judged(value, {"service_index_score": 10}, "service_index_score")
    # Progress alone gives 20 points, above the goal of 10, yet publicity is not computable.
    assert score.value == 20 and score.met is None
    complete = {name: {"max": group["max"], "status": "computed", "score": group["max"],
                       "computed_max": group["max"]}
                for name, group in value["service_index"].items()}
    value["service_index"] = complete
    assert judged(value, {"service_index_score": 90}, "service_index_score").met is True


def test_centres_are_judged_on_waits_within_the_target():
    centre = {"wait_within_target": {"numerator": 8, "denominator": 10, "ratio": 0.8}}
    (item,) = judge(centre, {"wait_within_target_share": 0.9}, "centre")
    assert item.target.metric == "wait_within_target_share" and item.met is False
