"""The demo's terminal view: figures gathered from the aggregates topic.

Each aggregate record holds one agency's (or centre's) figures for one local day and one
partition. Flows (cases received, ended, judged; hand-offs; visits) add up across days
and partitions; backlogs (overdue open cases, apologies missing) are the latest day's.
Wait percentiles come from the waits per minute summed over days and partitions: exact to
the minute (models.aggregates.wait_histogram_percentile).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from onestop.models.aggregates import add_wait_histograms, wait_histogram_percentile

# Figures that count what happened in the day: summed over days and partitions.
FLOWS = ("received", "ended", "early", "on_time", "late", "completed_on_time_rate",
         "e_transfer_share", "apologies_required")
# Figures that describe the open cases at the day's end: the latest day's, summed over
# partitions.
BACKLOGS = ("overdue_open", "apologies_missing", "service_index_on_time_rate")
CENTRE_FLOWS = ("visits_waited", "wait_within_target")


def _add(total: dict[str, Any], figures: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        value = figures[name]
        if isinstance(value, dict):
            ratio = total.setdefault(name, {"numerator": 0, "denominator": 0})
            ratio["numerator"] += value["numerator"]
            ratio["denominator"] += value["denominator"]
            ratio["ratio"] = (
                ratio["numerator"] / ratio["denominator"] if ratio["denominator"] else None
            )
        else:
            total[name] = total.get(name, 0) + value


def _zeros(names: tuple[str, ...]) -> dict[str, Any]:
    return {
        name: {"numerator": 0, "denominator": 0, "ratio": None}
        if name.endswith(("_rate", "_share")) else 0
        for name in names
    }


class LiveFigures:
    def __init__(self) -> None:
        self.records: dict[bytes, dict[str, Any]] = {}
        self.as_of = ""

    def add(self, key: bytes, record: dict[str, Any] | None) -> None:
        """One record of the compacted topic: the newest per key counts, None deletes."""
        if record is None:
            self.records.pop(key, None)
            return
        self.records[key] = record
        self.as_of = max(self.as_of, record["as_of"])

    def report(self) -> dict[str, Any]:
        """The figures in the shape of the replay JSON, for the same tables."""
        latest: dict[tuple[str, str], str] = {}
        for record in self.records.values():
            place = (record["scope"], record["code"])
            latest[place] = max(latest.get(place, ""), record["day"])
        agencies: dict[str, dict[str, Any]] = defaultdict(dict)
        centres: dict[str, dict[str, Any]] = defaultdict(dict)
        # None: a record of a worker older than the histograms, whose waits are unknown.
        histograms: dict[str, list[list[list[int]] | None]] = defaultdict(list)
        for record in self.records.values():
            code, figures = record["code"], record["figures"]
            if record["scope"] == "agency":
                _add(agencies[code], figures, FLOWS)
                if record["day"] == latest[("agency", code)]:
                    _add(agencies[code], figures, BACKLOGS)
            else:
                _add(centres[code], figures, CENTRE_FLOWS)
                histograms[code].append(figures.get("wait_histogram"))
        for code, figures in centres.items():
            parts = histograms[code]
            waits = [] if None in parts else add_wait_histograms(
                part for part in parts if part is not None)
            figures["wait_p50_seconds"] = wait_histogram_percentile(waits, 0.5)
            figures["wait_p90_seconds"] = wait_histogram_percentile(waits, 0.9)
        province = _zeros(FLOWS + BACKLOGS)
        for figures in agencies.values():
            _add(province, figures, FLOWS + BACKLOGS)
        return {
            "as_of": self.as_of,
            "agencies": dict(sorted(agencies.items())),
            "centres": dict(sorted(centres.items())),
            "province": province,
        }
