"""The `onestop` command."""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from onestop.common.replay import Replay, derived_json
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, Reference, ReferenceError, load_reference
from onestop.streams.report_tables import figures_table, waits_table

app = typer.Typer(
    help="Giám sát Bộ phận Một cửa / One-stop centre monitor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def main() -> None:
    """The `onestop` command. A user never sees a traceback: an unexpected failure is one
    line, with how to see the details (ONESTOP_DEBUG=1)."""
    try:
        app(prog_name="onestop")
    except Exception as error:  # noqa: BLE001 - the last guard before the user's terminal
        if os.environ.get("ONESTOP_DEBUG", "").lower() in ("1", "true", "yes"):
            raise
        err.print(f"Lỗi / Error: unexpected {type(error).__name__}: {error} "
                  "(ONESTOP_DEBUG=1 shows where; please report it)", markup=False,
                  style="bold red")
        sys.exit(1)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"onestop {metadata.version('onestop-monitor')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Phiên bản / the version, and exit.")] = False,
) -> None:
    """Giám sát Bộ phận Một cửa / One-stop centre monitor."""


LOG_LEVELS = ("debug", "info", "warning", "error")


def _loglevel(text: str) -> str:
    level = {"warn": "warning", "crit": "error"}.get(text.lower(), text.lower())
    if level not in LOG_LEVELS:
        raise _fail(f"--loglevel '{text}': give one of {', '.join(LOG_LEVELS)}")
    return level


def _output(path: Path | None, option: str) -> None:
    """Refuse, before any work, a path that cannot be written: a folder, or a file in a
    folder that does not exist or may not be written."""
    if path is None:
        return
    if path.is_dir():
        raise _fail(f"{option} {path}: is a folder; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise _fail(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _fail(f"{option} {path}: may not be written here")

# Files larger than this get a progress bar.
PROGRESS_BYTES = 8 * 1024 * 1024
ReferenceOption = Annotated[
    Path,
    typer.Option("--reference", help="Reference data directory (CSV files, contract §4)."),
]


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]Lỗi / Error:[/] {message}")
    return typer.Exit(2)


def _load(reference_dir: Path) -> Reference:
    try:
        return load_reference(reference_dir)
    except ReferenceError as error:
        raise _fail(f"reference data: {error}") from None


def _instant(text: str, option: str) -> float:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option}: '{text}' is not an ISO 8601 instant") from None
    if value.tzinfo is None:
        raise _fail(f"{option}: '{text}' has no time-zone offset, e.g. 2026-03-31T17:00:00+07:00")
    return value.timestamp()


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option}: '{text}' is not a date as YYYY-MM-DD") from None


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


@app.command()
def replay(
    events: Annotated[Path, typer.Argument(help="JSON Lines file of case and queue events.")],
    reference: ReferenceOption = SAMPLE_PROVINCE,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge cases as of this instant (default: latest event)."),
    ] = None,
    period_from: Annotated[str | None, typer.Option("--from", help="Period start date.")] = None,
    period_to: Annotated[str | None, typer.Option("--to", help="Period end date.")] = None,
    dead_letters: Annotated[
        Path | None,
        typer.Option(help="Where rejected lines go (default: EVENTS.dead-letters.jsonl)."),
    ] = None,
    derived: Annotated[
        Path | None, typer.Option(help="Also write the derived events (contract §5) here.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of stdout.")] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Also write the sink's tables to this database URL "
                     "(backfill), e.g. sqlite:///onestop.db."),
    ] = None,
) -> None:
    """Replay a file of events and print the figures (contract §6) as JSON."""
    start, end = _date(period_from, "--from"), _date(period_to, "--to")
    if start is not None and end is not None and start > end:
        raise _fail(f"--from {start} is after --to {end}")
    as_of_instant = None if as_of is None else _instant(as_of, "--as-of")
    if not events.is_file():
        raise _fail(f"no events file at {events}")
    _output(out, "--out")
    _output(derived, "--derived")
    _output(dead_letters, "--dead-letters")  # the default is made only when needed
    rules = CaseRules(_load(reference))
    store = None if db is None else _store(db)
    result, rejected, unknown = replay_file(
        events, rules, dead_letters, show_progress=True,
        collect_derived=derived is not None or db is not None,
    )
    if unknown * 2 > rejected > 0:
        err.print(f"[yellow]{unknown:,} of the {rejected:,} rejected lines name procedures or "
                  f"agencies the reference data ({reference}) does not have: is --reference "
                  "the province's?[/]")
    if as_of_instant is None:
        if result.events == 0:
            raise _fail("no usable event in the file; give --as-of to report anyway")
        as_of_instant = result.latest
    report = result.report(as_of_instant, start, end)
    if derived is not None:
        with derived.open("wb") as handle:
            for event in sorted(result.derived, key=lambda e: (e.occurred_at, e.event_id)):
                handle.write(orjson.dumps(derived_json(event, rules.calendar.isoformat)) + b"\n")
    if store is not None:
        from onestop.consumers.backfill import backfill

        written = backfill(store, result, as_of_instant, _settings().partitions, err.print)
        err.print("Đã ghi / written: " + ", ".join(
            f"{count:,} {table}" for table, count in sorted(written.items())))
    payload = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if out is None:
        sys.stdout.buffer.write(payload)
    else:
        out.write_bytes(payload)
    where = dead_letters or _default_dead_letters(events)
    summary = f"{result.events:,} events used, {len(result.cases):,} cases"
    if rejected:
        summary += f", [yellow]{rejected:,} rejected lines written to {where}[/]"
    err.print(summary)
    if (start is not None or end is not None) and not report["cases"]:
        err.print("[yellow]Cảnh báo / warning: no case was received, ended or open in the "
                  "period[/]")
        raise typer.Exit(1)


def _default_dead_letters(events: Path) -> Path:
    return events.with_name(events.name + ".dead-letters.jsonl")


# The dead-letter reasons of a code the reference data lacks (models.case.CaseRules.check).
UNKNOWN_CODES = ("unknown procedure code", "unknown agency code")


def replay_file(
    events: Path,
    rules: CaseRules,
    dead_letters: Path | None,
    show_progress: bool = False,
    collect_derived: bool = False,
) -> tuple[Replay, int, int]:
    """Feed every line of `events`; rejected lines go to the dead-letter file with their
    line number and reason. Returns the replay, the number of rejected lines and how many
    of them named a procedure or agency the reference data lacks."""
    result = Replay.for_rules(rules, collect_derived)
    size = events.stat().st_size
    rejected = unknown = 0
    dead_path = dead_letters or _default_dead_letters(events)
    dead_handle = None
    progress = _progress() if show_progress and size >= PROGRESS_BYTES else None
    task = progress.add_task("Replaying / Đang xử lý", total=size) if progress else None

    def advance(_lines: int, done: int) -> None:
        if progress is not None and task is not None:
            progress.update(task, completed=done)

    try:
        if progress:
            progress.start()
        with events.open("rb") as handle:
            for dead in result.feed_lines(handle, advance):
                rejected += 1
                unknown += any(words in dead.reason for words in UNKNOWN_CODES)
                if dead_handle is None:
                    dead_handle = dead_path.open("wb")
                record = {"line": dead.line, "text": dead.text, "reason": dead.reason}
                dead_handle.write(orjson.dumps(record) + b"\n")
    finally:
        if progress:
            progress.stop()
        if dead_handle is not None:
            dead_handle.close()
    return result, rejected, unknown


@app.command()
def simulate(
    cases: Annotated[int, typer.Option(min=1, help="Number of cases.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same file.")] = 1,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2026-03-02",
    days: Annotated[int, typer.Option(min=1, help="Number of calendar days.")] = 30,
    out: Annotated[Path, typer.Option(help="Output JSON Lines file.")] = Path("province.jsonl"),
    disorder_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of case events delivered out of order.")
    ] = 0.02,
    duplicate_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of events delivered twice.")
    ] = 0.01,
    reference: ReferenceOption = SAMPLE_PROVINCE,
) -> None:
    """Write a realistic synthetic province's events (seeded, reproducible)."""
    from onestop.streams.simulate import SimulationSettings

    first_day = _date(start, "--start")
    assert first_day is not None
    _output(out, "--out")
    settings = SimulationSettings(
        cases=cases,
        seed=seed,
        start=first_day,
        days=days,
        disorder_rate=disorder_rate,
        duplicate_rate=duplicate_rate,
    )
    count = _write_simulation(_load(reference), settings, out)
    err.print(f"{count:,} events written to {out}")


def _write_simulation(reference: Reference, settings: Any, out: Path) -> int:
    from onestop.streams.simulate import simulate as run
    from onestop.streams.simulate import write_jsonl

    with _progress() as progress:
        task = progress.add_task("Simulating / Đang mô phỏng", total=None)
        return write_jsonl(
            run(reference, settings), out, lambda n: progress.update(task, completed=n)
        )


def _settings(**overrides: Any) -> Any:
    """Settings from the environment, with the command's options on top."""
    from pydantic import ValidationError

    from onestop.common.settings import Settings

    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or 'settings'}: {item['msg']}"
            for item in error.errors()
        )
        raise _fail(f"settings: {problems}") from None


def _kafka_settings(**overrides: Any) -> Any:
    """`_settings`, for a command that talks to Kafka: with SASL, refused credentials
    stop it at once with a plain message instead of a bootstrap timeout."""
    from onestop.streams.kafka_login import LoginRefused, check_login

    settings = _settings(**overrides)
    try:
        check_login(settings)
    except LoginRefused as error:
        raise _fail(str(error)) from None
    return settings


BrokerOption = Annotated[
    str | None,
    typer.Option("--broker-url", help="Kafka bootstrap servers (env ONESTOP_BROKER_URL)."),
]


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Loopback port to listen on.")] = 9092,
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, memory only) in the foreground."""
    import signal
    import threading

    from onestop.streams.broker import BrokerError, EmbeddedBroker

    embedded = EmbeddedBroker(port)
    try:
        embedded.start()
    except BrokerError as error:
        raise _fail(str(error)) from None
    err.print(
        f"Broker đang chạy / broker running at [bold]{embedded.url}[/] "
        "(memory only: everything is gone when it stops). Ctrl-C dừng / stops."
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            if embedded.process is None or embedded.process.poll() is not None:
                raise _fail("the broker exited on its own")
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()


def _create_topics(settings: Any) -> list[str]:
    """The missing topics created (their names), or a clear error and exit."""
    from onestop.common.topics import TopicMismatch, create_topics

    try:
        return create_topics(settings)
    except TopicMismatch as error:
        raise _fail(str(error)) from None
    except Exception as error:  # noqa: BLE001 - any failure to reach the broker
        raise _fail(f"cannot reach the broker at {settings.broker_url}: {error}") from None


@app.command()
def topics(broker_url: BrokerOption = None) -> None:
    """Create the pipeline's topics and exit (the one-shot job of docker-compose)."""
    from onestop.common.topics import topics_for

    settings = _kafka_settings(broker_url=broker_url)
    created = _create_topics(settings)
    names = [spec.name for spec in topics_for(settings).all()]
    err.print(f"{len(created)} topics created, {len(names) - len(created)} already there: "
              + ", ".join(names))


@app.command()
def worker(
    broker_url: BrokerOption = None,
    reference: Annotated[
        Path | None, typer.Option("--reference", help="Reference data directory.")
    ] = None,
    clock: Annotated[
        str | None,
        typer.Option(help="wall, fixed:<instant> or accelerated:<start>:<factor> (ONESTOP_CLOCK)."),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="error, warning, info or debug.")] = "info",
) -> None:
    """Run one Faust worker of the live pipeline; several workers share the partitions."""
    from onestop.streams.app import run_worker

    level = _loglevel(loglevel)
    settings = _kafka_settings(broker_url=broker_url, reference=reference, clock=clock)
    _load(settings.reference)
    _create_topics(settings)
    run_worker(settings, level)


@app.command()
def ingest(
    events: Annotated[Path, typer.Argument(help="JSON Lines file of case and queue events.")],
    broker_url: BrokerOption = None,
    portal: Annotated[
        bool,
        typer.Option("--portal", help="The file holds national-portal dossier-status records "
                     "(TrangThaiHoSo), one JSON object per line."),
    ] = False,
    dead_letters: Annotated[
        Path | None,
        typer.Option("--dead-letters", help="Where lines too large to send are listed "
                     "(default: the events file's name + .dead-letters.jsonl)."),
    ] = None,
) -> None:
    """Produce a file's events to the input topics, keyed by case or ticket id."""
    from onestop.streams.ingest import ingest_lines

    if not events.is_file():
        raise _fail(f"no events file at {events}")
    _output(dead_letters, "--dead-letters")  # the default is made only when needed
    dead_letters = dead_letters or events.with_name(events.name + ".dead-letters.jsonl")
    settings = _kafka_settings(broker_url=broker_url)
    _create_topics(settings)
    size = events.stat().st_size
    with _progress() as progress, events.open("rb") as handle:
        task = progress.add_task("Gửi / Sending", total=size)
        counts = ingest_lines(settings, handle, lambda done: progress.update(task, completed=done),
                              portal=portal)
    err.print(
        (f"{counts.portal_records:,} portal status records sent" if portal else
         f"{counts.case_events:,} case events, {counts.queue_events:,} queue events sent")
        + (f", [yellow]{counts.unkeyed:,} unreadable lines sent for dead-lettering[/]"
           if counts.unkeyed else "")
    )
    if counts.too_large:
        with dead_letters.open("wb") as handle:
            for number, reason in counts.too_large:
                handle.write(orjson.dumps({"file": str(events), "line": number,
                                           "reason": reason}) + b"\n")
        err.print(f"[yellow]{len(counts.too_large):,} lines too large to send (line "
                  f"{counts.too_large[0][0]:,} first), listed in {dead_letters}[/]")


@app.command()
def erase(
    case: Annotated[str, typer.Option(
        "--case", help="The case (dossier) code whose applicant asked to be erased.")],
    broker_url: BrokerOption = None,
    timeout: Annotated[float, typer.Option(
        help="Seconds to wait for a worker to confirm the erasure.")] = 60.0,
) -> None:
    """Erase one applicant's name, address, phone and e-mail from what the monitor keeps
    (Decree 13/2023/NĐ-CP), and say what it cannot remove."""
    from kafka.errors import KafkaError

    from onestop.common.clock import parse_clock
    from onestop.common.topics import topics_for
    from onestop.streams.erase import erase_case

    settings = _kafka_settings(broker_url=broker_url)
    topics = topics_for(settings)
    try:
        place = erase_case(settings, case, parse_clock(settings.clock).now(), timeout)
    except KafkaError as error:
        raise _fail(f"cannot reach the broker at {settings.broker_url}: {error}") from None
    if place is None:
        raise _fail(f"no worker confirmed within {timeout:.0f} s that case {case}'s applicant "
                    f"is erased: the request is in {topics.case_events.name} and takes effect "
                    "when a worker runs; run this command again to check")
    if not place.case_known:
        raise _fail(
            f"không có hồ sơ {case} đang xử lý. Nếu hồ sơ đã xong và được lưu trữ, kho SQL "
            "ghi yêu cầu xoá vào hồ sơ đã lưu (vốn không giữ thông tin người nộp); nếu gõ "
            f"sai mã thì chưa xoá gì / no worker holds a live case {case}. If the case was "
            "settled and archived, the SQL sink records the erasure with the stored case "
            "(which holds no applicant data anyway); if the code is mistyped, nothing was "
            "erased.")
    partition, offset = place.partition, place.offset
    days = settings.dead_letter_retention_days
    typer.echo("\n".join([
        f"Hồ sơ {case}: đã xoá họ tên, địa chỉ, điện thoại, e-mail của người nộp khỏi trạng "
        f"thái xử lý / case {case}: the applicant's name, address, phone and e-mail are "
        f"erased from the live state ({topics.case_changelog.name}, partition {partition}, "
        f"offset {offset}).",
        "Không lưu ở nơi khác / kept nowhere else by the monitor: the SQL store and the "
        "notifications ledger keep cases without their applicant; apology drafts travel "
        "only as e-mail attachments and are never stored.",
        "Hệ thống không tự xoá được / what the monitor cannot remove:",
        f"- the original events in {topics.case_events.name} (kept as long as its "
        "retention.ms says: the province's setting, README: Security);",
        f"- dead letters of this case in {topics.dead_letters.name} (deleted after "
        f"{days} days: ONESTOP_DEAD_LETTER_RETENTION_DAYS);",
        f"- older records of {topics.case_changelog.name} until the broker compacts it "
        "(within 7 days on Apache Kafka);",
        "- e-mails already sent to the head of the agency, with the apology draft.",
    ]))


@app.command()
def snapshot(
    broker_url: BrokerOption = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge as of this instant (default: the pipeline's clock)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of stdout.")] = None,
) -> None:
    """Print the live figures in the replay JSON format (contract §6), read from the
    running pipeline's state: the cases the workers hold, open or settled within the
    archive window."""
    from onestop.common.clock import parse_clock
    from onestop.consumers.glossary import OPEN
    from onestop.streams.snapshot import live_replay, pipeline_clock

    settings = _kafka_settings(broker_url=broker_url)
    instant = None if as_of is None else _instant(as_of, "--as-of")
    _output(out, "--out")
    try:
        if instant is None:
            instant = pipeline_clock(settings) or parse_clock(settings.clock).now()
        held = live_replay(settings)
        report = held.report(instant)
    except Exception as error:  # noqa: BLE001 - any failure to reach the broker
        raise _fail(f"cannot read the pipeline at {settings.broker_url}: {error}") from None
    if not held.cases and not held.tickets:
        raise _fail(f"the pipeline at {settings.broker_url} holds no case or ticket (app "
                    f"{settings.app_id}): has a worker run, and were events ingested?")
    payload = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if out is None:
        sys.stdout.buffer.write(payload)
    else:
        out.write_bytes(payload)
    opened = OPEN.within
    err.print(f"Số liệu này chỉ gồm hồ sơ các worker đang giữ: {opened.vi}, và đã xong trong "
              "thời hạn lưu trữ (ONESTOP_ARCHIVE_AFTER_DAYS); số liệu cả kỳ, kể cả hồ sơ đã "
              f"lưu trữ: `onestop report` / these figures cover only the cases the workers "
              f"hold: {opened.en}, and settled within the archive window "
              "(ONESTOP_ARCHIVE_AFTER_DAYS); for whole periods, archived cases included: "
              "`onestop report`.")


def _store(url: str | None, migrate: bool = True) -> Any:
    """The SQL store at `url` (default: ONESTOP_DATABASE_URL), its schema brought up to date
    by the migrations unless `migrate` is off."""
    from onestop.consumers.store import Store, StoreError, check_schema, connect, shown_url, upgrade

    url = url or _settings().database_url
    if not migrate and url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise _fail(f"no database file at {url[len('sqlite:///'):]}: check --db "
                    "(the sink, replay --db and db upgrade make one)")
    try:
        engine = connect(url)
        if migrate:
            upgrade(engine)
        else:
            check_schema(engine)
    except StoreError as error:
        raise _fail(str(error)) from None
    except Exception as error:  # noqa: BLE001 - any failure to reach the database
        raise _fail(f"cannot use the database {shown_url(url)}: {error}") from None
    return Store(engine)


DatabaseOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (env ONESTOP_DATABASE_URL), e.g. "
                 "sqlite:///onestop.db or postgresql+psycopg://user@host/onestop."),
]


@app.command()
def db(
    action: Annotated[str, typer.Argument(help="upgrade, downgrade or current.")],
    url: DatabaseOption = None,
    revision: Annotated[
        str | None, typer.Option(help="Target revision (upgrade: default head; downgrade: "
                                 "required, `base` drops every table).")
    ] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", help="Downgrade: yes, drop what the revisions above it hold.")] = False,
) -> None:
    """Bring the SQL schema up (or down) with its alembic migrations."""
    from onestop.consumers.store import (
        StoreError,
        connect,
        current_revision,
        downgrade,
        shown_url,
        upgrade,
    )

    if action not in {"upgrade", "downgrade", "current"}:
        raise _fail(f"'{action}': give upgrade, downgrade or current")
    if action == "downgrade" and (revision is None or not yes):
        raise _fail("downgrade drops tables and their rows (the notification ledger "
                    "included): give the --revision to go down to (base: every table) and "
                    "--yes")
    url = url or _settings().database_url
    try:
        engine = connect(url)
        if action == "upgrade":
            upgrade(engine, revision or "head")
        elif action == "downgrade":
            downgrade(engine, str(revision))  # given: checked above
        current = current_revision(engine)
    except StoreError as error:
        raise _fail(str(error)) from None
    except Exception as error:  # noqa: BLE001 - any failure to reach the database
        raise _fail(f"cannot use the database {shown_url(url)}: {error}") from None
    err.print(f"{engine.url.render_as_string(hide_password=True)}: revision {current or 'none'}")


@app.command()
def sink(
    broker_url: BrokerOption = None,
    url: DatabaseOption = None,
    loglevel: Annotated[str, typer.Option(help="error, warning, info or debug.")] = "info",
) -> None:
    """Write the pipeline's aggregates, derived events and states into SQL, until Ctrl-C."""
    import logging
    import signal
    import threading

    from onestop.consumers.sink import LOST_RECORDS_EXIT, BrokerLostRecords, Sink

    logging.basicConfig(level=_loglevel(loglevel).upper(),
                        format="%(asctime)s %(name)s %(message)s")
    settings = _kafka_settings(broker_url=broker_url)
    store = _store(url)
    try:
        running = Sink(settings, store)
    except Exception as error:  # noqa: BLE001 - any failure to reach the broker
        raise _fail(f"cannot reach the broker at {settings.broker_url}: {error}") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    err.print(f"SQL sink: {settings.broker_url} → "
              f"{store.engine.url.render_as_string(hide_password=True)} (Ctrl-C dừng / stops)")
    try:
        running.run(stop)
    except KeyboardInterrupt:
        pass
    except BrokerLostRecords as error:
        # Not markup: the message names partitions in brackets.
        err.print(f"Lỗi / Error: {error}", markup=False, highlight=False, style="bold red")
        raise typer.Exit(LOST_RECORDS_EXIT) from None
    except Exception as error:  # noqa: BLE001 - the batch's offsets stay uncommitted
        raise _fail(f"storing a batch failed: {error}; its offsets were not committed, "
                    "so a restarted sink stores it again") from None
    finally:
        running.close()


@app.command()
def reprocess(
    broker_url: BrokerOption = None,
    url: DatabaseOption = None,
    yes: Annotated[bool, typer.Option(
        "--yes", help="Yes, delete the derived topics and reset the consumer groups.")] = False,
) -> None:
    """Xử lý lại / judge every case again from the input topics after a rule change:
    empty the topics the workers write, reset the workers' and the sink's consumer groups
    to the start, and start a new generation of the SQL store. Run it with the workers
    and the sink stopped, then start them again."""
    from kafka.errors import KafkaError

    from onestop.streams.reprocess import Refused, check_idle, plan_for
    from onestop.streams.reprocess import reprocess as run

    settings = _kafka_settings(broker_url=broker_url)
    store = _store(url)  # a database that cannot be used stops it before any deletion
    plan = plan_for(settings)

    def say(line: str) -> None:
        err.print(line, markup=False)

    try:
        if not yes:
            check_idle(settings, plan, say)  # `run` checks right before it deletes
            say("\n".join(plan.lines()))
            raise _fail("reprocess deletes the topics above and resets the consumer groups: "
                        "give --yes")
        run(settings, store, plan, say)
    except Refused as error:
        raise _fail(str(error)) from None
    except KafkaError as error:
        raise _fail(f"cannot reach the broker at {settings.broker_url}: {error}; run "
                    "`onestop reprocess --yes` again once it answers") from None
    err.print("Hoàn tất / done. Chạy lại worker và sink / start the workers and the SQL sink: "
              "they read every input again under the current rules; the store's rows are "
              "replaced as the sink writes them, and the rows the new rules no longer make "
              "are removed once both have caught up.", markup=False)


@app.command()
def notify(
    broker_url: BrokerOption = None,
    url: DatabaseOption = None,
    loglevel: Annotated[str, typer.Option(help="error, warning, info or debug.")] = "info",
) -> None:
    """Tell heads of agencies about their cases at risk and late, by e-mail, until Ctrl-C;
    answer Alertmanager's webhook (with ONESTOP_WEBHOOK_TOKEN); the apology drafts travel
    as attachments of the late-case e-mails."""
    import logging
    import signal
    import threading

    from onestop.alerts.notifier import Notifier, open_consumer, serve
    from onestop.models.case import CaseRules

    logging.basicConfig(level=_loglevel(loglevel).upper(),
                        format="%(asctime)s %(name)s %(message)s")
    settings = _kafka_settings(broker_url=broker_url)
    store = _store(url)
    try:
        running = Notifier(settings, store.engine, CaseRules(_load(settings.reference)),
                           consumer=open_consumer(settings))
    except Exception as error:  # noqa: BLE001 - any failure to reach the broker
        raise _fail(f"cannot reach the broker at {settings.broker_url}: {error}") from None
    try:
        server = serve(running, settings.notifier_host, settings.notifier_port)
    except OSError as error:
        raise _fail(f"cannot listen on {settings.notifier_host}:{settings.notifier_port}: "
                    f"{error}; set ONESTOP_NOTIFIER_PORT") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    err.print(f"Notifier: {settings.broker_url} → SMTP {settings.smtp_host}:{settings.smtp_port}; "
              f"Alertmanager webhook http://{settings.notifier_host}:{settings.notifier_port}"
              "/alertmanager (Ctrl-C dừng / stops)")
    try:
        running.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        running.close()


REPORT_FORMATS = ("pdf", "html", "xlsx", "md", "json")


@app.command()
def report(
    period: Annotated[str, typer.Option(help="2026-03 (month), 2026-Q1 (quarter) or 2026.")],
    url: DatabaseOption = None,
    agency: Annotated[str | None, typer.Option(help="Only this agency (code).")] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="pdf, html (the document to send), xlsx (the "
                          "working file), md or json (default: from --out).")
    ] = "",
    out: Annotated[
        Path | None, typer.Option(help="Write here (default: stdout, not for xlsx).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge as of this instant (default: the newest data)."),
    ] = None,
    reference: ReferenceOption = SAMPLE_PROVINCE,
    lang: Annotated[
        str, typer.Option("--lang", help="The document's language: vi (default) or en; "
                          "the xlsx and md data are bilingual.")
    ] = "vi",
) -> None:
    """The provincial report for a month, quarter or year, from the SQL store."""
    from onestop.consumers.document import document_html, document_pdf, load_letterhead
    from onestop.consumers.excel import excel
    from onestop.consumers.render import markdown
    from onestop.consumers.report import (
        ReportError,
        build_report,
        comparison_for,
        parse_period,
        report_json,
    )

    _output(out, "--out")
    chosen = output_format or (out.suffix.lstrip(".") if out else "md")
    if chosen not in REPORT_FORMATS:
        raise _fail(f"--format '{chosen}': give one of {', '.join(REPORT_FORMATS)}")
    if chosen in ("xlsx", "pdf") and out is None:
        raise _fail(f"a {chosen} report needs --out FILE.{chosen}")
    if lang not in ("vi", "en"):
        raise _fail(f"--lang '{lang}': give vi or en")
    if lang == "en" and chosen not in ("pdf", "html"):
        raise _fail("--lang en: only the document (pdf, html) has an English rendering; "
                    "the xlsx and md data are bilingual")
    instant = None if as_of is None else _instant(as_of, "--as-of")
    reference_data = _load(reference)
    store = _store(url, migrate=False)
    try:
        chosen_period = parse_period(period)
        built = build_report(store.engine, reference_data, chosen_period, agency, instant)
    except ReportError as error:
        raise _fail(str(error)) from None
    scope = built["province"] if agency is None else built["agencies"][agency]
    # Cases touched in the period: received, ended, late, or open and counted (the
    # service-index rate counts open cases too).
    if not (scope["received"] or scope["ended"] or built["late_cases"]
            or scope["service_index_on_time_rate"]["denominator"]):
        raise _fail(f"no case was received, ended or late in {period} in this database: "
                    "check --period and --db")
    if chosen in ("md", "json"):
        payload = markdown(built, reference_data) if chosen == "md" else report_json(built)
    else:  # the document and the working file compare with earlier periods
        judged = dt.datetime.fromisoformat(built["as_of"]).timestamp()
        comparison = comparison_for(store.engine, reference_data, chosen_period, agency, judged)
        if chosen == "xlsx":
            payload = excel(built, reference_data, comparison)
        else:
            page = document_html(built, reference_data, load_letterhead(reference), comparison,
                                 lang=lang)
            try:
                payload = page if chosen == "html" else document_pdf(page)
            except RuntimeError as error:
                raise _fail(str(error)) from None
    if out is None:
        sys.stdout.buffer.write(payload)
    else:
        out.write_bytes(payload)
        err.print(f"Báo cáo / report {built['period']['label']} → {out}")


@app.command("deploy-files")
def deploy_files(
    out: Annotated[Path, typer.Option(help="The deploy folder to write into.")] = Path("deploy"),
    reference: ReferenceOption = SAMPLE_PROVINCE,
) -> None:
    """Generate the province's target rules for Prometheus and the Grafana dashboards."""
    from onestop.consumers.deploy_files import write_deploy_files

    for path in write_deploy_files(_load(reference), out):
        err.print(f"→ {path}")


@app.command()
def demo(
    cases: Annotated[int, typer.Option(min=1, help="Number of cases to simulate.")] = 4000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    days: Annotated[int, typer.Option(min=1, help="Simulated days.")] = 30,
    speed: Annotated[
        float, typer.Option(min=1, help="Simulated seconds per wall second.")
    ] = 1800,
    seconds: Annotated[
        float | None, typer.Option(help="Stop after this many wall seconds (default: Ctrl-C).")
    ] = None,
    batch: Annotated[
        bool, typer.Option("--batch", help="Replay the month in one go instead of live.")
    ] = False,
    reference: ReferenceOption = SAMPLE_PROVINCE,
) -> None:
    """Run the live pipeline on the embedded broker with a simulated province and show the
    figures per agency and centre as they change (Ctrl-C stops everything)."""
    from onestop.streams.simulate import SimulationSettings

    reference_data = _load(reference)
    settings = SimulationSettings(cases=cases, seed=seed, days=days)
    out = Console()  # the terminal's own size: the tables fit it (streams/report_tables.py)
    if not batch:
        from onestop.streams.broker import BrokerError
        from onestop.streams.demo import run_demo

        try:
            run_demo(reference_data, reference, settings, speed, seconds, out)
        except (BrokerError, RuntimeError) as error:
            raise _fail(str(error)) from None
        return
    with tempfile.TemporaryDirectory(prefix="onestop-demo-") as folder:
        events = Path(folder) / "province.jsonl"
        count = _write_simulation(reference_data, settings, events)
        rules = CaseRules(reference_data)
        result, rejected, _unknown = replay_file(events, rules, Path(folder) / "dead.jsonl")
    last_day = settings.start + dt.timedelta(days=settings.days - 1)
    as_of = rules.calendar.end_of_day(last_day)
    report = result.report(as_of)
    err.print(
        f"Mô phỏng / simulated: {settings.cases:,} hồ sơ / cases, {count:,} sự kiện / events "
        f"({settings.start} → {last_day}), {rejected} rejected; "
        f"số liệu tại / figures as of {report['as_of']}"
    )
    out.print(figures_table(report, reference_data, out.width))
    out.print(waits_table(report, reference_data, out.width))


if __name__ == "__main__":
    app()
