"""The worker's Prometheus metrics, on a registry of its own.

Business series are running totals of `models.measures` contributions: each time a
keeper judges a case or a ticket, its old contribution is taken away and its new one
added, so a scrape costs nothing per case. The event loop publishes a copy of the
totals after each batch; the HTTP thread only ever reads that copy.

Each worker counts the partitions it holds: Prometheus sums across workers (the
recording rules in deploy/prometheus do), and a partition that moves to another
worker moves its counts with it.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import start_http_server
from prometheus_client.utils import floatToGoString

from models.measures import CASE_SERIES, QUEUE_SERIES, WAIT_BUCKETS, Measure, Series

PREFIX = "onestop_"

PIPELINE_SERIES = (
    Series("events_processed", "counter", ("stream",),
           "Sự kiện đã xử lý / input records handled (stream: cases, tickets, portal)"),
    # `reason` is a closed set of words (undecodable, wrong_topic, rule_check,
    # key_mismatch, bad_tick): the reasons themselves name records and ids.
    Series("dead_letters", "counter", ("stream", "reason"),
           "Bản ghi lỗi chuyển sang dead-letter / records sent to the dead-letter topic"),
    Series("derived_events", "counter", ("agency", "kind"),
           "Sự kiện phát sinh (cảnh báo, xin lỗi…) / derived events raised"),
    Series("last_tick_processed_timestamp_seconds", "gauge", ("stream",),
           "Thời điểm (đồng hồ máy) xử lý nhịp gần nhất / wall time the last tick was handled"),
    Series("tick_lag_seconds", "gauge", ("stream",),
           "Độ trễ xử lý: giờ pipeline trừ giờ của nhịp / pipeline time minus the tick's "
           "time when handled"),
)

ALL_SERIES = CASE_SERIES + QUEUE_SERIES + PIPELINE_SERIES


class Tally:
    """Running totals of the contributions of the entities a worker holds."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, tuple[str, ...]]] = Counter()
        # Per label set of the histogram: a count per bucket (and +Inf), then the sum.
        self.waits: dict[tuple[str, ...], list[float]] = {}
        self.contributions: dict[str, tuple[Measure, ...]] = {}

    def set(self, key: str, measures: tuple[Measure, ...]) -> None:
        old = self.contributions.get(key, ())
        if old == measures:
            return
        self._add(old, -1)
        self._add(measures, 1)
        if measures:
            self.contributions[key] = measures
        else:
            self.contributions.pop(key, None)

    def _add(self, measures: tuple[Measure, ...], sign: int) -> None:
        for name, labels, value in measures:
            if name == "wait_seconds":
                buckets = self.waits.get(labels)
                if buckets is None:
                    buckets = self.waits[labels] = [0.0] * (len(WAIT_BUCKETS) + 2)
                buckets[bisect_left(WAIT_BUCKETS, value)] += sign  # the first bound ≥ value
                buckets[-1] += sign * value
            else:
                self.counts[(name, labels)] += sign * value

    def clear(self) -> None:
        self.counts.clear()
        self.waits.clear()
        self.contributions.clear()


class WorkerMetrics:
    """What one worker exposes: the tallies of its keepers and its pipeline counters."""

    def __init__(self) -> None:
        self.cases = Tally()
        self.tickets = Tally()
        self.pipeline: Counter[tuple[str, tuple[str, ...]]] = Counter()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # type: ignore[arg-type]
        self._published: tuple[dict[Any, float], dict[Any, list[float]]] = ({}, {})

    def count(self, name: str, labels: tuple[str, ...], value: float = 1) -> None:
        self.pipeline[(name, labels)] += value

    def set_gauge(self, name: str, labels: tuple[str, ...], value: float) -> None:
        self.pipeline[(name, labels)] = value

    def tick_handled(self, stream: str, tick: float, now: float) -> None:
        self.set_gauge("last_tick_processed_timestamp_seconds", (stream,), time.time())
        self.set_gauge("tick_lag_seconds", (stream,), max(0.0, now - tick))

    def publish(self) -> None:
        """Called on the event loop after a batch: the copy that scrapes read."""
        # Merged as dicts: `Counter + Counter` would drop the series that fell to 0 (an
        # agency's last overdue case processed), and a 0 must show as 0, not vanish.
        counts = {**self.cases.counts, **self.tickets.counts, **self.pipeline}
        waits = {labels: list(buckets) for labels, buckets in self.tickets.waits.items()}
        self._published = (counts, waits)

    def collect(self) -> Iterator[Any]:
        counts, waits = self._published
        by_series: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        for (name, labels), value in counts.items():
            by_series.setdefault(name, []).append((labels, value))
        for series in ALL_SERIES:
            name = PREFIX + series.name
            labels = list(series.labels)
            if series.kind == "histogram":
                family: Any = HistogramMetricFamily(name, series.help, labels=labels)
                for label_values, buckets in sorted(waits.items()):
                    cumulative, total = [], 0.0
                    for bound, count in zip((*WAIT_BUCKETS, float("inf")), buckets, strict=False):
                        total += count
                        cumulative.append((floatToGoString(bound), total))
                    family.add_metric(list(label_values), cumulative, buckets[-1])
                yield family
                continue
            kind = CounterMetricFamily if series.kind == "counter" else GaugeMetricFamily
            family = kind(name, series.help, labels=labels)
            for label_values, value in sorted(by_series.get(series.name, [])):
                family.add_metric(list(label_values), value)
            yield family


def serve(metrics: WorkerMetrics, host: str, port: int) -> Any:
    """Serve /metrics on a thread of its own; returns the server (`.shutdown()`)."""
    server, _thread = start_http_server(port, host, registry=metrics.registry)
    return server
