"""The report as an Excel workbook: the working file of the reporting officer at the
Department of Home Affairs, who filters it, checks it against the targets and prints it.

Each of the report's sections (`consumers.render.sections`) is a sheet with a short
Vietnamese name, and one more follows the main rates across the earlier periods. Counts,
shares and minutes stay numbers and days stay dates, in the formats a Vietnamese reader
expects. The agency and wait sheets chart their rates against the province's target and
colour them below it red, at or above it green; the periods sheet charts the rates as
lines, the field sheet the late cases; the agency, field and procedure tables end with the
province's total. Every table has an autofilter; every sheet prints on A4
landscape, one page wide, with the report's title above and page numbers below.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Iterable
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart
from openpyxl.chart import Reference as Cells
from openpyxl.chart.series import SeriesLabel
from openpyxl.formatting.rule import CellIsRule, FormulaRule
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from onestop.consumers import glossary
from onestop.consumers.render import (
    APOLOGY,
    CASE_COUNTS,
    CHANNELS,
    COUNT,
    MET,
    MINUTES,
    POINTS,
    SHARE,
    STATUS,
    TOTAL,
    Column,
    Section,
    sections,
)
from onestop.consumers.report import Comparison, pooled, scope_of
from onestop.consumers.vietnamese import period_name, period_name_en
from onestop.models.calendar import shown_date
from onestop.models.reference import Reference

# Sheet names: Excel allows 31 characters, so the section's short Vietnamese name; its
# bilingual heading is written above the table.
SHEET_NAMES = {
    "summary": "Tổng hợp",
    "targets": glossary.TARGET.vi,
    "agencies": "Theo cơ quan",
    "periods": "Qua các kỳ",
    "ranking": "Xếp hạng",
    "fields": "Theo lĩnh vực",
    "procedures": "Theo thủ tục",
    "waits": "Thời gian chờ",
    "service_index": glossary.SERVICE_INDEX.vi,
    "late_cases": "Hồ sơ quá hạn",
    "late_paper_transfers": glossary.LATE_PAPER_HANDOFFS.vi,
}
# A column of instants: each cell is a day (a due at 24:00) or a day and time of day.
MOMENT = "moment"
FORMATS = {COUNT: "#,##0", SHARE: "0.0%", MINUTES: "0.0", POINTS: "0.0"}
DAY_FORMAT, TIME_FORMAT = "dd/mm/yyyy", "dd/mm/yyyy hh:mm"
# The agency figure each share column of the agency table is, for its total.
SHARES_OF = {
    glossary.ON_TIME_RATE.vi: "completed_on_time_rate",
    glossary.SERVICE_INDEX_ON_TIME_RATE.vi: "service_index_on_time_rate",
    glossary.E_TRANSFERS.vi: "e_transfer_share",
    glossary.ONLINE_PAYMENT.vi: "online_payment_share",
    **{vi: key for key, vi, _en in CHANNELS},
}
# Rows 1-5 carry the title, the provisional note, the section's heading and its note.
HEADER_ROW = 6

_THIN = Side(style="thin", color="BBBBBB")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADING_FILL = PatternFill("solid", fgColor="E8EEF6")
_RED = {"font": Font(color="9C0006"), "fill": PatternFill("solid", bgColor="FFC7CE")}
_GREEN = {"font": Font(color="006100"), "fill": PatternFill("solid", bgColor="C6EFCE")}


def excel(report: dict[str, Any], reference: Reference,
          comparison: Comparison | None = None) -> bytes:
    """The workbook; `comparison`, the earlier periods the store holds, adds them to the
    sheet across periods (otherwise it has this period alone)."""
    title = _title(report, reference)
    on_time_goal = reference.targets.get("completed_on_time_rate")
    book = Workbook()
    book.remove(book.active)
    report_sections = sections(report, reference)
    report_sections.insert(2, _across_periods(report, comparison or Comparison()))
    for section in report_sections:
        if section.key == "late_cases":
            section = _late_cases(section, report, reference)
        elif section.key == "late_paper_transfers":
            section = _late_paper_transfers(section, report, reference)
        elif section.key == "agencies":
            section = _with_target(section, on_time_goal)
        sheet = book.create_sheet(SHEET_NAMES[section.key])
        _heading(sheet, title, section)
        last_row = _table(sheet, section)
        if section.total is not None:
            _total(sheet, last_row + 1, section.total, section.columns)
        if section.key == "agencies":
            last_row = _total_row(sheet, section, report["agencies"], on_time_goal, last_row)
            _against_target(sheet, section, glossary.ON_TIME_RATE.vi, last_row)
            _rate_chart(sheet, section, "Cơ quan", glossary.ON_TIME_RATE.vi, last_row - 1)
        elif section.key == "waits":
            _against_target(sheet, section, glossary.WAITS_WITHIN_15.vi, last_row)
            _rate_chart(sheet, section, "Bộ phận Một cửa", glossary.WAITS_WITHIN_15.vi,
                        last_row)
        elif section.key == "periods" and len(section.rows) > 1:
            _trend_chart(sheet, section, last_row)
        elif section.key == "fields" and section.rows:
            _late_chart(sheet, section, last_row)
        _colour_results(sheet, section)
        _page_setup(sheet, title[0])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# The rates the sheet across periods follows: the report's figure, its column.
PERIOD_RATES = [
    (metric, Column.of(glossary.TARGET_NAMES[metric], SHARE))
    for metric in ("completed_on_time_rate", "service_index_on_time_rate", "e_transfer_share",
                   "online_submission_share", "online_payment_share")
]
WAITS_COLUMN = Column.of(glossary.WAITS_WITHIN_15, SHARE)


def _across_periods(report: dict[str, Any], comparison: Comparison) -> Section:
    """The earlier periods the store holds (for a month, the twelve before it; else the
    period before and the same one a year earlier), oldest first, then this one."""
    first, last = (dt.date.fromisoformat(report["period"][end]) for end in ("from", "to"))
    earlier = {totals.period.first: totals for totals in
               (comparison.previous, comparison.last_year, *comparison.trend)
               if totals is not None}
    periods = [(period_name(totals.period.first, totals.period.last), totals.scope,
                totals.centres) for _first, totals in sorted(earlier.items())]
    periods.append((period_name(first, last), scope_of(report), report["centres"]))
    return Section(
        "periods", "Qua các kỳ", "Across periods",
        [Column("Kỳ", "Period"), Column.of(glossary.RECEIVED, COUNT),
         *(column for _key, column in PERIOD_RATES), WAITS_COLUMN],
        [[name, scope["received"], *(scope[key]["ratio"] for key, _column in PERIOD_RATES),
          pooled(figures["wait_within_target"] for figures in centres.values())]
         for name, scope, centres in periods],
        "Các kỳ trước có trong cơ sở dữ liệu, cũ nhất trước / the earlier periods the "
        "database holds, oldest first",
    )


def _title(report: dict[str, Any], reference: Reference) -> list[str]:
    """The title, its English line with the period's days, and, while the period is not
    over, the instant its figures are provisional to."""
    period = report["period"]
    first, last = dt.date.fromisoformat(period["from"]), dt.date.fromisoformat(period["to"])
    scope = ""
    if report["agency"] is not None:
        scope = f" – {reference.agencies[report['agency']].name}"
    lines = [
        f"Báo cáo kết quả giải quyết thủ tục hành chính {period_name(first, last)}{scope}",
        f"Administrative procedures report, {period_name_en(first, last)}{scope}; "
        f"từ / from {first:%d/%m/%Y} đến / to {last:%d/%m/%Y}",
    ]
    judged = dt.datetime.fromisoformat(period["judged_as_of"])
    period_end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), judged.tzinfo)
    if judged < period_end:
        lines.append(f"Số liệu tạm tính đến {judged:%d/%m/%Y %H:%M} / "
                     f"provisional figures as of {judged:%d/%m/%Y %H:%M}")
    return lines


def _moment(text: str) -> dt.date:
    """An ISO instant of the report as a cell value: a due at 24:00 is the day it ends,
    shown as that day (rulebook §11.13); any other instant is its local day and time,
    without the zone, which Excel cannot hold."""
    moment = dt.datetime.fromisoformat(text)
    day = shown_date(moment)
    if day != moment.date():
        return day
    return moment.replace(tzinfo=None)


def _name(reference: Reference, code: str) -> str:
    agency = reference.agencies.get(code)
    return code if agency is None else agency.name


def _procedure(reference: Reference, code: str) -> str:
    procedure = reference.procedures.get(code)
    return code if procedure is None else procedure.name


def _late_cases(section: Section, report: dict[str, Any], reference: Reference) -> Section:
    """Late cases with the procedure's and agencies' names, their due as a date and how
    many days late, in the report's order: most days late first."""
    columns = [
        Column("Mã hồ sơ", "Case"), Column("Mã thủ tục", "Procedure code"),
        Column("Thủ tục", "Procedure"), Column("Mã cơ quan", "Agency code"),
        Column("Cơ quan giải quyết", "Handling agency"), Column("Tình trạng", "Status"),
        Column("Hạn giải quyết", "Due", MOMENT),
        Column("Số ngày quá hạn", "Days late", COUNT),
        Column("Đơn vị chịu trách nhiệm", "Responsible"), Column("Xin lỗi", "Apology"),
    ]
    rows = [
        [case["case_id"], case["procedure"], _procedure(reference, case["procedure"]),
         case["handling_agency"], _name(reference, case["handling_agency"]),
         STATUS[case["status"]], _moment(case["due_at"]), case["days_late"],
         "; ".join(_name(reference, code) for code in case["responsible"]),
         APOLOGY[case["apology"]]]
        for case in report["late_cases"]
    ]
    return dataclasses.replace(section, columns=columns, rows=rows)


def _late_paper_transfers(
    section: Section, report: dict[str, Any], reference: Reference,
) -> Section:
    columns = [
        Column("Mã hồ sơ", "Case"), Column("Mã Bộ phận Một cửa", "Centre code"),
        Column("Bộ phận Một cửa", "Centre"), Column("Mã cơ quan", "Agency code"),
        Column("Cơ quan giải quyết", "Handling agency"),
        Column("Tiếp nhận lúc", "Accepted", MOMENT),
        Column("Hạn chuyển", "Due to leave", MOMENT),
        Column("Chuyển lúc", "Left", MOMENT),
    ]
    rows = [
        [item["case_id"], item["centre"], _name(reference, item["centre"]),
         item["handling_agency"], _name(reference, item["handling_agency"]),
         _moment(item["accepted_at"]), _moment(item["due_at"]), _moment(item["handed_off_at"])]
        for item in report["late_paper_transfers"]
    ]
    return dataclasses.replace(section, columns=columns, rows=rows)


def _with_target(section: Section, goal: float | None) -> Section:
    """The agency table with the target beside the on-time rate: the chart's second
    series, and the figure the rates are coloured against."""
    after = _index(section, glossary.ON_TIME_RATE.vi) + 1
    columns = [*section.columns[:after], Column.of(glossary.TARGET, SHARE),
               *section.columns[after:]]
    rows = [[*row[:after], goal, *row[after:]] for row in section.rows]
    return dataclasses.replace(section, columns=columns, rows=rows)


def _index(section: Section, heading: str) -> int:
    return next(number for number, column in enumerate(section.columns)
                if column.vi == heading)


def _heading(sheet: Worksheet, title: list[str], section: Section) -> None:
    for row, line in enumerate(title, 1):
        sheet.cell(row, 1, line)
    sheet["A1"].font = Font(bold=True, size=13)
    sheet["A3"].font = Font(bold=True, color="9C0006")
    sheet["A4"] = section.heading
    sheet["A4"].font = Font(bold=True, size=12)
    if section.note:
        sheet["A5"] = section.note
        sheet["A5"].font = Font(italic=True, color="555555")


def _table(sheet: Worksheet, section: Section) -> int:
    """Writes the table under its header row, with an autofilter; returns its last row."""
    for number, column in enumerate(section.columns, 1):
        cell = sheet.cell(HEADER_ROW, number, f"{column.vi}\n{column.en}")
        cell.font = Font(bold=True)
        cell.fill = _HEADING_FILL
        cell.border = _BORDER
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.column_dimensions[get_column_letter(number)].width = _width(section, number - 1)
    for row_number, row in enumerate(section.rows, HEADER_ROW + 1):
        _row(sheet, row_number, row, section.columns)
    last_row = HEADER_ROW + len(section.rows)
    sheet.row_dimensions[HEADER_ROW].height = 32
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{get_column_letter(len(section.columns))}{last_row}"
    sheet.freeze_panes = sheet.cell(HEADER_ROW + 1, 1)
    return last_row


def _row(sheet: Worksheet, row_number: int, row: list[Any], columns: list[Column]) -> None:
    for number, (value, column) in enumerate(zip(row, columns, strict=True), 1):
        cell = sheet.cell(row_number, number, value)
        if isinstance(value, str):
            cell.data_type = "s"  # text, never a formula: case codes come from producers
        cell.border = _BORDER
        if column.kind == MOMENT and value is not None:
            cell.number_format = TIME_FORMAT if isinstance(value, dt.datetime) else DAY_FORMAT
        elif column.kind in FORMATS:
            cell.number_format = FORMATS[column.kind]


def _width(section: Section, index: int) -> float:
    column = section.columns[index]
    values = [row[index] for row in section.rows if row[index] is not None]
    # Numbers and dates take at most a dozen characters in their formats.
    longest = max([len(column.vi), len(column.en),
                   *(len(value) if isinstance(value, str) else 12 for value in values)])
    return min(60, max(8, longest + 2))


def _total_row(
    sheet: Worksheet, section: Section, agencies: dict[str, dict[str, Any]],
    goal: float | None, last_row: int,
) -> int:
    """The total under the agency table: counts summed, shares from the summed numerators
    and denominators (the province's figures when every agency is listed), and the
    on-time rate judged against the target as each agency's is."""
    rate_column = _index(section, glossary.ON_TIME_RATE.vi)
    total: list[Any] = []
    for number, column in enumerate(section.columns):
        if column.vi == "Cơ quan":
            total.append(TOTAL)
        elif column.vi == glossary.TARGET.vi:
            total.append(goal)
        elif column.vi == "Đạt mục tiêu":
            rate = total[rate_column]
            total.append(MET[None if rate is None or goal is None else rate >= goal])
        elif column.kind == COUNT:
            total.append(sum(row[number] for row in section.rows))
        elif column.kind == SHARE:
            total.append(_summed_share(agencies.values(), SHARES_OF[column.vi]))
        else:
            total.append(None)
    _total(sheet, last_row + 1, total, section.columns)
    return last_row + 1


def _total(sheet: Worksheet, row_number: int, total: list[Any], columns: list[Column]) -> None:
    _row(sheet, row_number, total, columns)
    for cell in sheet[row_number]:
        cell.font = Font(bold=True)


def _summed_share(agencies: Iterable[dict[str, Any]], key: str) -> float | None:
    """Σ numerators / Σ denominators of the agencies' share `key`: a ratio figure, or
    a count of the cases received (those received online, say)."""
    return pooled(
        figures[key] if isinstance(figures[key], dict)
        else {"numerator": figures[key], "denominator": figures["received"]}
        for figures in agencies)


def _against_target(sheet: Worksheet, section: Section, heading: str, last_row: int) -> None:
    """The rates below the target red, at or above it green; the target is the one on
    each row (the province's), so a changed target recolours the sheet."""
    rate = get_column_letter(_index(section, heading) + 1)
    goal = get_column_letter(_index(section, glossary.TARGET.vi) + 1)
    first = f"{rate}{HEADER_ROW + 1}"
    target = f"{goal}{HEADER_ROW + 1}"
    cells = f"{first}:{rate}{last_row}"
    judged = f"AND(ISNUMBER({first}),ISNUMBER({target}),{first}"
    sheet.conditional_formatting.add(
        cells, FormulaRule(formula=[f"{judged}<{target})"], stopIfTrue=True, **_RED))
    sheet.conditional_formatting.add(
        cells, FormulaRule(formula=[f"{judged}>={target})"], stopIfTrue=True, **_GREEN))


def _colour_results(sheet: Worksheet, section: Section) -> None:
    """Results in red when not met and in green when met, in any column that judges a
    target ("Đạt mục tiêu", "Kết quả")."""
    for number in range(1, len(section.columns) + 1):
        if not any(row[number - 1] in (MET[True], MET[False]) for row in section.rows):
            continue
        letter = get_column_letter(number)
        cells = f"{letter}{HEADER_ROW + 1}:{letter}{sheet.max_row}"
        sheet.conditional_formatting.add(
            cells, CellIsRule(operator="equal", formula=[f'"{MET[False]}"'], **_RED))
        sheet.conditional_formatting.add(
            cells, CellIsRule(operator="equal", formula=[f'"{MET[True]}"'], **_GREEN))


def _rate_chart(
    sheet: Worksheet, section: Section, names: str, heading: str, last_row: int,
) -> None:
    """A bar per row of its rate, with the target as a second series, under the table.
    Bars lie flat so that the long names of agencies and centres read as they are."""
    chart = BarChart()
    chart.type = "bar"
    chart.title = section.columns[_index(section, heading)].heading
    for series in (heading, glossary.TARGET.vi):
        _series(chart, sheet, section, series, last_row)
    chart.set_categories(Cells(sheet, min_col=_index(section, names) + 1,
                               min_row=HEADER_ROW + 1, max_row=last_row))
    chart.series[1].graphicalProperties.solidFill = "BBBBBB"
    # The table's order, top to bottom, with the value axis still below the bars.
    chart.x_axis.scaling.orientation = "maxMin"
    chart.y_axis.crosses = "max"
    chart.y_axis.axPos = "b"
    chart.x_axis.delete = chart.y_axis.delete = False
    chart.y_axis.number_format = "0%"
    chart.y_axis.scaling.min, chart.y_axis.scaling.max = 0, 1
    chart.legend.position = "b"
    # Centimetres: about one for each row's pair of bars.
    chart.width = 24
    chart.height = max(8, last_row - HEADER_ROW)
    sheet.add_chart(chart, f"B{sheet.max_row + 3}")


def _series(chart: BarChart | LineChart, sheet: Worksheet, section: Section, heading: str,
            last_row: int) -> None:
    """The column `heading` from the first row to `last_row` as the chart's next series."""
    index = _index(section, heading)
    chart.add_data(Cells(sheet, min_col=index + 1, min_row=HEADER_ROW + 1, max_row=last_row))
    chart.series[-1].tx = SeriesLabel(v=section.columns[index].heading)


def _trend_chart(sheet: Worksheet, section: Section, last_row: int) -> None:
    """A line per rate over the periods, oldest on the left."""
    chart = LineChart()
    chart.title = "Các tỷ lệ chính qua các kỳ / The main rates across periods"
    for _key, column in PERIOD_RATES:
        _series(chart, sheet, section, column.vi, last_row)
    _series(chart, sheet, section, WAITS_COLUMN.vi, last_row)
    chart.set_categories(Cells(sheet, min_col=1, min_row=HEADER_ROW + 1, max_row=last_row))
    chart.x_axis.delete = chart.y_axis.delete = False
    chart.y_axis.number_format = "0%"
    chart.y_axis.scaling.min, chart.y_axis.scaling.max = 0, 1
    chart.legend.position = "b"
    chart.width, chart.height = 24, 12
    sheet.add_chart(chart, f"B{sheet.max_row + 3}")


def _late_chart(sheet: Worksheet, section: Section, last_row: int) -> None:
    """Each field's cases ended late and still open past their due, one bar each, the
    table's order (most received first) top to bottom."""
    chart = BarChart()
    chart.type, chart.grouping, chart.overlap = "bar", "stacked", 100
    late, overdue = glossary.LATE, glossary.OVERDUE.within
    chart.title = (f"{late.vi} và {overdue.vi} theo lĩnh vực / "
                   f"{late.en} and {overdue.en} by field")
    for _key, vi, _en in CASE_COUNTS[4:6]:
        _series(chart, sheet, section, vi, last_row)
    chart.set_categories(Cells(sheet, min_col=1, min_row=HEADER_ROW + 1, max_row=last_row))
    chart.series[1].graphicalProperties.solidFill = "C0392B"
    chart.x_axis.scaling.orientation = "maxMin"
    chart.y_axis.crosses = "max"
    chart.x_axis.delete = chart.y_axis.delete = False
    chart.legend.position = "b"
    chart.width, chart.height = 24, max(8, last_row - HEADER_ROW)
    sheet.add_chart(chart, f"B{sheet.max_row + 3}")


def _page_setup(sheet: Worksheet, title: str) -> None:
    sheet.oddHeader.center.text = title
    sheet.oddFooter.left.text = "&A"
    sheet.oddFooter.center.text = "Trang &P / &N"
    sheet.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_options.gridLines = False
