"""The report as a document (HTML and its PDF from headless Chromium): the administrative
layout, Vietnamese formats, a summary whose numbers are the report's, the comparison
with the previous period, an interim and an agency report that say what they are."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from openpyxl import load_workbook
from openpyxl.chart import BarChart, LineChart
from sqlalchemy import Engine

from onestop.common.replay import Replay
from onestop.consumers.backfill import backfill
from onestop.consumers.document import (
    document_html,
    document_pdf,
    load_letterhead,
    provisional,
    summary,
)
from onestop.consumers.excel import excel
from onestop.consumers.report import (
    breakdown,
    build_report,
    comparison_for,
    parse_period,
    report_json,
    scope_of,
)
from onestop.consumers.store import Store, connect, upgrade
from onestop.consumers.vietnamese import number, percent
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.simulate import SimulationSettings, simulate

REFERENCE = load_reference(SAMPLE_PROVINCE)
ZONE = dt.timezone(dt.timedelta(hours=7))
# The simulation runs 2 March – 14 April: March is whole, April is cut by the data.
AS_OF = dt.datetime(2026, 4, 20, 17, tzinfo=ZONE).timestamp()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    lines = [orjson.dumps(event) for event in simulate(
        REFERENCE, SimulationSettings(cases=1500, seed=3, days=44))]
    replay = Replay.for_rules(CaseRules(REFERENCE), True)
    list(replay.feed_lines(lines))
    store_engine = connect(f"sqlite:///{tmp_path_factory.mktemp('doc') / 'doc.db'}")
    upgrade(store_engine)
    backfill(Store(store_engine), replay, AS_OF, partitions=4)
    yield store_engine
    store_engine.dispose()


def report_of(engine: Engine, period: str, agency: str | None = None) -> dict[str, Any]:
    return build_report(engine, REFERENCE, parse_period(period), agency, as_of=AS_OF)


def page_of(engine: Engine, period: str, agency: str | None = None) -> str:
    report = report_of(engine, period, agency)
    comparison = comparison_for(engine, REFERENCE, parse_period(period), agency, AS_OF)
    return document_html(report, REFERENCE, load_letterhead(SAMPLE_PROVINCE),
                         comparison).decode()


def test_the_pdf_is_an_a4_document_with_the_title_period_and_total_in_vietnamese(
    engine: Engine,
) -> None:
    if shutil.which("chromium") is None or shutil.which("pdftotext") is None:
        pytest.fail("chromium and poppler-utils are missing: tests/install-needs installs them")
    report = report_of(engine, "2026-03")
    pdf = document_pdf(page_of(engine, "2026-03").encode())
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout
    pages = int(re.search(rb"Pages:\s+(\d+)", info)[1])  # type: ignore[index]
    assert 3 <= pages <= 12, pages
    assert b"(A4)" in info and b"Page rot:        0" in info, info
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text and "BÁO CÁO" in text
    assert "Kết quả giải quyết thủ tục hành chính tháng 3/2026" in text
    assert "Kính gửi: Ủy ban nhân dân tỉnh Sông Xanh." in text
    received = report["province"]["received"]
    assert received >= 1000
    # Thousands grouped with a dot (1.566, never 1,566, which reads as a decimal).
    [shown] = re.findall(r"toàn tỉnh tiếp nhận (\d{1,3}(?:\.\d{3})+) hồ sơ", text)
    assert int(shown.replace(".", "")) == received
    assert "Nơi nhận" in text and "GIÁM ĐỐC" in text and "Nguyễn Thị Lan" in text
    assert "tạm tính" not in text


def test_the_summary_s_numbers_are_the_report_s(engine: Engine) -> None:
    report = report_of(engine, "2026-03")
    province = report["province"]
    paragraphs = summary(report, REFERENCE, comparison_for(
        engine, REFERENCE, parse_period("2026-03"), None, AS_OF))
    text = " ".join(paragraphs)
    expected = [
        number(province[name]) for name in (
            "received", "received_online", "received_counter", "received_postal", "ended",
            "early", "on_time", "late")
    ] + [percent(province["completed_on_time_rate"]["ratio"]), percent(0.95),
         number(province["overdue_open"]), number(province["apologies_required"]),
         number(province["apologies_in_time"]), number(province["apologies_late"]),
         number(province["apologies_missing"]),
         percent(province["e_transfer_share"]["ratio"]),
         percent(province["online_submission_share"]["ratio"]),
         percent(province["online_payment_share"]["ratio"])]
    found = re.findall(r"\d[\d.]*(?:,\d+)?(?:\u00a0%)?", text.replace("tháng 3/2026", ""))
    assert found[:len(expected)] == expected, (found, expected)
    # No earlier month in the store: nothing compared, nothing invented.
    assert "so với" not in text


def test_a_later_month_is_compared_with_the_one_before(engine: Engine) -> None:
    """April (cut on the 14th by the data, so interim) against the whole of March: the
    rates are compared, the counts are not."""
    april, march = report_of(engine, "2026-04"), report_of(engine, "2026-03")
    comparison = comparison_for(engine, REFERENCE, parse_period("2026-04"), None, AS_OF)
    assert comparison.previous is not None and comparison.last_year is None
    assert [earlier.period.label for earlier in comparison.trend] == ["2026-03"]
    text = " ".join(summary(april, REFERENCE, comparison))
    now = april["province"]["completed_on_time_rate"]["ratio"]
    before = march["province"]["completed_on_time_rate"]["ratio"]
    points = number(abs(100 * (now - before)), 1)
    assert f"{'tăng' if now > before else 'giảm'} {points} điểm % so với kỳ trước" in text
    assert f"tiếp nhận {number(april['province']['received'])} hồ sơ, trong đó" in text


def test_an_interim_report_says_so(engine: Engine) -> None:
    april = report_of(engine, "2026-04")
    assert provisional(april) == "Số liệu tạm tính đến 17:00 ngày 20/04/2026"
    page = page_of(engine, "2026-04")
    assert "Số liệu tạm tính đến 17:00 ngày 20/04/2026" in page
    assert "Cuối kỳ" not in page and "Đến thời điểm báo cáo còn" in page
    assert provisional(report_of(engine, "2026-03")) is None


def test_an_agency_report_is_about_that_agency(engine: Engine) -> None:
    code = "SX-X-ANPHU"
    name = REFERENCE.agencies[code].name
    report = report_of(engine, "2026-03", code)
    page = page_of(engine, "2026-03", code)
    assert f"Kết quả giải quyết thủ tục hành chính tháng 3/2026 của {name}" in page
    figures = report["agencies"][code]
    assert f"Trong tháng 3/2026, {name} tiếp nhận {number(figures['received'])} hồ sơ" in page
    assert "toàn tỉnh" not in page.lower() and "XẾP HẠNG" not in page


def test_late_cases_are_listed_by_days_late_with_names(engine: Engine) -> None:
    report = report_of(engine, "2026-03")
    days = [case["days_late"] for case in report["late_cases"]]
    assert days and days == sorted(days, reverse=True) and min(days) >= 1
    page = page_of(engine, "2026-03")
    worst = report["late_cases"][0]
    procedure = REFERENCE.procedures[worst["procedure"]].name
    assert re.search(re.escape(worst["case_id"]) + r"</td><td>" + re.escape(procedure), page)
    # Names, not codes: only the case codes remain in the list.
    listed = page.split("Danh sách hồ sơ quá hạn")[1].split("THỜI GIAN CHỜ TẠI")[0]
    assert "SX-" not in re.sub(r"SX-2026-\d+", "", listed)


def test_the_date_line_is_written_as_decree_30_says(engine: Engine) -> None:
    """A zero before a day below 10 and before months 1 and 2 only: "ngày 02 tháng 4"."""
    report = report_of(engine, "2026-03")
    page = document_html(report, REFERENCE, load_letterhead(SAMPLE_PROVINCE),
                         issued=dt.date(2026, 4, 2)).decode()
    assert "Sông Xanh, ngày 02 tháng 4 năm 2026</div>" in page


@pytest.mark.parametrize("agency", [None, "SX-SYT"])
def test_the_breakdown_by_field_and_by_procedure_adds_up_to_the_report(
    engine: Engine, agency: str | None,
) -> None:
    """Every case of the report, not only the late ones, by field and by procedure: their
    totals are the province's (or the agency's) figures, from the same judged states."""
    report = report_of(engine, "2026-03", agency)
    scope = report["province"] if agency is None else report["agencies"][agency]
    by_field, by_procedure = breakdown(report, REFERENCE)
    assert by_field and len(by_procedure) >= len(by_field)
    for rows in (by_field, by_procedure):
        for name in ("received", "ended", "early", "on_time", "late", "overdue_open"):
            assert sum(figures[name] for _key, figures in rows) == scope[name], name
        for part in ("numerator", "denominator"):
            assert sum(figures["completed_on_time_rate"][part] for _key, figures in rows) == (
                scope["completed_on_time_rate"][part])
    assert {key for key, _figures in by_field} <= {
        procedure.field for procedure in REFERENCE.procedures.values()}
    # Most often late first.
    late = [figures["late"] + figures["overdue_open"] for _key, figures in by_procedure]
    assert late == sorted(late, reverse=True)
    # The JSON stays the replay's format.
    assert set(orjson.loads(report_json(report))) == {
        "as_of", "period", "agency", "agencies", "centres", "province", "targets", "ranking",
        "late_cases", "late_paper_transfers"}


def test_the_document_shows_every_field_with_the_province_s_total(engine: Engine) -> None:
    report = report_of(engine, "2026-03")
    page = page_of(engine, "2026-03")
    section = page.split("THEO LĨNH VỰC")[1]
    by_field, by_procedure = breakdown(report, REFERENCE)
    for field_name, figures in by_field:
        assert f"<td>{field_name}</td><td class=num>{number(figures['received'])}</td>" in section
    province = report["province"]
    assert (f"<td>Toàn tỉnh</td><td class=num>{number(province['received'])}</td>"
            f"<td class=num>{number(province['ended'])}</td>") in section
    worst = REFERENCE.procedures[by_procedure[0][0]].name
    assert f"<td>{worst}</td>" in section.split("Thủ tục có nhiều hồ sơ quá hạn nhất")[1]


@pytest.mark.parametrize(("period", "agency"), [
    ("2026-04", None), ("2026-04", "SX-SYT"), ("2026-Q2", None)])
def test_the_earlier_periods_figures_are_those_of_their_own_reports(
    engine: Engine, period: str, agency: str | None,
) -> None:
    """The comparison judges only the totals of each earlier period, and they are the
    figures of that period's own report: the summary and the trend compare like with like."""
    comparison = comparison_for(engine, REFERENCE, parse_period(period), agency, AS_OF)
    earlier = report_of(engine, "2026-Q1" if period == "2026-Q2" else "2026-03", agency)
    assert comparison.previous is not None and comparison.last_year is None
    assert comparison.previous.scope == scope_of(earlier)
    assert comparison.previous.centres == earlier["centres"]
    assert comparison.trend == ([comparison.previous] if period == "2026-04" else [])


def test_the_excel_file_charts_the_months_and_the_late_cases_by_field(engine: Engine) -> None:
    """Native charts: the main rates month by month (March, then April so far) and the
    late and overdue cases of each field."""
    april = report_of(engine, "2026-04")
    comparison = comparison_for(engine, REFERENCE, parse_period("2026-04"), None, AS_OF)
    book = load_workbook(io.BytesIO(excel(april, REFERENCE, comparison)))

    trend = book["Qua các kỳ"]
    heading = [str(cell.value).split("\n")[0] for cell in trend[6]]
    rate = heading.index("Tỷ lệ trước và đúng hạn") + 1
    assert [trend.cell(row, 1).value for row in (7, 8)] == ["tháng 3/2026", "tháng 4/2026"]
    march = comparison.trend[0].scope
    assert trend.cell(7, rate).value == march["completed_on_time_rate"]["ratio"]
    assert trend.cell(8, rate).value == april["province"]["completed_on_time_rate"]["ratio"]
    [chart] = trend._charts
    assert isinstance(chart, LineChart)
    titles = {series.tx.v for series in chart.series}
    assert {"Tỷ lệ trước và đúng hạn / Early or on-time rate",
            "Chờ không quá 15 phút / Waits within 15 minutes"} <= titles

    fields = book["Theo lĩnh vực"]
    [chart] = fields._charts
    assert isinstance(chart, BarChart) and chart.grouping == "stacked"
    assert [series.tx.v for series in chart.series] == [
        "Quá hạn / Late", "Đang quá hạn / Overdue"]
    by_field, _by_procedure = breakdown(april, REFERENCE)
    assert chart.series[0].val.numRef.f == f"'Theo lĩnh vực'!$F$7:$F${6 + len(by_field)}"


def test_the_english_rendering_is_the_same_document_in_english(engine: Engine) -> None:
    """The same template with English words and English number forms; the names of
    agencies, procedures and the letterhead stay as they are."""
    report = report_of(engine, "2026-03")
    comparison = comparison_for(engine, REFERENCE, parse_period("2026-03"), None, AS_OF)
    letterhead = load_letterhead(SAMPLE_PROVINCE)
    english = document_html(report, REFERENCE, letterhead, comparison,
                            issued=dt.date(2026, 4, 2), lang="en").decode()
    vietnamese = document_html(report, REFERENCE, letterhead, comparison,
                               issued=dt.date(2026, 4, 2)).decode()
    province = report["province"]
    assert '<html lang="en">' in english
    assert "Results of administrative procedures, March 2026" in english
    assert f"the province received {province['received']:,} cases" in english
    on_time = province["completed_on_time_rate"]["ratio"]
    assert f"{100 * on_time:.1f}%" in english
    assert "Sông Xanh, 2 April 2026" in english
    assert "SOCIALIST REPUBLIC OF VIET NAM" in english
    assert REFERENCE.agencies["SX-SYT"].name in english  # names stay
    for word in ("Tiếp nhận", "Kính gửi", "Tỷ lệ", "Nơi nhận", "mục tiêu", "Quá hạn",
                 "Toàn tỉnh", "Không có", "đang giải quyết"):
        assert word not in english, word
    assert english.count("<h2>") == vietnamese.count("<h2>")
    assert english.count("<tr") == vietnamese.count("<tr")
