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

import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

import orjson
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import ThreadingWSGIServer, make_server, make_wsgi_app
from prometheus_client.utils import floatToGoString

from onestop.models.measures import CASE_SERIES, QUEUE_SERIES, WAIT_BUCKETS, Measure, Series

PREFIX = "onestop_"

PIPELINE_SERIES = (
    Series("events_processed", "counter", ("stream",),
           "Sự kiện đã xử lý / input records handled (stream: cases, tickets, portal)"),
    # `reason` is a closed set of words (undecodable, wrong_topic, rule_check,
    # key_mismatch, too_large, history_full, state_too_large): the reasons
    # themselves name records and ids.
    Series("dead_letters", "counter", ("stream", "reason"),
           "Bản ghi lỗi chuyển sang dead-letter / records sent to the dead-letter topic"),
    Series("derived_events", "counter", ("agency", "kind"),
           "Sự kiện phát sinh (cảnh báo, xin lỗi…) / derived events raised"),
    Series("last_tick_processed_timestamp_seconds", "gauge", ("stream",),
           "Thời điểm (đồng hồ máy) xử lý nhịp gần nhất / wall time the last tick was handled"),
    Series("tick_lag_seconds", "gauge", ("stream",),
           "Độ trễ xử lý: giờ pipeline trừ giờ của nhịp / pipeline time minus the tick's "
           "time when handled"),
    Series("delivery_failures", "counter", ("stream",),
           "Lần gửi kết quả của một lô bị lỗi (sẽ gửi lại) / failed attempts to deliver a "
           "batch's outputs (each is sent again)"),
    Series("archived", "counter", ("stream",),
           "Hồ sơ, vé đã kết thúc được đưa khỏi trạng thái đang theo dõi (vẫn còn trong kho "
           "SQL) / settled cases and tickets removed from the live state (kept in the SQL "
           "store)"),
    Series("late_events_for_archived", "counter", ("stream",),
           "Sự kiện đến sau khi hồ sơ, vé đã được đưa ra (chuyển cho kho SQL) / events that "
           "arrived for an archived case or ticket (handed to the SQL store)"),
    Series("held", "gauge", ("stream",),
           "Số hồ sơ, vé worker đang giữ / cases and tickets this worker holds"),
    Series("halted", "gauge", (),
           "1: worker đã dừng xử lý vì broker mất dữ liệu hoặc offset bị đặt lại / 1: the "
           "worker stopped processing: the broker lost its records or the offsets were reset"),
    Series("undelivered_batch_age_seconds", "gauge", ("stream",),
           "Thời gian lô chưa được xác nhận lâu nhất đã chờ / how long the batch whose outputs "
           "the broker has not yet acknowledged has waited (0: none)"),
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

    def add(self, measures: tuple[Measure, ...]) -> None:
        """A contribution that belongs to no key held here (of an archived entity)."""
        self._add(measures, 1)

    def settle(self, key: str) -> tuple[Measure, ...]:
        """`key` leaves for good (archived): its contribution stays in the totals, and is
        returned to be kept with the other settled ones."""
        return self.contributions.pop(key, ())

    def absorb(self, other: Tally) -> None:
        """Add another tally's totals to these (settled contributions, after a restart)."""
        self.counts.update(other.counts)
        for labels, buckets in other.waits.items():
            self.absorb_waits(labels, buckets)

    def series_json(self, name: str) -> bytes:
        """The totals of one series as JSON, for the archive table."""
        if name == "wait_seconds":
            return orjson.dumps(sorted([list(labels), buckets]
                                       for labels, buckets in self.waits.items()))
        return orjson.dumps(sorted([list(labels), value] for (series, labels), value
                                   in self.counts.items() if series == name))

    def load_series(self, name: str, raw: bytes) -> None:
        """Totals of one series written by `series_json`, added to these."""
        for labels, value in orjson.loads(raw):
            if name == "wait_seconds":
                self.absorb_waits(tuple(labels), value)
            else:
                self.counts[(name, tuple(labels))] += value

    def absorb_waits(self, labels: tuple[str, ...], buckets: list[float]) -> None:
        mine = self.waits.setdefault(labels, [0.0] * len(buckets))
        for index, count in enumerate(buckets):
            mine[index] += count

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
        # Per stream, the wall time its batch in delivery began; read live by scrapes.
        self.undelivered_since: dict[str, float] = {}
        # Why the worker stopped processing, once it has (read by /healthz).
        self.halted: str | None = None

    def halt(self, reason: str) -> None:
        self.halted = reason
        self.set_gauge("halted", (), 1)
        self.publish()

    def delivering(self, stream: str, since: float | None) -> None:
        """A batch of `stream` waits for delivery since `since`; None: it was delivered."""
        if since is None:
            self.undelivered_since.pop(stream, None)
        else:
            self.undelivered_since[stream] = since

    def oldest_undelivered(self, now: float) -> tuple[str, float] | None:
        """The stream whose batch has waited longest for delivery, and for how long."""
        waiting = dict(self.undelivered_since)
        if not waiting:
            return None
        stream = min(waiting, key=waiting.__getitem__)
        return stream, now - waiting[stream]

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
        now = time.time()
        counts = {**counts, **{
            ("undelivered_batch_age_seconds", (stream,)): now - since
            for stream, since in dict(self.undelivered_since).items()}}
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


class QuietHandler(WSGIRequestHandler):
    """No line on stderr per scrape."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def serve(metrics: WorkerMetrics, host: str, port: int, unhealthy_after: float) -> Any:
    """Serve /metrics, and /healthz for a container's health check, on a thread of its
    own; returns the server (`.shutdown()`). /healthz answers 503 while a batch's outputs
    have waited for the broker longer than `unhealthy_after` seconds, and once the worker
    has halted."""
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != "/healthz":
            return exposition(environ, start_response)
        oldest = metrics.oldest_undelivered(time.time())
        if metrics.halted is not None:
            status, text = "503 Service Unavailable", f"unhealthy: halted: {metrics.halted}\n"
        elif oldest is not None and oldest[1] > unhealthy_after:
            status = "503 Service Unavailable"
            text = (f"unhealthy: a {oldest[0]} batch has waited {oldest[1]:.0f} s for the "
                    "broker to acknowledge its outputs\n")
        else:
            status, text = "200 OK", "ok\n"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [text.encode()]

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
