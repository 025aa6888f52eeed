"""Quix Streams peer of tests/bench/bench_peers.py: per-case state in a StreamingDataFrame.

    .venv-peers/bin/python tests/bench/peers/quix_peer.py --bootstrap HOST:PORT \
        --topic NAME --events N --group NAME --state-dir DIR

Runs in the peers' virtual environment (tests/bench/peers/requirements.txt), never in
the project's. Reads the case-events topic from the beginning as consumer group
`--group`, decodes each value with Quix's JSON deserializer, and keeps a state per
message key (the case id) with `sdf.update(..., stateful=True)`: the count of the case's
events, its first and last event time (`occurred_at`, parsed) and its status (the type
of its latest event by event time). The state is Quix's default: RocksDB under
`--state-dir`, every change also sent to a changelog topic, flushed with the offsets at
each commit (every 5 s, Quix's default interval). Stops after `--events` messages;
`Application.run` then commits a last time.

Prints one JSON line: `events` processed, `cases` (states created), and `seconds` from
the first message to the end of the last commit.
"""

from __future__ import annotations

import argparse
import sys
import time

import orjson
from case_record import updated_case  # beside this script, shared with bytewax_peer.py
from quixstreams import Application, State

FIRST_MESSAGE_AT: list[float] = []
COUNTS = {"events": 0, "cases": 0}


def keep_case(event: dict, state: State) -> None:
    if not FIRST_MESSAGE_AT:
        FIRST_MESSAGE_AT.append(time.perf_counter())
    case = state.get("case")
    if case is None:
        COUNTS["cases"] += 1
    state.set("case", updated_case(case, event))
    COUNTS["events"] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    arguments = parser.parse_args()

    app = Application(broker_address=arguments.bootstrap, consumer_group=arguments.group,
                      auto_offset_reset="earliest", state_dir=arguments.state_dir,
                      loglevel="WARNING")
    topic = app.topic(arguments.topic, key_deserializer="str", value_deserializer="json")
    app.dataframe(topic).update(keep_case, stateful=True)
    app.run(count=arguments.events, collect=False)
    ended = time.perf_counter()
    if not FIRST_MESSAGE_AT:
        sys.exit("quix peer: no message consumed")
    print(orjson.dumps({**COUNTS, "seconds": ended - FIRST_MESSAGE_AT[0]}).decode(), flush=True)


if __name__ == "__main__":
    main()
