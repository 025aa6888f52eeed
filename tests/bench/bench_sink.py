"""Sink throughput into PostgreSQL, against plain bulk loads in the same run.

    python tests/bench/bench_sink.py [--cases 20000] [--batch 5000]

One throw-away PostgreSQL server (the machine's binaries, loopback). The rows are the case
states and derived events of a simulated province, as the pipeline's changelog and
derived-events topics carry them. Printed:

- baseline COPY: psycopg's COPY of the finished rows into a bare table of the same shape;
- baseline executemany: a plain INSERT per row (psycopg executemany), no conflict check;
- sink, database part: what `Sink.poll_once` does with a poll's records (decode, build
  rows, upsert in one transaction), records already in memory;
- sink, end to end: records produced to the embedded broker, then read and stored by the
  sink with its consumer group and offset commits.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg

# The repository root, for tests.postgres; onestop itself is the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onestop.common.codec import Entry, encode_entry  # noqa: E402
from onestop.common.replay import Replay, derived_json  # noqa: E402
from onestop.consumers.rows import Rows, add_derived_record, add_state_record  # noqa: E402
from onestop.consumers.schema import case_states, derived_events  # noqa: E402
from onestop.consumers.sink import Sink  # noqa: E402
from onestop.consumers.store import Store, connect, upgrade  # noqa: E402
from onestop.models.case import CaseRules  # noqa: E402
from onestop.models.reference import SAMPLE_PROVINCE, load_reference  # noqa: E402
from onestop.streams.simulate import SimulationSettings, simulate  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

Record = tuple[str, bytes, bytes, tuple[int, int]]


def records(cases: int) -> list[Record]:
    """(kind, key, value, source) of each changelog state and derived event."""
    reference = load_reference(SAMPLE_PROVINCE)
    replay = Replay.for_rules(CaseRules(reference), collect_derived=True)
    settings = SimulationSettings(cases=cases, seed=1, days=45)
    list(replay.feed_lines(orjson.dumps(event) for event in simulate(reference, settings)))
    replay.report(replay.latest)
    out: list[Record] = []
    for offset, (case_id, state) in enumerate(replay.cases.items()):
        out.append(("state", orjson.dumps(case_id), encode_entry(Entry(0, state)), (0, offset)))
    isoformat = replay.rules.calendar.isoformat
    for offset, event in enumerate(replay.derived):
        out.append(("derived", event.case_id.encode(),
                    orjson.dumps(derived_json(event, isoformat)), (0, offset)))
    return out


def sink_rows(batch: list[Record]) -> Rows:
    rows = Rows()
    for kind, key, value, source in batch:
        handle = add_state_record if kind == "state" else add_derived_record
        handle(rows, value, key, source)
    return rows


def plain_rows(all_records: list[Record]) -> dict[str, list[tuple[Any, ...]]]:
    """Each key's newest row (the records hold no tombstone), in the tables' column order."""
    rows = sink_rows(all_records)
    defaults = {"generation": 0, "archived": False}
    return {
        name: [tuple({**defaults, **records[-1]}[column.name] for column in table.columns)
               for records in rows.by_table[name].values()]
        for name, table in (("case_states", case_states), ("derived_events", derived_events))
    }


def bare_tables(connection: psycopg.Connection[Any], suffix: str) -> None:
    for name in ("case_states", "derived_events"):
        connection.execute(
            f"CREATE TABLE {name}_{suffix} (LIKE {name} INCLUDING ALL)"  # noqa: S608
        )


def timed(action: Any) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()

    print(f"simulating {args.cases:,} cases…", flush=True)
    prepared = records(args.cases)
    count = len(prepared)
    plain = plain_rows(prepared)
    print(f"{count:,} records ({len(plain['case_states']):,} case states, "
          f"{len(plain['derived_events']):,} derived events)")
    server = PostgresServer().start()
    try:
        url = server.new_database()
        engine = connect(url)
        upgrade(engine)
        dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname={url.rsplit('/', 1)[1]}"
        with psycopg.connect(dsn, autocommit=True) as connection:
            bare_tables(connection, "copy")
            bare_tables(connection, "many")

        def copy() -> None:
            with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
                for name, rows in plain.items():
                    with cursor.copy(f"COPY {name}_copy FROM STDIN") as load:
                        for row in rows:
                            load.write_row(row)

        def executemany() -> None:
            with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
                for name, rows in plain.items():
                    marks = ", ".join(["%s"] * len(rows[0]))
                    cursor.executemany(
                        f"INSERT INTO {name}_many VALUES ({marks})", rows  # noqa: S608
                    )

        store = Store(engine)

        def sink_database_part() -> None:
            for start in range(0, count, args.batch):
                store.write(sink_rows(prepared[start:start + args.batch]))

        results = {
            "baseline COPY": timed(copy),
            "baseline executemany": timed(executemany),
            "sink, database part (upserts)": timed(sink_database_part),
        }
        results["sink, database part, again (rows unchanged)"] = timed(sink_database_part)
        read_only, through_sink = end_to_end(prepared, server, args.batch)
        results["broker read only (kafka-python, no database)"] = read_only
        results["sink, end to end via the broker"] = through_sink
        engine.dispose()
    finally:
        server.stop()

    baseline = results["baseline COPY"]
    print(f"\n{'path':<46} {'records/s':>12} {'× COPY time':>12}")
    for name, seconds in results.items():
        print(f"{name:<46} {count / seconds:>12,.0f} {seconds / baseline:>12.2f}")


def end_to_end(prepared: list[Record], server: PostgresServer, batch: int
               ) -> tuple[float, float]:
    """Seconds to read every record from the broker alone, and through the sink."""
    from kafka import KafkaProducer

    from onestop.common.settings import Settings
    from onestop.common.topics import create_topics, topics_for
    from onestop.streams.broker import EmbeddedBroker
    from onestop.streams.tansu_compat import read_to_end

    with EmbeddedBroker() as broker:
        settings = Settings(broker_url=broker.url, app_id="bench", topic_prefix="bench",
                            partitions=1)
        create_topics(settings)
        topics = topics_for(settings)
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers,
                                 linger_ms=20, batch_size=512 * 1024)
        for kind, key, value, _source in prepared:
            topic = topics.case_changelog if kind == "state" else topics.derived_events
            producer.send(topic.name, key=key, value=value)
        producer.flush()
        producer.close()
        names = [topics.case_changelog.name, topics.derived_events.name]
        began = time.perf_counter()
        read = len(read_to_end(settings.bootstrap_servers, names))
        read_only = time.perf_counter() - began
        assert read == len(prepared), (read, len(prepared))
        engine = connect(server.new_database())
        upgrade(engine)
        sink = Sink(settings, Store(engine), max_records=batch)
        # The group join is not the sink's throughput: wait for the first records.
        first = 0
        while first == 0:
            first = sink.poll_once(1.0)
        done = first
        began = time.perf_counter()
        while done < len(prepared):
            done += sink.poll_once(1.0)
        seconds = time.perf_counter() - began
        sink.close()
        engine.dispose()
    # Scaled to the whole count: the first poll's records were not timed.
    return read_only, seconds * len(prepared) / max(1, len(prepared) - first)


if __name__ == "__main__":
    main()
