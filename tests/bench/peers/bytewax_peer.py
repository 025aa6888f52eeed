"""Bytewax peer of tests/bench/bench_peers.py: per-case state with `stateful_map`.

    .venv-peers/bin/python tests/bench/peers/bytewax_peer.py --bootstrap HOST:PORT \
        --topic NAME

Runs in the peers' virtual environment (tests/bench/peers/requirements.txt), never in
the project's. One Bytewax worker reads every partition of the case-events topic from
the beginning to its end (Kafka input, `tail=False`: the dataflow ends there), keys each
record by its key (the case id), decodes the value with orjson, and keeps a state per
case with `stateful_map`: the count of the case's events, its first and last event time
(`occurred_at`, parsed) and its status (the type of its latest event by event time). It
emits the case's count, which a sink counts. Bytewax's state is in memory only here (no
recovery store configured, Bytewax's default), so it persists less than Quix Streams
(RocksDB and a changelog topic) or Faust (a changelog topic).

Prints one JSON line: `events` processed, `cases` (states created), and `seconds` from
the first record to the sink's last batch; the wait that tells the input it has reached
the end of every partition is not counted, as Bytewax has nothing to commit.
"""

from __future__ import annotations

import argparse
import sys
import time

import bytewax.operators as op
import orjson
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import run_main
from case_record import updated_case  # beside this script, shared with quix_peer.py

FIRST_RECORD_AT: list[float] = []
LAST_OUTPUT_AT: list[float] = [0.0]
COUNTS = {"events": 0, "cases": 0}


def keep_case(case: dict | None, value: bytes) -> tuple[dict, int]:
    if not FIRST_RECORD_AT:
        FIRST_RECORD_AT.append(time.perf_counter())
    if case is None:
        COUNTS["cases"] += 1
    case = updated_case(case, orjson.loads(value))
    return case, case["count"]


class CountingPartition(StatelessSinkPartition):
    def write_batch(self, items: list) -> None:
        COUNTS["events"] += len(items)
        LAST_OUTPUT_AT[0] = time.perf_counter()


class CountingSink(DynamicSink):
    """Counts what reaches it: every event the state step handled."""

    def build(self, step_id: str, worker_index: int, worker_count: int) -> CountingPartition:
        return CountingPartition()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    arguments = parser.parse_args()

    flow = Dataflow("bytewax_peer")
    records = kop.input("kafka", flow, brokers=[arguments.bootstrap], topics=[arguments.topic],
                        tail=False)
    by_case = op.map("by_case", records.oks, lambda message: (message.key.decode(), message.value))
    counts = op.stateful_map("case_state", by_case, keep_case)
    op.output("count", counts, CountingSink())
    run_main(flow)
    if not FIRST_RECORD_AT:
        sys.exit("bytewax peer: no record consumed")
    print(orjson.dumps({**COUNTS, "seconds": LAST_OUTPUT_AT[0] - FIRST_RECORD_AT[0]}).decode(), flush=True)


if __name__ == "__main__":
    main()
