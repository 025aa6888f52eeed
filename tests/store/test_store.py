"""The SQL store on SQLite and on a real PostgreSQL server: migrations, idempotent
upserts, and reports whose figures are the replay's."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from openpyxl import load_workbook
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import DBAPIError

from onestop.common.codec import Entry, decode_entry, encode_entry
from onestop.common.replay import Replay
from onestop.consumers.backfill import backfill
from onestop.consumers.deploy_files import case_list_sql
from onestop.consumers.excel import excel
from onestop.consumers.report import build_report, parse_period
from onestop.consumers.rows import (
    Rows,
    add_aggregate_record,
    add_derived_record,
    add_state_record,
    case_row,
)
from onestop.consumers.schema import case_states, metadata
from onestop.consumers.store import (
    FROM_FILE,
    Store,
    connect,
    current_revision,
    downgrade,
    upgrade,
)
from onestop.models.case import CaseRules, days_late
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.simulate import SimulationSettings, simulate

REFERENCE = load_reference(SAMPLE_PROVINCE)
TABLES = {"case_states", "ticket_states", "agency_day_figures", "centre_day_figures",
          "derived_events", "notifications", "generations"}
VIEWS = {"agency_daily", "centre_daily", "alert_events", "late_and_at_risk_cases"}
# The simulation runs 2 March – 14 April: March is whole, April is cut by the data's end.
AS_OF = dt.datetime(2026, 4, 20, 17, tzinfo=dt.timezone(dt.timedelta(hours=7))).timestamp()


@pytest.fixture(scope="module")
def province_lines() -> list[bytes]:
    settings = SimulationSettings(cases=700, seed=3, days=44)
    return [orjson.dumps(event) for event in simulate(REFERENCE, settings)]


def replayed(lines: list[bytes], collect_derived: bool = True) -> Replay:
    replay = Replay.for_rules(CaseRules(REFERENCE), collect_derived)
    list(replay.feed_lines(lines))
    return replay


@pytest.fixture
def migrated() -> Iterator[Callable[[str], tuple[Engine, Store]]]:
    """Opens a store with its schema up to date; closes its connections afterwards."""
    engines: list[Engine] = []

    def open_store(url: str) -> tuple[Engine, Store]:
        engine = connect(url)
        engines.append(engine)
        upgrade(engine)
        return engine, Store(engine)

    yield open_store
    for engine in engines:
        engine.dispose()


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            name: sorted(tuple(row) for row in connection.execute(select(table)))
            for name, table in metadata.tables.items()
        }


def test_migrations_build_the_schema_on_an_empty_database_and_take_it_down_again(
    database_url: str, migrated: Any,
) -> None:
    engine, _ = migrated(database_url)
    assert current_revision(engine) == "0005"
    assert TABLES <= set(inspect(engine).get_table_names())
    assert set(inspect(engine).get_view_names()) == VIEWS
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []

    downgrade(engine)
    inspector = inspect(engine)
    assert current_revision(engine) is None
    assert not TABLES & set(inspector.get_table_names())
    assert inspector.get_view_names() == []
    upgrade(engine)  # and up again from nothing
    assert TABLES <= set(inspect(engine).get_table_names())


def test_writing_the_same_records_twice_or_an_older_one_after_changes_nothing(
    database_url: str, province_lines: list[bytes], migrated: Any,
) -> None:
    engine, store = migrated(database_url)
    replay = replayed(province_lines[:3000])
    case_id, state = next(iter(replay.cases.items()))
    older = state._replace(facts=state.facts[:1])
    aggregate = {"scope": "agency", "code": "SX-STP", "day": "2026-03-03", "partition": 1,
                 "as_of": "2026-03-03T10:00:00+07:00", "figures": _agency_figures(replay)}
    derived = orjson.dumps({"event_id": "d1", "type": "overdue_detected", "case_id": case_id,
                            "agency": "SX-STP", "occurred_at": "2026-03-04T08:00:00+07:00"})

    def batch() -> Rows:
        rows = Rows()
        add_state_record(rows, encode_entry(Entry(2, older)), b'"x"', (2, 10))
        add_state_record(rows, encode_entry(Entry(2, state)), b'"x"', (2, 11))
        for offset, ticket in enumerate(list(replay.tickets.values())[:50]):
            add_state_record(rows, encode_entry(Entry(0, ticket)), b'"t"', (0, offset))
        add_aggregate_record(rows, orjson.dumps(aggregate), b"agency:SX-STP:2026-03-03:1", (3, 5))
        add_derived_record(rows, derived, case_id.encode(), (1, 7))
        return rows

    store.write(batch())
    first = dump(engine)
    assert len(first["ticket_states"]) == 50
    assert len(first["agency_day_figures"]) == 1 and len(first["derived_events"]) == 1
    store.write(batch())
    assert dump(engine) == first

    # A consumer restarted before its commit reads the older state again, alone.
    rows = Rows()
    add_state_record(rows, encode_entry(Entry(2, older)), b'"x"', (2, 10))
    store.write(rows)
    assert dump(engine) == first
    # A newer one does replace it; a tombstone at a later offset removes the aggregate.
    rows = Rows()
    add_state_record(rows, encode_entry(Entry(2, older)), b'"x"', (2, 12))
    add_aggregate_record(rows, None, b"agency:SX-STP:2026-03-03:1", (3, 6))
    store.write(rows)
    after = dump(engine)
    (stored,) = [row for row in after["case_states"] if row[0] == case_id]
    assert stored[-3] == 12  # source_offset (then the generation and archived)
    assert after["agency_day_figures"] == []


def test_after_a_reprocess_the_new_generation_replaces_rows_whatever_their_offsets(
    database_url: str, province_lines: list[bytes], migrated: Any,
) -> None:
    """`onestop reprocess` empties the derived topics, so the records that rebuild the
    store come at offsets lower than those of the rows they replace."""
    engine, store = migrated(database_url)
    replay = replayed(province_lines[:3000])
    (case_id, state), (other_id, other) = list(replay.cases.items())[:2]
    aggregate = {"scope": "agency", "code": "SX-STP", "day": "2026-03-03", "partition": 1,
                 "as_of": "2026-03-03T10:00:00+07:00", "figures": _agency_figures(replay)}

    def derived(body: str) -> bytes:
        return orjson.dumps({"event_id": "d1", "type": "overdue_detected", "case_id": case_id,
                             "agency": "SX-STP", "occurred_at": body})

    old = Rows()
    add_state_record(old, encode_entry(Entry(2, state)), b'"x"', (2, 500))
    add_state_record(old, encode_entry(Entry(2, other)), b'"y"', (2, 501))
    add_aggregate_record(old, orjson.dumps(aggregate), b"agency:SX-STP:2026-03-03:1", (1, 300))
    add_derived_record(old, derived("2026-03-04T08:00:00+07:00"), b"C", (1, 400))
    store.write(old)
    backfill_row = case_row(state._replace(case_id="FROM-FILE"), (FROM_FILE, 0))
    from_file = Rows()
    from_file.put(case_states, backfill_row)
    store.write(from_file)
    assert store.generation() == 0 and not store.old_rows_waiting()
    assert store.highest_offsets([case_states]) == {2: 501}

    assert store.start_generation("2026-12-01T10:00:00+07:00", "rule change") == 1
    assert store.old_rows_waiting()
    assert store.highest_offsets([case_states]) == {}
    new = Rows()
    add_state_record(new, encode_entry(Entry(2, state._replace(facts=state.facts[:1]))),
                     b'"x"', (2, 3))
    add_derived_record(new, derived("2026-03-05T08:00:00+07:00"), b"C", (1, 0))
    add_aggregate_record(new, None, b"agency:SX-STP:2026-03-03:1", (1, 0))
    store.write(new)
    after = dump(engine)
    stored = {row[0]: row for row in after["case_states"]}
    # Rewritten from offset 3, although the row came from offset 500.
    assert stored[case_id][-4:] == (2, 3, 1, False) and len(stored[case_id]) > 4
    assert decode_entry(stored[case_id][5].encode()).state.facts == state.facts[:1]
    # A derived event is rewritten once per generation (its body may change with the rules).
    ((_, _, _, _, occurred_at, _, _, offset, generation),) = after["derived_events"]
    assert (occurred_at, offset, generation) == ("2026-03-05T08:00:00+07:00", 0, 1)
    # A tombstone of the new generation removes the older row whatever its offset.
    assert after["agency_day_figures"] == []

    # Within the new generation, offsets count again: an older record changes nothing.
    again = Rows()
    add_state_record(again, encode_entry(Entry(2, state)), b'"x"', (2, 2))
    add_derived_record(again, derived("2026-03-09T08:00:00+07:00"), b"C", (1, 5))
    store.write(again)
    assert dump(engine) == after
    assert store.highest_offsets([case_states]) == {2: 3}

    # Once everything was read again, what the new generation did not rewrite goes, but
    # not the rows a file backfill wrote (the topics do not hold their events).
    assert store.remove_old_rows()["case_states"] == 1
    assert {row[0] for row in dump(engine)["case_states"]} == {case_id, "FROM-FILE"}
    assert not store.old_rows_waiting()


def _agency_figures(replay: Replay) -> dict[str, Any]:
    return replay.report(AS_OF)["province"]


@pytest.mark.parametrize("period", ["2026-03", "2026-Q1", "2026-04", "2026"])
def test_report_figures_equal_the_replay_for_the_same_period(
    database_url: str, province_lines: list[bytes], period: str, migrated: Any,
) -> None:
    engine, store = migrated(database_url)
    backfill(store, replayed(province_lines), AS_OF, partitions=4)
    chosen = parse_period(period)

    report = build_report(engine, REFERENCE, chosen, as_of=AS_OF)
    expected = replayed(province_lines, collect_derived=False).report(
        AS_OF, chosen.first, chosen.last
    )

    assert report["province"] == expected["province"]
    assert report["centres"] == expected["centres"]
    zeros = {code: figures for code, figures in report["agencies"].items()
             if code not in expected["agencies"]}
    assert report["agencies"] == {**expected["agencies"], **zeros}
    assert all(figures["received"] == figures["ended"] == 0 for figures in zeros.values())
    late = {case_id for case_id, case in expected["cases"].items()
            if case["verdict"] == "late" or case["overdue"]}
    assert {case["case_id"] for case in report["late_cases"]} == late
    assert report["province"]["received"] > 0 and late
    assert report["late_paper_transfers"] == expected["findings"]["late_paper_transfers"]


def test_a_report_for_one_agency_keeps_its_figures_and_late_cases(
    tmp_path: Path, province_lines: list[bytes], migrated: Any,
) -> None:
    engine, store = migrated(f"sqlite:///{tmp_path / 'one.db'}")
    backfill(store, replayed(province_lines), AS_OF, partitions=4)
    whole = build_report(engine, REFERENCE, parse_period("2026-03"), as_of=AS_OF)
    code = whole["late_cases"][0]["handling_agency"]  # an agency with late cases
    one = build_report(engine, REFERENCE, parse_period("2026-03"), code, as_of=AS_OF)
    assert list(one["agencies"]) == [code]
    assert one["agencies"][code] == whole["agencies"][code]
    assert one["late_cases"] and all(
        case["handling_agency"] == code or code in case["responsible"]
        for case in one["late_cases"]
    )
    assert [case for case in whole["late_cases"] if case["handling_agency"] == code] == [
        case for case in one["late_cases"] if case["handling_agency"] == code]
    assert [entry["agency"] for entry in one["ranking"]] == [code]


def test_the_excel_report_is_a_working_file_with_numbers_dates_charts_and_filters(
    tmp_path: Path, province_lines: list[bytes], migrated: Any,
) -> None:
    engine, store = migrated(f"sqlite:///{tmp_path / 'xl.db'}")
    backfill(store, replayed(province_lines), AS_OF, partitions=4)
    report = build_report(engine, REFERENCE, parse_period("2026-03"), as_of=AS_OF)
    path = tmp_path / "report.xlsx"
    path.write_bytes(excel(report, REFERENCE))

    book = load_workbook(path)
    assert book.sheetnames == [
        "Tổng hợp", "Mục tiêu", "Qua các kỳ", "Theo cơ quan", "Xếp hạng", "Theo lĩnh vực", "Theo thủ tục",
        "Thời gian chờ",
        "Chỉ số phục vụ", "Hồ sơ quá hạn", "Hồ sơ giấy chuyển muộn",
    ]
    title = "Báo cáo kết quả giải quyết thủ tục hành chính tháng 3/2026"
    for sheet in book:
        assert sheet["A1"].value == title
        assert sheet["A3"].value is None  # March is over: no provisional figures
        assert sheet.auto_filter.ref.startswith("A6:")
        assert sheet.oddHeader.center.text == title
        assert sheet.oddFooter.center.text == "Trang &P / &N"
        assert sheet.print_title_rows == "$6:$6"
        assert sheet.page_setup.orientation == "landscape"
        assert str(sheet.page_setup.paperSize) == sheet.PAPERSIZE_A4

    province = report["province"]
    summary = book["Tổng hợp"]
    assert summary["A7"].value == "Tiếp nhận / Received"
    assert (summary["B7"].value, summary["B7"].number_format) == (province["received"], "#,##0")
    assert summary.auto_filter.ref == f"A6:B{summary.max_row}"

    targets = book["Mục tiêu"]
    on_time = province["completed_on_time_rate"]
    assert targets["A7"].value == "Tỷ lệ trước và đúng hạn / Early or on-time rate"
    assert targets["B7"].value == pytest.approx(on_time["numerator"] / on_time["denominator"])
    assert targets["B7"].number_format == "0.0%"
    results = {rule.formula[0] for cells in targets.conditional_formatting for rule in cells.rules}
    assert '"Không đạt / Not met"' in results

    agencies = book["Theo cơ quan"]
    heading = [str(cell.value).split("\n")[0] for cell in agencies[6]]
    column = {name: number for number, name in enumerate(heading, 1)}
    codes = [agencies.cell(row, 1).value for row in range(7, 7 + len(report["agencies"]))]
    assert codes == list(report["agencies"])
    syt = report["agencies"]["SX-SYT"]
    row = 7 + codes.index("SX-SYT")
    assert agencies.cell(row, column["Cơ quan"]).value == REFERENCE.agencies["SX-SYT"].name
    assert agencies.cell(row, column["Tỷ lệ trước và đúng hạn"]).value == syt["completed_on_time_rate"]["ratio"]
    assert agencies.cell(row, column["Tỷ lệ trước và đúng hạn"]).number_format == "0.0%"
    assert agencies.cell(row, column["Mục tiêu"]).value == REFERENCE.targets["completed_on_time_rate"]
    total = 7 + len(codes)
    assert agencies.cell(total, column["Cơ quan"]).value == "Tổng cộng / Total"
    for key, vi in [("received", "Tiếp nhận"), ("ended", "Đã giải quyết"),
                    ("late", "Quá hạn"), ("overdue_open", "Đang quá hạn")]:
        assert agencies.cell(total, column[vi]).value == province[key]
        assert agencies.cell(total, column[vi]).number_format == "#,##0"
    assert agencies.cell(total, column["Tỷ lệ trước và đúng hạn"]).value == pytest.approx(
        on_time["numerator"] / on_time["denominator"])
    e_transfer = province["e_transfer_share"]
    assert agencies.cell(total, column["Luân chuyển hồ sơ điện tử"]).value == pytest.approx(
        e_transfer["numerator"] / e_transfer["denominator"])
    assert agencies.cell(total, column["Trực tuyến"]).value == pytest.approx(
        province["received_online"] / province["received"])
    assert agencies.cell(total, column["Đạt mục tiêu"]).value == (
        "Đạt / Met" if on_time["numerator"] / on_time["denominator"]
        >= REFERENCE.targets["completed_on_time_rate"] else "Không đạt / Not met")
    assert agencies.auto_filter.ref == f"A6:{agencies.cell(6, len(heading)).column_letter}{total - 1}"
    assert len(agencies._charts) == 1
    rate = agencies.cell(7, column["Tỷ lệ trước và đúng hạn"]).coordinate
    coloured = {(str(cells.sqref), rule.formula[0]) for cells in agencies.conditional_formatting
                for rule in cells.rules}
    target = agencies.cell(7, column["Mục tiêu"]).coordinate
    assert any(sqref.startswith(rate) and f"{rate}<{target}" in formula
               for sqref, formula in coloured)

    # Every case by field and by procedure, each table's total row the province's figures.
    for name, first_figure in (("Theo lĩnh vực", 2), ("Theo thủ tục", 4)):
        sheet = book[name]
        last = sheet.max_row
        while sheet.cell(last, 1).value != "Tổng cộng / Total":
            last -= 1  # below the table, a chart's anchor may follow
        assert sheet.auto_filter.ref.endswith(str(last - 1))
        shown = [sheet.cell(last, column).value for column in range(first_figure,
                                                                   first_figure + 7)]
        assert shown == [province[key] for key in ("received", "ended", "early", "on_time",
                                                   "late", "overdue_open")] + [
            pytest.approx(on_time["numerator"] / on_time["denominator"])]
        assert sum(sheet.cell(row, first_figure).value for row in range(7, last)) == (
            province["received"])

    waits = book["Thời gian chờ"]
    centre, figures = next(iter(sorted(report["centres"].items())))
    assert (waits["A7"].value, waits["B7"].value) == (centre, REFERENCE.agencies[centre].name)
    assert (waits["C7"].value, waits["C7"].number_format) == (figures["visits_waited"], "#,##0")
    assert waits["G7"].value == pytest.approx(figures["wait_p50_seconds"] / 60, abs=0.05)
    assert waits["G7"].number_format == "0.0"
    assert len(waits._charts) == 1
    assert any("D7<E7" in rule.formula[0]
               for cells in waits.conditional_formatting for rule in cells.rules)

    late = book["Hồ sơ quá hạn"]
    heading = [str(cell.value).split("\n")[0] for cell in late[6]]
    column = {name: number for number, name in enumerate(heading, 1)}
    rows = list(late.iter_rows(min_row=7))
    assert len(rows) == len(report["late_cases"]) > 0
    days = [row[column["Số ngày quá hạn"] - 1].value for row in rows]
    assert days == sorted(days, reverse=True) and days[0] > days[-1] >= 1
    by_id = {case["case_id"]: case for case in report["late_cases"]}
    formats = set()
    for row in rows:
        case = by_id[row[0].value]
        due = row[column["Hạn giải quyết"] - 1]
        due_at = dt.datetime.fromisoformat(case["due_at"])
        assert due.is_date
        if due_at.time() == dt.time(0):  # 24:00 of the day before (rulebook §11.13)
            shown = (dt.datetime.combine(due_at.date() - dt.timedelta(days=1), dt.time()),
                     "dd/mm/yyyy")
        else:
            shown = (due_at.replace(tzinfo=None), "dd/mm/yyyy hh:mm")
        assert (due.value, due.number_format) == shown
        formats.add(due.number_format)
        assert row[column["Số ngày quá hạn"] - 1].value == case["days_late"]
        assert row[column["Thủ tục"] - 1].value == REFERENCE.procedures[case["procedure"]].name
        assert row[column["Cơ quan giải quyết"] - 1].value == (
            REFERENCE.agencies[case["handling_agency"]].name)
    assert formats == {"dd/mm/yyyy", "dd/mm/yyyy hh:mm"}  # days and times of day both seen

    # One agency's report for a month not yet over: its name, and provisional figures.
    april = build_report(engine, REFERENCE, parse_period("2026-04"), "SX-SYT", as_of=AS_OF)
    one = load_workbook(io.BytesIO(excel(april, REFERENCE)))["Tổng hợp"]
    assert one["A1"].value == (
        "Báo cáo kết quả giải quyết thủ tục hành chính tháng 4/2026 – Sở Y tế tỉnh Sông Xanh")
    assert one["A3"].value == (
        "Số liệu tạm tính đến 20/04/2026 17:00 / provisional figures as of 20/04/2026 17:00")


def test_periods_are_months_quarters_and_years() -> None:
    assert parse_period("2026-02") == parse_period(" 2026-02 ")
    assert (parse_period("2026-02").first, parse_period("2026-02").last) == (
        dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert (parse_period("2026-q4").first, parse_period("2026-q4").last) == (
        dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert parse_period("2026").last == dt.date(2026, 12, 31)
    for wrong in ("2026-13", "2026-Q5", "March", "26-03"):
        with pytest.raises(ValueError, match="2026"):
            parse_period(wrong)


def test_stored_case_states_carry_no_personal_data_and_judge_the_same(
    province_lines: list[bytes],
) -> None:
    from onestop.common.codec import decode_entry
    from onestop.consumers.rows import case_row

    replay = replayed(province_lines[:2000], collect_derived=False)
    with_applicant = [state for state in replay.cases.values()
                      if any(fact.kind == "received" and fact.data[7] for fact in state.facts)]
    assert with_applicant, "the simulation sends applicants"
    for state in with_applicant:
        row = case_row(state, (0, 1))
        assert "@" not in row["state"]  # no e-mail address, nor any applicant field
        stored = decode_entry(row["state"].encode()).state
        assert all(fact.data[7] is None for fact in stored.facts if fact.kind == "received")
        # The view differs in the applicant alone (kept live for apology letters).
        view = replay.rules.evaluate(state, AS_OF)
        assert view is not None and view.applicant is not None
        assert replay.rules.evaluate(stored, AS_OF) == dataclasses.replace(view, applicant=None)


def test_the_agency_boards_case_list_holds_the_rules_late_and_at_risk_cases(
    postgres: Any, province_lines: list[bytes], migrated: Any,
) -> None:
    """The SQL of the agency board's case list, run on PostgreSQL (Grafana's data source)
    over the sink's tables as of an instant: each agency's open cases that the rules find
    overdue, with models.case.days_late's days, or at risk, and no other."""
    engine, store = migrated(postgres.new_database())
    replay = replayed(province_lines)
    replay.report(AS_OF)  # the derived events up to AS_OF, as a live worker has them
    backfill(store, replay, AS_OF, partitions=4)
    rules = CaseRules(REFERENCE)
    expected: dict[str, set[tuple[str, str, int]]] = {}
    for case_id, state in replay.cases.items():
        view = rules.evaluate(state, AS_OF)
        if view is None or not (view.overdue or view.at_risk(AS_OF)):
            continue
        row = (case_id, "Đang quá hạn / Overdue", days_late(view, AS_OF, rules.calendar)) \
            if view.overdue else (case_id, "Sắp quá hạn / At risk", 0)
        for code in {view.handling_agency, view.holder}:
            expected.setdefault(code, set()).add(row)
    found = {row for rows in expected.values() for row in rows}
    assert sum(1 for row in found if row[2] > 1) > 3 and any(row[2] == 0 for row in found)

    query = case_list_sql(now=f"TIMESTAMPTZ '{rules.calendar.isoformat(AS_OF)}'")
    listed: dict[str, set[tuple[str, str, int]]] = {}
    with engine.connect() as connection:
        for code in REFERENCE.agencies:
            rows = connection.execute(text(query.replace("$agency", code))).all()
            assert [row[3] for row in rows] == sorted((row[3] for row in rows), reverse=True)
            if rows:
                listed[code] = {(row[0], row[1], row[3]) for row in rows}
    assert listed == expected


def test_grafanas_database_user_reads_the_views_and_changes_nothing(
    postgres: Any, tmp_path: Path, migrated: Any,
) -> None:
    """deploy/postgres/grafana-reader.sh as the postgres image runs it on a new database
    (before the sink has migrated anything): Grafana's user then reads the tables and
    views the migrations make later, and may not write."""
    url = postgres.new_database()
    database = url.rsplit("/", 1)[1]
    secret = tmp_path / "grafana_database_password"
    secret.write_text("reader-secret\n")
    script = Path(__file__).parents[2] / "deploy" / "postgres" / "grafana-reader.sh"
    for _ in range(2):  # a second run (by hand, on an older stack) changes nothing
        done = subprocess.run(  # noqa: S603 - our own script
            ["bash", str(script)], capture_output=True, text=True, check=False,
            env={**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(postgres.port),
                 "POSTGRES_USER": "postgres", "POSTGRES_DB": database,
                 "GRAFANA_DATABASE_PASSWORD_FILE": str(secret)})
        assert done.returncode == 0, done.stderr
    migrated(url)
    reader = connect(url.replace("//postgres@", "//grafana_reader@"))
    try:
        with reader.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM late_and_at_risk_cases")
                                      ).scalar() == 0
            assert connection.execute(text("SELECT count(*) FROM agency_daily")).scalar() == 0
        with pytest.raises(DBAPIError, match="read-only|permission denied"), \
                reader.begin() as connection:
            connection.execute(text("DELETE FROM case_states"))
    finally:
        reader.dispose()
