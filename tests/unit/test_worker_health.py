"""The worker's /healthz and its delivery series (streams/metrics.py): a batch whose
outputs the broker does not acknowledge turns the worker unhealthy, visibly."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from onestop.streams.broker import free_port
from onestop.streams.metrics import WorkerMetrics, serve


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def served() -> tuple[WorkerMetrics, str]:
    metrics = WorkerMetrics()
    port = free_port()
    server = serve(metrics, "127.0.0.1", port, unhealthy_after=60)
    yield metrics, f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def test_a_batch_undelivered_too_long_turns_the_worker_unhealthy(served) -> None:
    metrics, base = served
    assert get(base + "/healthz") == (200, "ok\n")

    metrics.delivering("cases", time.time() - 30)
    assert get(base + "/healthz")[0] == 200  # within the limit: still retrying quietly
    metrics.count("delivery_failures", ("cases",), 3)
    metrics.publish()
    metrics.delivering("cases", time.time() - 90)
    status, text = get(base + "/healthz")
    assert status == 503
    assert "a cases batch has waited 90 s" in text
    scrape = get(base + "/metrics")[1]
    assert 'onestop_delivery_failures_total{stream="cases"} 3.0' in scrape
    age = next(line for line in scrape.splitlines()
               if line.startswith('onestop_undelivered_batch_age_seconds{stream="cases"}'))
    assert 89 < float(age.split()[-1]) < 100

    metrics.delivering("cases", None)
    assert get(base + "/healthz") == (200, "ok\n")
    assert "onestop_undelivered_batch_age_seconds{" not in get(base + "/metrics")[1]


def test_a_halted_worker_is_unhealthy_and_says_why(served) -> None:
    metrics, base = served
    metrics.halt("the broker lost its records")
    status, text = get(base + "/healthz")
    assert status == 503 and "halted: the broker lost its records" in text
    assert "onestop_halted 1.0" in get(base + "/metrics")[1]
