"""The worker's metrics, scraped over HTTP and by a real Prometheus evaluating the
repository's recording rules, equal the replay of the same events."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from onestop.common.settings import Settings
from onestop.consumers.deploy_files import dashboards
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.broker import free_port
from onestop.streams.ingest import ingest_lines
from tests.integration.conftest import eventually, replay_of, wait_processed
from tests.integration.test_live_pipeline import AS_OF, FIXED_CLOCK, province_file
from tests.metric_figures import agency_figures, centre_figures, replay_part
from tests.prometheus import query, start_prometheus

pytestmark = pytest.mark.integration

REFERENCE = load_reference(SAMPLE_PROVINCE)
BAD = [b"{not json", b'{"type":"received","event_id":"x1","case_id":"C-1"}']


def scrape(port: int) -> list[tuple[str, dict[str, str], float]]:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples]


def ratios(expected: dict[str, dict[str, Any]], key: str) -> dict[str, float]:
    return {place: figures[key]["ratio"] for place, figures in expected.items()
            if figures[key]["denominator"]}


def by_label(result: dict[tuple[tuple[str, str], ...], float], label: str) -> dict[str, float]:
    return {dict(labels)[label]: round(value, 6) for labels, value in result.items()}


def test_metrics_scraped_and_recorded_equal_the_replay(
    settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    path = province_file(tmp_path, cases=250, seed=8)
    lines = path.read_bytes().splitlines() + BAD
    counts = ingest_lines(settings, lines)
    expected, _ids = replay_of(path, AS_OF)
    port = free_port()
    start_worker(settings, clock=FIXED_CLOCK, metrics_port=port).wait_ready()
    wait_processed(settings, counts.ends, timeout=120)

    def agencies_match() -> bool:
        samples = scrape(port)
        agencies = agency_figures(samples)
        return bool(agencies) and agencies == replay_part(expected["agencies"], agencies)

    assert eventually(agencies_match, timeout=20)
    samples = scrape(port)
    centres = centre_figures(samples)
    assert centres == replay_part(expected["centres"], centres)
    dead = {labels["reason"]: value for name, labels, value in samples
            if name == "onestop_dead_letters_total"}
    assert dead == {"undecodable": 2.0}
    processed = sum(value for name, _labels, value in samples
                    if name == "onestop_events_processed_total")
    assert processed == len(lines)
    # No label holds a case or ticket id or an applicant's details: agencies and centres
    # are the province's codes, the other labels words of closed sets.
    events = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    secrets = {value for event in events for value in (event.get("applicant") or {}).values()}
    secrets |= {event[key] for event in events for key in ("case_id", "ticket_id")
                if event.get(key)}
    assert len(secrets) > 500
    labels = {value for _name, sample_labels, _value in samples
              for value in sample_labels.values()}
    assert sorted(labels & secrets) == []
    assert sorted(label for secret in secrets for label in labels if secret in label) == []
    codes = set(load_reference(SAMPLE_PROVINCE).agencies)
    assert {sample_labels[key] for _name, sample_labels, _value in samples
            for key in ("agency", "centre") if key in sample_labels} <= codes

    want = recording_rules_wanted(expected)
    prometheus = start_prometheus(tmp_path, [f"127.0.0.1:{port}"])
    try:
        def recorded() -> dict[str, Any]:
            return recorded_rules(prometheus, want)

        # Each rule group is evaluated on its own schedule: wait until all have run.
        eventually(lambda: recorded() == want, timeout=30, every=0.5)
        assert recorded() == want
        # The province board's on-time rate by agency, over a range longer than the
        # worker has run (so all of it): the same rates, by the agencies' names.
        [board] = [panel["targets"][0]["expr"]
                   for panel in dashboards(REFERENCE)["province-overview.json"]["panels"]
                   if panel["title"].startswith("Tỷ lệ trước và đúng hạn theo cơ quan")]
        shown = by_label(query(prometheus, board.replace("$__range", "1d")), "name")
        assert shown == {REFERENCE.agencies[code].name: rate for code, rate in
                         want["agency:onestop_on_time_rate:ratio"].items()}
    finally:
        prometheus.stop()


def recording_rules_wanted(expected: dict[str, Any]) -> dict[str, Any]:
    """What the repository's recording rules must give for the replay's figures."""
    agencies, centres, province = (
        expected["agencies"], expected["centres"], expected["province"])
    want: dict[str, Any] = {
        rule: ratios(agencies, key) for rule, key in (
            ("agency:onestop_on_time_rate:ratio", "completed_on_time_rate"),
            ("agency:onestop_e_transfer_share:ratio", "e_transfer_share"),
            ("agency:onestop_apology_compliance:ratio", "apology_compliance"),
            ("agency:onestop_online_payment_share:ratio", "online_payment_share"),
            ("agency:onestop_service_index_on_time_rate:ratio", "service_index_on_time_rate"),
        )
    }
    want["centre:onestop_wait_within_target:ratio"] = ratios(centres, "wait_within_target")
    for rule, key in (
        ("province:onestop_on_time_rate:ratio", "completed_on_time_rate"),
        ("province:onestop_e_transfer_share:ratio", "e_transfer_share"),
        ("province:onestop_apology_compliance:ratio", "apology_compliance"),
    ):
        want[rule] = [province[key]["ratio"]]
    want["province:onestop_wait_within_target:ratio"] = [_summed(centres)]
    want["province:onestop_cases_overdue:sum"] = [province["overdue_open"]]
    return want


def recorded_rules(prometheus: Any, want: dict[str, Any]) -> dict[str, Any]:
    """What Prometheus recorded for the rules of `want`, in its shape."""
    found: dict[str, Any] = {}
    for rule in want:
        result = query(prometheus, rule)
        if rule.startswith("province:"):
            found[rule] = [round(value, 6) for value in result.values()]
        else:
            found[rule] = by_label(result, rule.split(":")[0])
    return found


def _summed(centres: dict[str, dict[str, Any]]) -> float:
    numerator = sum(figures["wait_within_target"]["numerator"] for figures in centres.values())
    denominator = sum(figures["wait_within_target"]["denominator"] for figures in centres.values())
    return round(numerator / denominator, 6)
