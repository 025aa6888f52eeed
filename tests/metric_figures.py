"""Replay-shaped figures rebuilt from metric samples, for comparing the metrics with
`onestop replay`: the same sums a Prometheus recording rule does."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

# (series name, label values as a dict, value), as a scrape gives them.
Sample = tuple[str, dict[str, str], float]


def _ratio(numerator: float, denominator: float) -> dict[str, Any]:
    return {"numerator": int(numerator), "denominator": int(denominator),
            "ratio": round(numerator / denominator, 6) if denominator else None}


def agency_figures(samples: Iterable[Sample]) -> dict[str, dict[str, Any]]:
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for name, labels, value in samples:
        name = name.removeprefix("onestop_").removesuffix("_total")
        # Late paper hand-offs are counted under the centre among the agencies' figures.
        agency = labels.get("centre" if name == "late_paper_transfers" else "agency")
        if agency is None:
            continue
        detail = labels.get("verdict") or labels.get("method") or labels.get("channel")
        sums[agency][name] += value
        if detail:
            sums[agency][f"{name}:{detail}"] += value
    figures = {}
    for agency, found in sums.items():
        ended = found["cases_ended"]
        early, on_time = found["cases_ended:early"], found["cases_ended:on_time"]
        figures[agency] = {
            "received": int(found["cases_received"]),
            "received_counter": int(found["cases_received:counter"]),
            "received_online": int(found["cases_received:online"]),
            "received_postal": int(found["cases_received:postal"]),
            "ended": int(ended), "early": int(early), "on_time": int(on_time),
            "late": int(found["cases_ended:late"]),
            "overdue_open": int(found["cases_overdue"]),
            "completed_on_time_rate": _ratio(early + on_time, ended),
            "e_transfer_share": _ratio(found["transfers:electronic"], found["transfers"]),
            "apologies_required": int(found["apologies_required"]),
            "apologies_in_time": int(found["apologies_in_time"]),
            "apologies_missing": int(found["apologies_missing"]),
            "apology_compliance": _ratio(found["apologies_in_time"], found["apologies_required"]),
            "online_payment_share": _ratio(found["fee_paid_online"], found["fee_cases"]),
            "full_online_share": _ratio(found["full_online"], found["full_online_eligible"]),
            "electronic_result_share": _ratio(found["electronic_results"], found["paper_results"]),
            "service_index_on_time_rate": _ratio(
                found["service_index_cases:on_time"], found["service_index_cases"]),
            "satisfaction_share": _ratio(
                found["service_index_satisfied_cases"], found["service_index_cases"]),
            "late_paper_transfers": int(found["late_paper_transfers"]),
        }
    return figures


def centre_figures(samples: Iterable[Sample]) -> dict[str, dict[str, Any]]:
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for name, labels, value in samples:
        centre = labels.get("centre")
        name = name.removeprefix("onestop_").removesuffix("_total")
        if centre is None or name == "late_paper_transfers":
            continue
        if name == "wait_seconds_bucket":
            if labels["le"] == "900.0":
                sums[centre]["within"] += value
        else:
            sums[centre][name] += value
    return {
        centre: {
            "visits_waited": int(found["wait_seconds_count"]),
            "wait_within_target": _ratio(found["within"], found["wait_seconds_count"]),
            "no_shows": int(found["no_shows"]),
            "recalls": int(found["recalls"]),
            "waiting_now": int(found["waiting_now"]),
        }
        for centre, found in sums.items()
    }


def replay_part(expected: dict[str, dict[str, Any]], shown: dict[str, dict[str, Any]]
                ) -> dict[str, dict[str, Any]]:
    """The replay's figures cut down to the keys the metrics show, for the same places."""
    return {place: {key: figures[key] for key in shown[next(iter(shown))]}
            for place, figures in expected.items()}
