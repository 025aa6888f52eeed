"""The synthetic province: reproducible, valid, and realistic enough to exercise the rules."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from onestop.common.replay import Replay
from onestop.models.case import CaseRules
from onestop.models.events import Rejection, decode_event
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.simulate import SimulationSettings, simulate, write_jsonl


@pytest.fixture(scope="module")
def reference() -> Any:
    return load_reference(SAMPLE_PROVINCE)


@pytest.fixture(scope="module")
def rules(reference: Any) -> CaseRules:
    return CaseRules(reference)


@pytest.fixture(scope="module")
def stream(reference: Any) -> list[dict[str, Any]]:
    """About 2,000 cases with the default disorder and duplicates."""
    return list(simulate(reference, SimulationSettings(cases=2000, seed=7)))


@pytest.fixture(scope="module")
def big(reference: Any) -> list[dict[str, Any]]:
    """Enough cases for the rare events (second apologies, refusals without reason)."""
    return list(simulate(reference, SimulationSettings(cases=6000, seed=11)))


def _lines(events: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(event) for event in events]


def _instant(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(event["occurred_at"]).timestamp()


def _cases(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each case's distinct events in event-time order."""
    cases: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for event in events:
        if "case_id" in event and "ticket_id" not in event:
            cases[event["case_id"]][event["event_id"]] = event
    return {
        case_id: sorted(found.values(), key=lambda e: (_instant(e), e["event_id"]))
        for case_id, found in cases.items()
    }


# ---- reproducibility ----------------------------------------------------------------------


def test_same_seed_gives_the_same_stream_and_another_seed_does_not(reference: Any) -> None:
    settings = SimulationSettings(cases=600, seed=3, days=10)
    first = _lines(list(simulate(reference, settings)))
    second = _lines(list(simulate(reference, settings)))
    other = _lines(list(simulate(reference, SimulationSettings(cases=600, seed=4, days=10))))
    assert first == second
    assert first != other


def test_write_jsonl_writes_one_event_per_line_and_reports_progress(
    reference: Any, tmp_path: Path
) -> None:
    settings = SimulationSettings(cases=2500, seed=5, days=10)
    seen: list[int] = []
    path = tmp_path / "province.jsonl"
    count = write_jsonl(simulate(reference, settings), path, seen.append)
    lines = path.read_bytes().splitlines()
    assert count == len(lines) > 10_000
    assert seen == list(range(10_000, count + 1, 10_000))
    assert lines == _lines(list(simulate(reference, settings)))
    again = tmp_path / "again.jsonl"
    write_jsonl(simulate(reference, settings), again)
    assert again.read_bytes() == path.read_bytes()


# ---- validity -----------------------------------------------------------------------------


def test_every_event_decodes_and_every_receipt_passes_the_checks(
    stream: list[dict[str, Any]], rules: CaseRules
) -> None:
    kinds: Counter[str] = Counter()
    for event in stream:
        decoded = decode_event(orjson.dumps(event))
        assert not isinstance(decoded, Rejection), (event, decoded)
        kinds[event["type"]] += 1
        if event["type"] == "received":
            assert rules.check(decoded) is None, event  # type: ignore[arg-type]
    expected = {
        "received", "transferred", "supplement_requested", "supplement_received", "paid",
        "apology_issued", "processed", "returned", "refused", "withdrawn", "rated",
        "ticket_issued", "ticket_called", "service_completed", "ticket_abandoned",
    }
    assert expected <= set(kinds), expected - set(kinds)


def test_instants_are_local_time_with_offset(
    stream: list[dict[str, Any]], rules: CaseRules
) -> None:
    for event in stream[::97]:
        text = event["occurred_at"]
        assert text.endswith("+07:00")
        instant = dt.datetime.fromisoformat(text).timestamp()
        assert rules.calendar.to_datetime(instant).isoformat(timespec="seconds") == text


def test_ids_are_unique_except_duplicates_which_repeat_the_same_content(
    stream: list[dict[str, Any]],
) -> None:
    by_id: dict[str, list[bytes]] = defaultdict(list)
    for event in stream:
        by_id[event["event_id"]].append(orjson.dumps(event))
    repeated = {key: copies for key, copies in by_id.items() if len(copies) > 1}
    assert all(len(copies) == 2 and copies[0] == copies[1] for copies in repeated.values())
    share = len(repeated) / len(by_id)
    assert 0.004 < share < 0.02  # duplicate_rate 0.01
    receipts = {e["event_id"]: e["case_id"] for e in stream if e["type"] == "received"}
    assert len(receipts) == len(set(receipts.values())) == 2000


def test_without_disorder_or_duplicates_the_stream_is_in_event_time_order(
    reference: Any,
) -> None:
    settings = SimulationSettings(cases=1500, seed=9, disorder_rate=0, duplicate_rate=0)
    events = list(simulate(reference, settings))
    instants = [_instant(event) for event in events]
    assert instants == sorted(instants)
    ids = [event["event_id"] for event in events]
    assert len(set(ids)) == len(ids)


def test_some_case_events_arrive_before_an_earlier_event_of_their_case(
    stream: list[dict[str, Any]],
) -> None:
    latest: dict[str, float] = {}
    seen: set[str] = set()
    early = case_events = 0
    for event in stream:
        if "ticket_id" in event or event["event_id"] in seen:
            continue  # queue events, and the second copy of a duplicate
        seen.add(event["event_id"])
        case_events += 1
        at = _instant(event)
        if at < latest.get(event["case_id"], float("-inf")):
            early += 1
        latest[event["case_id"]] = max(at, latest.get(event["case_id"], at))
    assert 0.008 < early / case_events < 0.04  # disorder_rate 0.02


def test_each_case_tells_a_coherent_story(stream: list[dict[str, Any]]) -> None:
    for case_id, events in _cases(stream).items():
        kinds = [e["type"] for e in events]
        assert kinds[0] == "received", (case_id, kinds)
        assert kinds.count("received") == 1
        ends = [k for k in kinds if k in ("processed", "withdrawn", "stopped")]
        assert len(ends) <= 1, (case_id, kinds)
        if "returned" in kinds:
            assert "processed" in kinds[: kinds.index("returned")]
        if "rated" in kinds:
            assert "returned" in kinds
        if "apology_issued" in kinds and "processed" in kinds:
            assert kinds.index("apology_issued") < kinds.index("processed")
        for before, after in zip(events, events[1:], strict=False):
            if before["type"] == "transferred" and after["type"] == "transferred":
                assert before["to_unit"] == after["from_unit"], (case_id, kinds)


# ---- realism ------------------------------------------------------------------------------


def test_channel_mix_and_electronic_hand_offs_are_plausible(
    stream: list[dict[str, Any]],
) -> None:
    receipts = {e["case_id"]: e for e in stream if e["type"] == "received"}
    channels = Counter(e["channel"] for e in receipts.values())
    total = len(receipts)
    assert 0.49 < channels["counter"] / total < 0.61
    assert 0.32 < channels["online"] / total < 0.44
    assert 0.04 < channels["postal"] / total < 0.10
    methods: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for event in stream:
        if event["type"] == "transferred" and event["event_id"] not in seen:
            seen.add(event["event_id"])
            methods[event["case_id"]].append(event["method"])
    assert len(methods) > 0.3 * total
    with_electronic = sum("electronic" in found for found in methods.values()) / len(methods)
    assert 0.85 < with_electronic < 0.995
    hand_offs = [m for found in methods.values() for m in found]
    assert 0.78 < hand_offs.count("electronic") / len(hand_offs) < 0.93
    # Online cases come at any hour and on days off; counter cases only in working hours.
    hours = Counter(
        dt.datetime.fromisoformat(e["occurred_at"]).hour
        for e in receipts.values() if e["channel"] == "online"
    )
    assert sum(hours[h] for h in (18, 19, 20, 21, 22)) > sum(hours[h] for h in (0, 1, 2, 3, 4))
    counter_hours = Counter(
        dt.datetime.fromisoformat(e["occurred_at"]).hour
        for e in receipts.values() if e["channel"] == "counter"
    )
    assert counter_hours[8] + counter_hours[9] > counter_hours[15] + counter_hours[16]
    assert all(7 <= hour < 18 for hour in counter_hours)


def test_queue_waits_centre_on_the_target(stream: list[dict[str, Any]]) -> None:
    issued: dict[str, float] = {}
    called: dict[str, float] = {}
    abandoned: set[str] = set()
    tickets: set[str] = set()
    for event in stream:
        if "ticket_id" not in event:
            continue
        ticket = event["ticket_id"]
        tickets.add(ticket)
        at = _instant(event)
        if event["type"] == "ticket_issued":
            issued[ticket] = at
        elif event["type"] == "ticket_called":
            called[ticket] = min(at, called.get(ticket, at))
        elif event["type"] == "ticket_abandoned":
            abandoned.add(ticket)
    waits = [called[t] - issued[t] for t in called if t not in abandoned]
    assert all(wait > 0 for wait in waits)
    assert 5 * 60 <= statistics.median(waits) <= 15 * 60
    within = sum(wait <= 15 * 60 for wait in waits) / len(waits)
    assert 0.78 < within < 0.95
    assert 0.01 < len(abandoned) / len(tickets) < 0.06
    counter_cases = sum(1 for e in stream if e["type"] == "received" and e["channel"] == "counter")
    assert counter_cases < len(tickets) < 2 * counter_cases


def test_the_rules_find_late_cases_apologies_and_findings(
    big: list[dict[str, Any]], rules: CaseRules
) -> None:
    replay = Replay.for_rules(rules)
    for event in big:
        assert replay.feed(orjson.dumps(event)) is None
    settings = SimulationSettings()
    as_of = rules.calendar.end_of_day(settings.start + dt.timedelta(days=settings.days - 1))
    views = list(replay.views(as_of))
    assert len(views) == 6000
    verdicts = Counter(view.verdict for view in views)
    statuses = Counter(view.status for view in views)
    apologies = Counter(view.apology for view in views)
    late = sum(view.verdict == "late" or view.overdue for view in views) / len(views)
    assert 0.03 < late < 0.13  # late_rate 0.08, less the cases still open and not yet due
    assert verdicts["early"] > verdicts["late"] and verdicts["on_time"] > verdicts["late"]
    assert statuses["open"] > 0.03 * len(views)
    assert sum(view.overdue for view in views) > 0
    assert statuses["withdrawn"] > 0 and statuses["refused"] > 0
    assert apologies["issued_in_time"] > 0 and apologies["issued_late"] > 0
    assert apologies["missing"] > 0
    assert sum(view.rescheduled_twice for view in views) > 0
    assert sum(view.refusal_without_reason for view in views) > 0
    assert sum(view.due_mismatch for view in views) > 0
    requests = Counter(view.supplement_requests for view in views)
    assert 0.03 < (requests[1] + requests[2]) / len(views) < 0.09
    assert requests[2] > 0
    assert any(view.paused for view in views)  # a supplement never came back
    ratings = Counter(view.rating for view in views if view.rating)
    assert 0.01 < ratings["unsatisfied"] / sum(ratings.values()) < 0.08
    apology_events = [e for e in big if e["type"] == "apology_issued"]
    assert all(e["reason"] and e["signed_by"] for e in apology_events)


def test_a_fixed_number_of_tickets_per_centre_and_working_day(reference: Any) -> None:
    settings = SimulationSettings(cases=400, seed=2, days=7, tickets_per_centre_day=25)
    tickets: dict[tuple[str, str], set[str]] = defaultdict(set)
    counter_cases: set[str] = set()
    linked: set[str] = set()
    for event in simulate(reference, settings):
        if event["type"] == "ticket_issued":
            tickets[(event["centre"], event["occurred_at"][:10])].add(event["ticket_id"])
        elif event["type"] == "received" and event["channel"] == "counter":
            counter_cases.add(event["case_id"])
        elif event["type"] == "service_completed" and "case_id" in event:
            linked.add(event["case_id"])
    centres = {code for code, agency in reference.agencies.items() if agency.centre == code}
    days = {day for _, day in tickets}
    assert len(days) == 5  # the working days of the week from Monday 2026-03-02
    assert {centre for centre, _ in tickets} == centres
    assert all(len(found) == 25 for found in tickets.values())
    assert linked and linked <= counter_cases


def test_commune_cases_stay_in_the_commune(stream: list[dict[str, Any]], reference: Any) -> None:
    """Two-tier local government (from 1 July 2025): a commune procedure is handled and
    signed within the commune; only provincial procedures go to the province's People's
    Committee."""
    level = {event["case_id"]: reference.procedures[event["procedure"]].level
             for event in stream if event["type"] == "received"}
    committee = "SX-UBND"
    through = Counter(level[event["case_id"]] for event in stream
                      if event["type"] == "transferred" and committee in (
                          event["from_unit"], event["to_unit"]))
    assert through["commune"] == 0 and through["province"] > 0, through
