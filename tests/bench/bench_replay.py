"""Replay throughput and memory per open case, against an orjson decode-only baseline.

    python tests/bench/bench_replay.py [--cases 40000] [--days 60]

Kept out of the test run: it prints figures, it asserts nothing. The process is pinned to
one core so that the figures are per core.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import orjson

from onestop.common.replay import Replay
from onestop.models.case import CaseRules
from onestop.models.events import decode_event
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.simulate import SimulationSettings, simulate, write_jsonl


def decode_only(path: Path) -> int:
    count = 0
    loads = orjson.loads
    with path.open("rb") as handle:
        for line in handle:
            loads(line)
            count += 1
    return count


def decode_events(path: Path) -> int:
    """The contract's validation alone (pydantic), the replay's first step."""
    count = 0
    with path.open("rb") as handle:
        for line in handle:
            decode_event(line)
            count += 1
    return count


def replay(path: Path, rules: CaseRules, as_of: float, derived: bool = False) -> Replay:
    result = Replay.for_rules(rules, collect_derived=derived)
    with path.open("rb") as handle:
        for _ in result.feed_lines(handle):
            pass
    result.report(as_of)
    return result


def best_of(runs: int, work):  # type: ignore[no-untyped-def]
    best = float("inf")
    value = None
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        value = work()
        best = min(best, time.perf_counter() - started)
    return best, value


def deep_size(value: object, seen: set[int]) -> int:
    """Bytes reachable from `value` not already counted in `seen` (shared strings once)."""
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, tuple | list):
        size += sum(deep_size(item, seen) for item in value)
    elif isinstance(value, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in value.items())
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=40000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference", type=Path, default=SAMPLE_PROVINCE)
    arguments = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    reference = load_reference(arguments.reference)
    rules = CaseRules(reference)
    settings = SimulationSettings(cases=arguments.cases, days=arguments.days, seed=2026)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "province.jsonl"
        started = time.perf_counter()
        events = write_jsonl(simulate(reference, settings), path)
        print(f"simulated province: {events:,} events, {settings.cases:,} cases, "
              f"{path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s")
        as_of = rules.calendar.end_of_day(settings.start + dt.timedelta(days=settings.days - 1))

        decode_seconds, _ = best_of(arguments.runs, lambda: decode_only(path))
        validate_seconds, _ = best_of(arguments.runs, lambda: decode_events(path))
        replay_seconds, result = best_of(arguments.runs, lambda: replay(path, rules, as_of))
        print(f"baseline, orjson decode only:        {events / decode_seconds:>10,.0f} events/s")
        print(f"event models only (pydantic decode): {events / validate_seconds:>10,.0f} events/s"
              f"  ({validate_seconds / decode_seconds:.2f}x the baseline's time)")
        print(f"replay (decode, rules, report):      {events / replay_seconds:>10,.0f} events/s"
              f"  ({replay_seconds / decode_seconds:.2f}x the baseline's time)")
        print("target: >= 100,000 events/s, about <= 6x the baseline's time")
        derived_seconds, with_derived = best_of(
            arguments.runs, lambda: replay(path, rules, as_of, derived=True))
        print(f"replay with derived events:          {events / derived_seconds:>10,.0f} events/s"
              f"  ({derived_seconds / decode_seconds:.2f}x the baseline's time; "
              f"{len(with_derived.derived):,} derived events)")

        open_states = [
            state for state in result.cases.values()
            if (view := rules.evaluate(state, as_of)) is not None and view.status == "open"
        ]
        # Strings the reference data already holds (codes) are not a case's own memory.
        seen: set[int] = set()
        deep_size(list(reference.procedures) + list(reference.agencies), seen)
        per_open = sum(deep_size(state, seen) for state in open_states) / len(open_states)
        print(f"state of an open case: {per_open:,.0f} bytes on average over "
              f"{len(open_states):,} open cases (target < 2,048)")

        gc.collect()
        tracemalloc.start()
        held = replay(path, rules, as_of)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"replay peak memory: {peak / 1e6:,.1f} MB for {len(held.cases):,} cases held, "
              f"{peak / len(held.cases):,.0f} bytes per case (all cases, open or not, plus the "
              "report being built)")


if __name__ == "__main__":
    main()
