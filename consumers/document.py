"""The provincial report as a document a province can send: HTML laid out as an
administrative document (Decree 30/2020/NĐ-CP: issuing body, number, place and date,
title, "Kính gửi", body, recipients, signer), printed to an A4 PDF by headless Chromium.

In Vietnamese, in Vietnamese formats (1.566; 96,1 %; 02/03/2026; tháng 3/2026), or in
English from the same template (`Words`). The body is written from the report's figures:
a summary with the change against the previous period and the same period last year
where the store has them, charts (inline SVG, so the HTML stands alone), the agencies
split by level with a total row, the ranking with its tie rule, every case by field and
by procedure, the late cases by severity.
"""

from __future__ import annotations

import datetime as dt
import html
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onestop.consumers import glossary
from onestop.consumers.english import ENGLISH
from onestop.consumers.glossary import Term
from onestop.consumers.report import (
    TIE_RULE,
    Comparison,
    breakdown,
    centre_waits,
    scope_of,
    summed,
)
from onestop.consumers.vietnamese import (
    date,
    document_date,
    number,
    percent,
    period_name,
    period_name_en,
)
from onestop.models.calendar import shown_date
from onestop.models.reference import Reference

LETTERHEAD_FILE = "report.toml"


@dataclass(frozen=True)
class Letterhead:
    """Who issues the report and to whom (the reference folder's report.toml)."""

    parent: str = "Ủy ban nhân dân tỉnh"
    issuer: str = "Sở Nội vụ"
    abbreviation: str = "SNV"
    place: str = ""
    to: tuple[str, ...] = ("Ủy ban nhân dân tỉnh",)
    copies: tuple[str, ...] = ("Như trên", "Lưu: VT")
    signer_title: str = "Giám đốc"
    signer_name: str = ""


def load_letterhead(reference_dir: Path) -> Letterhead:
    """The province's letterhead, or neutral defaults where it has none."""
    path = reference_dir / LETTERHEAD_FILE
    if not path.is_file():
        return Letterhead()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    issuer, recipients, signer = (data.get(name, {}) for name in ("issuer", "recipients",
                                                                    "signer"))
    default = Letterhead()
    return Letterhead(
        parent=issuer.get("parent", default.parent), issuer=issuer.get("name", default.issuer),
        abbreviation=issuer.get("abbreviation", default.abbreviation),
        place=issuer.get("place", default.place),
        to=tuple(recipients.get("to", default.to)),
        copies=tuple(recipients.get("copies", default.copies)),
        signer_title=signer.get("title", default.signer_title),
        signer_name=signer.get("name", default.signer_name),
    )


# ---- the language ------------------------------------------------------------------------

@dataclass(frozen=True)
class Words:
    """The document's words and forms in one language. The template is written in
    Vietnamese; English takes each text from a labels table (`ENGLISH`), a text it lacks
    being an error rather than Vietnamese left in an English document; the names of the
    figures are the glossary's (`Term`), in either language. Names (agencies, procedures,
    fields, the letterhead) stay as they are."""

    lang: str = "vi"

    def __call__(self, text: str | Term, **values: Any) -> str:
        if isinstance(text, Term):
            shown = text.vi if self.lang == "vi" else text.en
        else:
            shown = text if self.lang == "vi" else ENGLISH[text]
        return shown.format(**values) if values else shown

    def number(self, value: float, decimals: int = 0) -> str:
        return number(value, decimals) if self.lang == "vi" else f"{value:,.{decimals}f}"

    def percent(self, ratio: float | None, decimals: int = 1) -> str:
        if self.lang == "vi" or ratio is None:
            return percent(ratio, decimals)
        return f"{100 * ratio:,.{decimals}f}%"

    def date(self, day: dt.date) -> str:
        """02/03/2026; in English "2 Mar 2026", which no reader takes for 3 February."""
        return date(day) if self.lang == "vi" else f"{day.day} {day:%b %Y}"

    def document_date(self, day: dt.date) -> str:
        """The date of the place-and-date line."""
        return document_date(day) if self.lang == "vi" else f"{day.day} {day:%B %Y}"

    def period(self, first: dt.date, last: dt.date) -> str:
        return period_name(first, last) if self.lang == "vi" else period_name_en(first, last)


VIETNAMESE = Words()
LANGUAGES = {"vi": VIETNAMESE, "en": Words("en")}


# ---- the period -------------------------------------------------------------------------

def _period(report: dict[str, Any]) -> tuple[dt.date, dt.date]:
    period = report["period"]
    return dt.date.fromisoformat(period["from"]), dt.date.fromisoformat(period["to"])


def _judged_at(report: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(report["period"]["judged_as_of"])


def provisional(report: dict[str, Any], say: Words = VIETNAMESE) -> str | None:
    """"Số liệu tạm tính đến …" when the figures stop before the period's end."""
    _first, last = _period(report)
    judged = _judged_at(report)
    period_end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), judged.tzinfo)
    if judged >= period_end:
        return None
    return say("Số liệu tạm tính đến {time} ngày {day}", time=f"{judged:%H:%M}",
               day=say.date(judged.date()))


def period_words(report: dict[str, Any], say: Words = VIETNAMESE) -> str:
    return say.period(*_period(report))


# ---- the summary ------------------------------------------------------------------------

def _ratio(figures: dict[str, Any], name: str) -> float | None:
    value = figures[name]
    return value["ratio"] if isinstance(value, dict) else None


def _change(now: float | None, before: float | None, rate: bool, say: Words) -> str:
    """"tăng 12,0 %", "giảm 1,5 điểm %" or "" (nothing to compare)."""
    if now is None or before is None:
        return ""
    if rate:
        points = 100 * (now - before)
        if abs(points) < 0.05:
            return say("không đổi")
        return say("tăng {points} điểm %" if points > 0 else "giảm {points} điểm %",
                   points=say.number(abs(points), 1))
    if before == 0:
        return ""
    change = (now - before) / before
    if abs(change) < 0.0005:
        return say("không đổi")
    return say("tăng {share}" if change > 0 else "giảm {share}", share=say.percent(abs(change)))


def _compared(name: str, now: float | None, comparison: Comparison, rate: bool, say: Words,
              whole_period: bool = True) -> str:
    """The change against earlier periods; counts only for a whole period (a month cut on
    the 12th is not compared with a whole month)."""
    if not (rate or whole_period):
        return ""
    parts = []
    for label, other in (("so với kỳ trước", comparison.previous),
                         ("so với cùng kỳ năm trước", comparison.last_year)):
        if other is not None:
            before = _ratio(other.scope, name) if rate else other.scope[name]
            change = _change(now, before, rate, say)
            if change:
                parts.append(f"{change} {say(label)}")
    return f" ({'; '.join(parts)})" if parts else ""


def summary(report: dict[str, Any], reference: Reference, comparison: Comparison,
            say: Words = VIETNAMESE) -> list[str]:
    """The summary's paragraphs, every number from the report (and the comparisons)."""
    scope = scope_of(report)
    who = (say("toàn tỉnh") if report["agency"] is None
           else reference.agencies[report["agency"]].name)
    on_time = _ratio(scope, "completed_on_time_rate")
    target = reference.targets.get("completed_on_time_rate")
    whole = provisional(report) is None
    count = {name: say.number(value) for name, value in scope.items()
             if isinstance(value, int)}
    judged = ""
    if on_time is not None and target is not None:
        judged = say(", đạt mục tiêu {target}" if on_time >= target
                     else ", chưa đạt mục tiêu {target}", target=say.percent(target))
    paragraphs = [
        say("Trong {period}, {who} tiếp nhận {received} hồ sơ{change}, trong đó {received_online}"
            " hồ sơ trực tuyến, {received_counter} hồ sơ trực tiếp và {received_postal} hồ sơ "
            "qua bưu chính.", period=period_words(report, say), who=who,
            change=_compared("received", scope["received"], comparison, False, say, whole),
            **count),
        say("Đã giải quyết {ended} hồ sơ: {early} trước hạn, {on_time} đúng hạn, {late} quá "
            "hạn. {rate_name} {rate}{change}{judged}.", rate_name=say(glossary.ON_TIME_RATE),
            rate=say.percent(on_time),
            change=_compared("completed_on_time_rate", on_time, comparison, True, say),
            judged=judged, **count),
        say("Cuối kỳ còn {overdue_open} hồ sơ đang quá hạn." if whole else
            "Đến thời điểm báo cáo còn {overdue_open} hồ sơ đang quá hạn.", **count) + " "
        + say("{apologies_required} hồ sơ phải có văn bản xin lỗi: {apologies_in_time} "
              "{in_time_name}, {apologies_late} {late_name}, {apologies_missing} {missing_name}.",
              in_time_name=say(glossary.APOLOGIES_IN_TIME.within),
              late_name=say(glossary.APOLOGIES_LATE.within),
              missing_name=say(glossary.APOLOGIES_MISSING.within), **count),
        say("{transfers_name} giữa các cơ quan {transfers}; {online_name} {online}; "
            "{paid_name} {paid}.", transfers_name=say(glossary.E_TRANSFERS),
            online_name=say(glossary.ONLINE_SUBMISSION.within),
            paid_name=say(glossary.ONLINE_PAYMENT.within),
            transfers=say.percent(_ratio(scope, "e_transfer_share")),
            online=say.percent(_ratio(scope, "online_submission_share")),
            paid=say.percent(_ratio(scope, "online_payment_share"))),
    ]
    visits, within = centre_waits(report)
    if visits:
        paragraphs.append(say(
            "Tại Bộ phận Một cửa, {visits} lượt chờ, {within} được phục vụ trong vòng 15 phút.",
            visits=say.number(visits), within=say.percent(within)))
    return paragraphs


# ---- charts (inline SVG) ------------------------------------------------------------------

def bar_chart(title: str, bars: list[tuple[str, float | None]], say: Words,
              target: float | None = None, share: bool = True) -> str:
    """Horizontal bars, one per label; shares on 0–100 %, counts on 0–their most; the
    target as a red line."""
    if not bars:
        return ""
    top = 1.0 if share else max((value or 0 for _label, value in bars), default=1) or 1
    label_width, plot, row = 300, 360, 18
    height = row * len(bars) + 44
    escape = html.escape
    shown_value = say.percent if share else say.number
    parts = [f'<figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" width="700" '
             f'height="{height}" role="img" aria-label="{escape(title)}">']
    for index, (label, value) in enumerate(bars):
        y = 10 + index * row
        shown = label if len(label) <= 46 else label[:45] + "…"
        parts.append(f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end" '
                     f'font-size="10">{escape(shown)}</text>')
        if value is not None:
            width = plot * value / top
            below = target is not None and value < target
            parts.append(f'<rect x="{label_width}" y="{y + 2}" width="{width:.1f}" height="12" '
                         f'fill="{"#c0392b" if below else "#2e6da4"}"/>')
            parts.append(f'<text x="{label_width + width + 4:.1f}" y="{y + 12}" '
                         f'font-size="10">{shown_value(value)}</text>')
    if target is not None:
        x = label_width + plot * target / top
        bottom = 10 + row * len(bars)
        parts.append(f'<line x1="{x:.1f}" y1="6" x2="{x:.1f}" y2="{bottom}" stroke="#c0392b" '
                     'stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" font-size="10" fill="#c0392b" '
                     f'text-anchor="middle">{say("mục tiêu {target}", target=shown_value(target))}'
                     '</text>')
    parts.append(f"</svg><figcaption>{escape(title)}</figcaption></figure>")
    return "".join(parts)


def trend_chart(comparison: Comparison, report: dict[str, Any], say: Words) -> str:
    """The on-time rate month by month (oldest first), where the store has the months."""
    points = [(say.period(month.period.first, month.period.last),
               _ratio(month.scope, "completed_on_time_rate")) for month in comparison.trend]
    points.append((period_words(report, say),
                   _ratio(scope_of(report), "completed_on_time_rate")))
    points = [(label, value) for label, value in points if value is not None]
    if len(points) < 2:
        return ""
    return bar_chart(say("{name} qua các kỳ", name=say(glossary.ON_TIME_RATE)), points, say)


# ---- tables -----------------------------------------------------------------------------

def _table(headings: list[str | Term], rows: list[list[str]], say: Words,
           numeric: set[int] | None = None, total: list[str] | None = None,
           widths: tuple[int, ...] = ()) -> str:
    """An HTML table with its headings in the document's language, right-aligning the
    `numeric` columns (all but the first unless said); `widths` (percentages) fix the
    columns so that the page's width holds them, long names wrapping inside their
    column."""
    numeric = set(range(1, len(headings))) if numeric is None else numeric
    escape = html.escape
    columns = ("<colgroup>" + "".join(f'<col style="width:{width}%">' for width in widths)
               + "</colgroup>") if widths else ""
    fixed = ' class="fixed"' if widths else ""
    head = "".join(f"<th>{escape(say(text))}</th>" for text in headings)
    body = []
    for cells in rows + ([total] if total else []):
        css = ' class="total"' if total is not None and cells is total else ""
        body.append(f"<tr{css}>" + "".join(
            f'<td{" class=num" if index in numeric else ""}>{escape(text)}</td>'
            for index, text in enumerate(cells)) + "</tr>")
    if not (rows or total):
        return f"<p>{say('Không có.')}</p>"
    return (f"<table{fixed}>{columns}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
            "</tbody></table>")


AGENCY_COLUMNS: list[str | Term] = [
    "Cơ quan", glossary.RECEIVED, glossary.ENDED, glossary.EARLY_OR_ON_TIME, glossary.LATE,
    glossary.OVERDUE, glossary.ON_TIME_RATE, glossary.APOLOGIES_MISSING, glossary.E_TRANSFERS]


CASE_COLUMNS = AGENCY_COLUMNS[1:7]


def _case_cells(figures: dict[str, Any], say: Words) -> list[str]:
    """The cells of CASE_COLUMNS: what became of the cases."""
    return [say.number(figures["received"]), say.number(figures["ended"]),
            say.number(figures["early"] + figures["on_time"]), say.number(figures["late"]),
            say.number(figures["overdue_open"]),
            say.percent(_ratio(figures, "completed_on_time_rate"))]


def _agency_cells(name: str, figures: dict[str, Any], say: Words) -> list[str]:
    return [name, *_case_cells(figures, say), say.number(figures["apologies_missing"]),
            say.percent(_ratio(figures, "e_transfer_share"))]


def agency_tables(report: dict[str, Any], reference: Reference, say: Words) -> str:
    """One table per level, each with its total row; the province's total last."""
    parts = []
    levels = (("province", "Các sở, ban, ngành và cơ quan cấp tỉnh"),
              ("commune", "Ủy ban nhân dân cấp xã và các phòng trực thuộc"))
    for level, heading in levels:
        codes = [code for code in report["agencies"]
                 if (agency := reference.agencies.get(code)) is not None and agency.level == level]
        if not codes:
            continue
        rows = [_agency_cells(reference.agencies[code].name, report["agencies"][code], say)
                for code in codes]
        parts.append(f"<h3>{html.escape(say(heading))}</h3>")
        parts.append(_table(AGENCY_COLUMNS, rows, say, total=_agency_cells(
            say("Cộng"), summed(report["agencies"][code] for code in codes), say)))
    if report["agency"] is None:
        parts.append(f"<h3>{say('Toàn tỉnh')}</h3>" + _table(
            AGENCY_COLUMNS, [], say, total=_agency_cells(say("Toàn tỉnh"), report["province"],
                                                         say)))
    return "".join(parts)


def late_case_table(report: dict[str, Any], reference: Reference, say: Words) -> str:
    names = {code: agency.name for code, agency in reference.agencies.items()}
    rows = []
    for case in report["late_cases"]:
        procedure = reference.procedures.get(case["procedure"])
        due = shown_date(dt.datetime.fromisoformat(case["due_at"]))
        rows.append([case["case_id"], procedure.name if procedure else case["procedure"],
                     names.get(case["handling_agency"], case["handling_agency"]),
                     say.date(due), say.number(case["days_late"]),
                     say(glossary.CASE_STATES[case["status"]]),
                     ", ".join(names.get(code, code) for code in case["responsible"]),
                     say(glossary.APOLOGY_STATES[case["apology"]])])
    return _table(["Mã hồ sơ", "Thủ tục", "Cơ quan giải quyết", "Hẹn trả", "Số ngày quá hạn",
                   "Tình trạng", "Đơn vị chịu trách nhiệm", "Xin lỗi"], rows, say,
                  numeric={3, 4}, widths=(14, 20, 15, 10, 7, 10, 14, 10))


def field_and_procedure_tables(report: dict[str, Any], reference: Reference, say: Words) -> str:
    """Every case by field with the total, the late ones by field as a chart, and the
    procedures most often late with what became of all their cases."""
    by_field, by_procedure = breakdown(report, reference)
    if not by_field:
        return f"<p>{say('Không có hồ sơ.')}</p>"
    total = say("Toàn tỉnh") if report["agency"] is None else say("Cộng")
    parts = [f"<h3>{say('Theo lĩnh vực')}</h3>", _table(
        ["Lĩnh vực", *CASE_COLUMNS],
        [[name, *_case_cells(figures, say)] for name, figures in by_field], say,
        total=[total, *_case_cells(scope_of(report), say)])]
    late = [(name, float(figures["late"] + figures["overdue_open"]))
            for name, figures in by_field]
    parts.append(bar_chart(
        say("{late} và {overdue} theo lĩnh vực", late=say(glossary.LATE),
            overdue=say(glossary.OVERDUE.within)),
        sorted((item for item in late if item[1]), key=lambda item: -item[1]), say,
        share=False))
    rows = [[reference.procedures[code].name if code in reference.procedures else code,
             *_case_cells(figures, say)]
            for code, figures in by_procedure[:10] if figures["late"] + figures["overdue_open"]]
    parts.append(f"<h3>{say('Thủ tục có nhiều hồ sơ quá hạn nhất')}</h3>")
    parts.append(_table(["Thủ tục", *CASE_COLUMNS], rows, say,
                        widths=(34, 11, 11, 11, 11, 11, 11))
                 if rows else f"<p>{say('Không có hồ sơ quá hạn.')}</p>")
    return "".join(parts)


def ranking_tables(report: dict[str, Any], reference: Reference, say: Words) -> str:
    vi, en = TIE_RULE.split(" / ")
    parts = [f"<p class=note>{html.escape(vi if say.lang == 'vi' else en[0].upper() + en[1:])}."
             "</p>"]
    for level, heading in (("province", "Cấp tỉnh"), ("commune", "Cấp xã")):
        entries = [entry for entry in report["ranking"] if entry.get("level") == level]
        if not entries:
            continue
        rows = [["–" if entry["rank"] is None else str(entry["rank"]),
                 reference.agencies[entry["agency"]].name if entry["agency"] in
                 reference.agencies else entry["agency"], say.number(entry["ended"]),
                 say.percent(entry["completed_on_time_rate"]),
                 say.percent(entry["service_index_on_time_rate"])] for entry in entries]
        parts.append(f"<h3>{say(heading)}</h3>" + _table(
            ["Hạng", "Cơ quan", glossary.ENDED, glossary.ON_TIME_RATE,
             glossary.SERVICE_INDEX_ON_TIME_RATE],
            rows, say, numeric={0, 2, 3, 4}))
    return "".join(parts)


def waits_section(report: dict[str, Any], reference: Reference, say: Words) -> str:
    centres = sorted(report["centres"].items())
    if not centres:
        return f"<p>{say('Không có lượt chờ trong kỳ.')}</p>"
    names = {code: agency.name for code, agency in reference.agencies.items()}
    goal = reference.targets.get("wait_within_target_share")
    chart = bar_chart(say("{name} theo Bộ phận Một cửa", name=say(glossary.WAITS_WITHIN_15)),
                      [(names.get(code, code), figures["wait_within_target"]["ratio"])
                       for code, figures in centres], say, goal)

    def minutes(seconds: float | None) -> str:
        return "–" if seconds is None else say.number(seconds / 60, 1)

    rows = [[names.get(code, code), say.number(figures["visits_waited"]),
             say.percent(figures["wait_within_target"]["ratio"]),
             minutes(figures["wait_p50_seconds"]), minutes(figures["wait_p90_seconds"]),
             say.number(figures["no_shows"])] for code, figures in centres]
    return chart + _table(["Bộ phận Một cửa", glossary.VISITS, glossary.WAITS_WITHIN_15,
                           glossary.in_minutes(glossary.WAIT_MEDIAN),
                           glossary.in_minutes(glossary.WAIT_P90), glossary.NO_SHOWS], rows, say)


def targets_table(report: dict[str, Any], say: Words) -> str:
    scope = report["targets"]["province"] if report["agency"] is None else report["targets"][
        "agencies"][report["agency"]]
    rows = []
    for item in scope:
        points = item["metric"] == "service_index_score"
        shown = ((lambda value: "–" if value is None else say.number(value, 1)) if points
                 else say.percent)
        judged = {True: glossary.MET, False: glossary.NOT_MET, None: glossary.NOT_JUDGED}
        rows.append([say(glossary.TARGET_NAMES[item["metric"]]), shown(item["value"]),
                     shown(item["target"]), say(judged[item["met"]])])
    return _table(["Chỉ tiêu", "Kết quả", glossary.TARGET, "Đánh giá"], rows, say)


# ---- the document -------------------------------------------------------------------------

_CSS = """
@page { size: A4; margin: 20mm 15mm 20mm 30mm; }
body { font-family: "Times New Roman", "Liberation Serif", "DejaVu Serif", serif;
       font-size: 13pt; line-height: 1.35; color: #000; }
table.head { width: 100%; border: none; margin-bottom: 8pt; }
table.head td { border: none; text-align: center; vertical-align: top; padding: 0; }
.upper { text-transform: uppercase; } .bold { font-weight: bold; }
.motto { font-weight: bold; text-decoration: underline; }
.dateline { font-style: italic; }
h1 { font-size: 14pt; text-align: center; margin: 14pt 0 0; }
p.subject { text-align: center; font-weight: bold; margin-top: 2pt; }
p.to { text-align: center; }
h2 { font-size: 13pt; margin: 14pt 0 4pt; } h3 { font-size: 12pt; margin: 10pt 0 4pt; }
h2, h3 { page-break-after: avoid; }
p { text-align: justify; margin: 4pt 0; text-indent: 1cm; }
p.note, p.to, p.subject { text-indent: 0; }
p.note { font-size: 11pt; font-style: italic; }
.provisional { border: 1.5pt solid #c0392b; color: #c0392b; padding: 4pt 8pt;
               font-weight: bold; text-align: center; text-indent: 0; }
table { border-collapse: collapse; width: 100%; font-size: 10pt; margin: 4pt 0 8pt;
        page-break-inside: auto; }
th, td { border: 0.5pt solid #555; padding: 2pt 4pt; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; white-space: nowrap; }
table.fixed { table-layout: fixed; } table.fixed td { overflow-wrap: anywhere; }
tr { page-break-inside: avoid; } thead { display: table-header-group; }
tr.total td { font-weight: bold; }
figure.chart { margin: 6pt 0; page-break-inside: avoid; }
figcaption { font-size: 10pt; font-style: italic; text-align: center; }
table.sign { width: 100%; border: none; margin-top: 18pt; page-break-inside: avoid; }
table.sign td { border: none; vertical-align: top; font-size: 12pt; }
"""


def document_html(report: dict[str, Any], reference: Reference, letterhead: Letterhead,
                  comparison: Comparison | None = None, issued: dt.date | None = None,
                  lang: str = "vi") -> bytes:
    """The document's HTML in Vietnamese, or in English (`lang="en"`); `issued`, the day
    of its date line, is the day it is drawn up unless given."""
    say = LANGUAGES[lang]
    comparison = comparison or Comparison()
    escape = html.escape
    judged = _judged_at(report)
    issued = issued or dt.datetime.now(judged.tzinfo).date()
    agency = reference.agencies.get(report["agency"] or "")
    subject = say("Kết quả giải quyết thủ tục hành chính {period}", period=period_words(
        report, say)) + (say(" của {agency}", agency=agency.name) if agency is not None else "")
    warning = provisional(report, say)
    body = [
        "<!DOCTYPE html>", f'<html lang="{lang}"><head><meta charset="utf-8">',
        f"<title>{say('Báo cáo')} {escape(subject)}</title><style>{_CSS}</style></head><body>",
        '<table class="head"><tr><td>'
        f'<div class="upper">{escape(letterhead.parent)}</div>'
        f'<div class="upper bold">{escape(letterhead.issuer)}</div>'
        f"<div>{say('Số:')} &nbsp;&nbsp;&nbsp;&nbsp;/BC-{escape(letterhead.abbreviation)}</div>"
        f'</td><td><div class="bold">{say("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")}</div>'
        f'<div class="motto">{say("Độc lập - Tự do - Hạnh phúc")}</div>'
        f'<div class="dateline">{escape(letterhead.place or "……")}, '
        f"{say.document_date(issued)}</div></td></tr></table>",
        f"<h1>{say('BÁO CÁO')}</h1>", f'<p class="subject">{escape(subject)}</p>',
        f'<p class="to">{say("Kính gửi:")} {escape("; ".join(letterhead.to))}.</p>',
    ]
    if warning:
        body.append(f'<p class="provisional">{escape(warning)}: '
                    f'{say("kỳ báo cáo chưa kết thúc, số liệu sẽ thay đổi.")}</p>')
    body += [f"<h2>{ROMAN[index]}. {say(heading)}</h2>{content}" for index, (heading, content)
             in enumerate(_sections(report, reference, comparison, say))]
    body.append(
        f'<table class="sign"><tr><td><b><i>{say("Nơi nhận:")}</i></b><br>'
        + "<br>".join(f"- {escape(line)};" for line in letterhead.copies).rstrip(";")
        + '.</td><td style="text-align:center"><b class="upper">'
        f"{escape(letterhead.signer_title)}</b><br>"
        f"<i>{say('(Ký, ghi rõ họ tên và đóng dấu)')}</i>"
        f"<br><br><br><br><b>{escape(letterhead.signer_name)}</b></td></tr></table>")
    body.append("</body></html>")
    return "\n".join(body).encode()


ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII")


def _sections(report: dict[str, Any], reference: Reference, comparison: Comparison,
              say: Words) -> list[tuple[str, str]]:
    """The body's sections, headings and HTML, in order (numbered by the caller: an agency
    report has no ranking)."""
    scope_agencies = [(reference.agencies[code].name if code in reference.agencies else code,
                       figures) for code, figures in report["agencies"].items()
                      if figures["completed_on_time_rate"]["denominator"]]
    sections = [
        ("TÌNH HÌNH CHUNG", "".join(f"<p>{html.escape(text)}</p>"
                                     for text in summary(report, reference, comparison, say))),
        ("KẾT QUẢ SO VỚI MỤC TIÊU", targets_table(report, say) + bar_chart(
            say("{name} theo cơ quan", name=say(glossary.ON_TIME_RATE)),
            [(name, _ratio(figures, "completed_on_time_rate"))
             for name, figures in scope_agencies], say,
            reference.targets.get("completed_on_time_rate"))
         + trend_chart(comparison, report, say)),
        ("KẾT QUẢ THEO CƠ QUAN", agency_tables(report, reference, say)),
    ]
    if report["agency"] is None:
        sections.append(("XẾP HẠNG", ranking_tables(report, reference, say)))
    sections += [
        ("KẾT QUẢ THEO LĨNH VỰC VÀ THỦ TỤC", field_and_procedure_tables(report, reference, say)),
        ("HỒ SƠ QUÁ HẠN",
         f"<h3>{say('Danh sách hồ sơ quá hạn (quá hạn nhiều nhất trước)')}</h3>"
         + late_case_table(report, reference, say)),
        ("THỜI GIAN CHỜ TẠI BỘ PHẬN MỘT CỬA", waits_section(report, reference, say)),
    ]
    return sections


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("a PDF needs Chromium: apt-get install chromium (or give --format html "
                       "and print it from a browser)")


def document_pdf(page: bytes, timeout: float = 120) -> bytes:
    """The HTML printed to PDF by headless Chromium (A4, the page's own margins)."""
    with tempfile.TemporaryDirectory(prefix="onestop-report-") as folder:
        source, target = Path(folder) / "report.html", Path(folder) / "report.pdf"
        source.write_bytes(page)
        done = subprocess.run(  # noqa: S603 - our own command line
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--no-pdf-header-footer", f"--user-data-dir={folder}/profile",
             f"--print-to-pdf={target}", source.as_uri()],
            capture_output=True, timeout=timeout, check=False)
        if not target.is_file():
            raise RuntimeError("Chromium made no PDF: "
                               + done.stderr.decode(errors="replace")[-500:])
        return target.read_bytes()
