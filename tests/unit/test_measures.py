"""The metrics' running totals add up to the replay's figures, and survive an entity
being judged again and again."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from onestop.common.replay import Replay
from onestop.models.case import CaseRules
from onestop.models.measures import case_measures, visit_measures
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.metrics import WorkerMetrics
from onestop.streams.simulate import SimulationSettings, simulate
from tests.metric_figures import agency_figures, centre_figures, replay_part

ZONE = dt.timezone(dt.timedelta(hours=7))
MID_WAY = dt.datetime(2026, 3, 12, 10, tzinfo=ZONE).timestamp()
AFTER = dt.datetime(2026, 4, 20, 17, tzinfo=ZONE).timestamp()


@pytest.fixture(scope="module")
def replay() -> Replay:
    rules = CaseRules(load_reference(SAMPLE_PROVINCE))
    replay = Replay.for_rules(rules)
    settings = SimulationSettings(cases=500, seed=21, days=14, start=dt.date(2026, 3, 2))
    for event in simulate(rules.reference, settings):
        assert replay.feed(orjson.dumps(event)) is None
    return replay


def judge_all(metrics: WorkerMetrics, replay: Replay, now: float) -> None:
    rules, queue_rules = replay.rules, replay.queue_rules
    for key, state in replay.cases.items():
        view = rules.evaluate(state, now)
        field = rules.reference.procedures[view.procedure].field if view else ""
        metrics.cases.set(key, case_measures(view, field, now) if view else ())
    for key, ticket in replay.tickets.items():
        visit = queue_rules.evaluate(ticket, now)
        metrics.tickets.set(key, visit_measures(visit) if visit else ())
    metrics.publish()


def scraped(metrics: WorkerMetrics) -> list[tuple[str, dict[str, str], float]]:
    text = generate_latest(metrics.registry).decode()
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples]


def test_totals_equal_the_replay_when_judged_again_later(replay: Replay) -> None:
    metrics = WorkerMetrics()
    # First mid-way (cases open, some at risk), then after everything: each case's old
    # contribution must be taken away, or the totals would count it twice.
    judge_all(metrics, replay, MID_WAY)
    judge_all(metrics, replay, AFTER)
    samples = scraped(metrics)
    expected = replay.report(AFTER)
    agencies = agency_figures(samples)
    assert agencies == replay_part(expected["agencies"], agencies)
    centres = centre_figures(samples)
    assert centres == replay_part(expected["centres"], centres)
    assert sum(figures["ended"] for figures in agencies.values()) > 300
    assert any(figures["apologies_required"] for figures in agencies.values())


def test_mid_way_gauges_count_open_overdue_and_at_risk_cases(replay: Replay) -> None:
    metrics = WorkerMetrics()
    judge_all(metrics, replay, MID_WAY)
    samples = scraped(metrics)
    expected = replay.report(MID_WAY)["agencies"]
    agencies = agency_figures(samples)
    assert agencies == replay_part(expected, agencies)
    at_risk = sum(value for name, _labels, value in samples if name == "onestop_cases_at_risk")
    views = [replay.rules.evaluate(state, MID_WAY) for state in replay.cases.values()]
    risky = [view for view in views if view and view.status == "open" and view.apologies == 0
             and view.risk_at is not None and view.risk_at <= MID_WAY < view.due_at]
    assert at_risk == len(risky) > 0


def test_no_label_names_a_case_ticket_or_person(replay: Replay) -> None:
    metrics = WorkerMetrics()
    judge_all(metrics, replay, AFTER)
    values = {value for _name, labels, _value in scraped(metrics) for value in labels.values()}
    assert values.isdisjoint(replay.cases)
    assert values.isdisjoint(replay.tickets)
    names = {part for state in replay.cases.values()
             for view in [replay.rules.evaluate(state, AFTER)] if view and view.applicant
             for part in view.applicant if part}
    assert names and values.isdisjoint(names)


def test_the_wait_histogram_has_a_bucket_at_exactly_900_seconds(replay: Replay) -> None:
    metrics = WorkerMetrics()
    judge_all(metrics, replay, AFTER)
    bounds = {labels["le"] for name, labels, _ in scraped(metrics)
              if name == "onestop_wait_seconds_bucket"}
    assert "900.0" in bounds


def test_a_series_that_falls_to_zero_shows_zero_rather_than_vanishing() -> None:
    metrics = WorkerMetrics()
    metrics.cases.set("C-1", (("cases_overdue", ("SX-A",), 1),))
    metrics.cases.set("C-1", ())  # processed: no longer overdue
    metrics.publish()
    overdue = [(labels, value) for name, labels, value in scraped(metrics)
               if name == "onestop_cases_overdue"]
    assert overdue == [({"agency": "SX-A"}, 0.0)]
