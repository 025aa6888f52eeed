"""The report's data as Markdown, Excel or JSON (the document, HTML and PDF, is
consumers/document.py).

The report's sections are built once as tables (`sections`); each format only lays them
out. Headings are bilingual, Vietnamese first. Shares stay numbers in Excel (formatted as
percentages), waits are minutes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from onestop.consumers import glossary
from onestop.consumers.report import breakdown
from onestop.models.calendar import shown_instant
from onestop.models.reference import Reference

# Column kinds: how a value is shown.
TEXT, COUNT, SHARE, MINUTES, POINTS = "text", "count", "share", "minutes", "points"


@dataclass(frozen=True, slots=True)
class Column:
    vi: str
    en: str
    kind: str = TEXT

    @classmethod
    def of(cls, term: glossary.Term, kind: str = TEXT) -> Column:
        return cls(term.vi, term.en, kind)

    @property
    def heading(self) -> str:
        return f"{self.vi} / {self.en}"


@dataclass
class Section:
    key: str
    vi: str
    en: str
    columns: list[Column]
    rows: list[list[Any]]
    note: str = ""
    # A total row under the table, outside its filter and sorting.
    total: list[Any] | None = None

    @property
    def heading(self) -> str:
        return f"{self.vi} / {self.en}"


TOTAL = "Tổng cộng / Total"
MET = {True: glossary.MET.both, False: glossary.NOT_MET.both, None: glossary.NOT_JUDGED.both}
APOLOGY = {state: term.both for state, term in glossary.APOLOGY_STATES.items()}
STATUS = {state: term.both for state, term in glossary.CASE_STATES.items()}
GROUPS = {
    "publicity": ("Công khai, minh bạch", "Publicity"),
    "progress": ("Tiến độ giải quyết", "Processing progress"),
    "online_service": ("Dịch vụ công trực tuyến", "Online service"),
    "online_payment": (glossary.ONLINE_PAYMENT.vi, glossary.ONLINE_PAYMENT.en),
    "digitisation": ("Số hóa hồ sơ", "Digitisation"),
    "satisfaction": (glossary.SATISFACTION.vi, glossary.SATISFACTION.en),
}
GROUP_STATUS = {"computed": "Tính đủ / Computed", "partial": "Tính một phần / Partial",
                "not_available": "Không có số liệu / Not available"}
COUNTS = [(key, term.vi, term.en) for key, term in (
    ("received", glossary.RECEIVED),
    ("ended", glossary.ENDED),
    ("early", glossary.EARLY),
    ("on_time", glossary.ON_TIME),
    ("late", glossary.LATE),
    ("overdue_open", glossary.OVERDUE),
    ("apologies_required", glossary.APOLOGIES_REQUIRED),
    ("apologies_in_time", glossary.APOLOGIES_IN_TIME),
    ("apologies_late", glossary.APOLOGIES_LATE),
    ("apologies_missing", glossary.APOLOGIES_MISSING),
    ("rescheduled_twice", glossary.RESCHEDULED_TWICE),
    ("refusals_without_reason", glossary.REFUSALS_WITHOUT_REASON),
)]
# What became of the cases, for the tables by field and by procedure.
CASE_COUNTS = COUNTS[:6]
CHANNELS = [
    ("received_counter", "Trực tiếp", "Counter"),
    ("received_online", "Trực tuyến", "Online"),
    ("received_postal", "Bưu chính", "Postal"),
]
CHANNELS_RECEIVED = [
    (key, f"{glossary.RECEIVED.vi} {vi.lower()}", f"{glossary.RECEIVED.en} ({en.lower()})")
    for key, vi, en in CHANNELS
]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def sections(report: dict[str, Any], reference: Reference) -> list[Section]:
    agencies, centres, province = report["agencies"], report["centres"], report["province"]
    targets = report["targets"]
    names = {code: agency.name for code, agency in reference.agencies.items()}

    summary = Section(
        "summary", "Tổng hợp toàn tỉnh", "Province summary",
        [Column("Chỉ tiêu", "Indicator"), Column("Số lượng", "Number", COUNT)],
        [[f"{vi} / {en}", province[key]] for key, vi, en in COUNTS + CHANNELS_RECEIVED],
    )
    against = Section(
        "targets", "So với mục tiêu của tỉnh", "Against the province's targets",
        [Column("Chỉ tiêu", "Indicator"), Column("Giá trị", "Value", SHARE),
         Column("Tử số", "Numerator", COUNT), Column("Mẫu số", "Denominator", COUNT),
         Column.of(glossary.TARGET, SHARE), Column("Kết quả", "Result")],
        [[glossary.TARGET_NAMES[item["metric"]].both, item["value"], item["numerator"],
          item["denominator"], item["target"], MET[item["met"]]]
         for item in targets["province"] if item["metric"] != "service_index_score"],
    )

    by_agency = Section(
        "agencies", "Theo cơ quan", "By agency",
        [Column("Mã", "Code"), Column("Cơ quan", "Agency"),
         *(Column(vi, en, COUNT) for _key, vi, en in COUNTS),
         Column.of(glossary.ON_TIME_RATE, SHARE),
         Column("Đạt mục tiêu", "Target met"),
         Column.of(glossary.SERVICE_INDEX_ON_TIME_RATE, SHARE),
         Column.of(glossary.E_TRANSFERS, SHARE),
         *(Column(vi, en, SHARE) for _key, vi, en in CHANNELS),
         Column.of(glossary.ONLINE_PAYMENT, SHARE)],
        [],
    )
    for code, figures in agencies.items():
        judged = {item["metric"]: item for item in targets["agencies"][code]}
        by_agency.rows.append([
            code, names.get(code, code), *(figures[key] for key, _vi, _en in COUNTS),
            figures["completed_on_time_rate"]["ratio"],
            MET[judged["completed_on_time_rate"]["met"]],
            figures["service_index_on_time_rate"]["ratio"],
            figures["e_transfer_share"]["ratio"],
            *(_share(figures[key], figures["received"]) for key, _vi, _en in CHANNELS),
            figures["online_payment_share"]["ratio"],
        ])

    ranking = Section(
        "ranking", "Xếp hạng cơ quan", "Agencies ranked",
        [Column("Hạng", "Rank", COUNT), Column("Mã", "Code"), Column("Cơ quan", "Agency"),
         Column.of(glossary.ENDED, COUNT), Column.of(glossary.ON_TIME_RATE, SHARE),
         Column.of(glossary.SERVICE_INDEX_ON_TIME_RATE, SHARE)],
        [[entry["rank"], entry["agency"], names.get(entry["agency"], entry["agency"]),
          entry["ended"], entry["completed_on_time_rate"], entry["service_index_on_time_rate"]]
         for entry in report["ranking"]],
        "Cơ quan chưa giải quyết hồ sơ nào trong kỳ không xếp hạng / "
        "agencies that ended no case in the period are not ranked",
    )

    by_field, by_procedure = breakdown(report, reference)
    scope = province if report["agency"] is None else agencies[report["agency"]]
    case_columns = [*(Column(vi, en, COUNT) for _key, vi, en in CASE_COUNTS),
                    Column.of(glossary.ON_TIME_RATE, SHARE)]

    def cases(figures: dict[str, Any]) -> list[Any]:
        return [*(figures[key] for key, _vi, _en in CASE_COUNTS),
                figures["completed_on_time_rate"]["ratio"]]

    fields = Section(
        "fields", "Theo lĩnh vực", "By field", [Column("Lĩnh vực", "Field"), *case_columns],
        [[name, *cases(figures)] for name, figures in by_field],
        "Mọi hồ sơ trong kỳ, nhiều hồ sơ tiếp nhận nhất trước / every case of the period, "
        "most received first",
        [TOTAL, *cases(scope)],
    )
    procedures = Section(
        "procedures", "Theo thủ tục", "By procedure",
        [Column("Mã", "Code"), Column("Thủ tục", "Procedure"), Column("Lĩnh vực", "Field"),
         *case_columns],
        [[code, procedure.name if procedure else code, procedure.field if procedure else "",
          *cases(figures)]
         for code, figures in by_procedure
         for procedure in [reference.procedures.get(code)]],
        f"Mọi hồ sơ trong kỳ, thủ tục có nhiều hồ sơ {glossary.LATE.vi.lower()} và "
        f"{glossary.OVERDUE.vi.lower()} nhất trước / every case of the period, the procedures "
        f"with most {glossary.LATE.en.lower()} and {glossary.OVERDUE.en.lower()} cases first",
        [TOTAL, None, None, *cases(scope)],
    )

    wait_goal = reference.targets.get("wait_within_target_share")
    waits = Section(
        "waits", "Thời gian chờ tại Bộ phận Một cửa", "Waits at the one-stop centres",
        [Column("Mã", "Code"), Column("Bộ phận Một cửa", "Centre"),
         Column.of(glossary.VISITS, COUNT), Column.of(glossary.WAITS_WITHIN_15, SHARE),
         Column.of(glossary.TARGET, SHARE), Column("Kết quả", "Result"),
         Column.of(glossary.in_minutes(glossary.WAIT_MEDIAN), MINUTES),
         Column.of(glossary.in_minutes(glossary.WAIT_P90), MINUTES),
         Column.of(glossary.NO_SHOWS, COUNT)],
        [],
    )
    for code, figures in sorted(centres.items()):
        judged = {item["metric"]: item for item in targets["centres"][code]}
        waits.rows.append([
            code, names.get(code, code), figures["visits_waited"],
            figures["wait_within_target"]["ratio"], wait_goal,
            MET[judged["wait_within_target_share"]["met"]],
            _minutes(figures["wait_p50_seconds"]), _minutes(figures["wait_p90_seconds"]),
            figures["no_shows"],
        ])

    index = Section(
        "service_index", f"{glossary.SERVICE_INDEX.vi} (Quyết định 766)",
        f"{glossary.SERVICE_INDEX.en} (Decision 766)",
        [Column("Nhóm", "Group"), Column("Điểm tối đa", "Maximum", POINTS),
         Column("Tình trạng", "Status"), Column("Điểm", "Score", POINTS),
         Column("Điểm tính được", "Points computable", POINTS)],
        [[" / ".join(GROUPS[name]), group["max"], GROUP_STATUS[group["status"]],
          group["score"], group["computed_max"]]
         for name, group in province["service_index"].items()],
        "Nhóm không có số liệu không được tự điền; tổng điểm chỉ so với mục tiêu khi mọi nhóm "
        "đều tính được / groups without data are never filled in; the total is judged against "
        "the target only when every group is computed",
    )
    score = next(item for item in targets["province"] if item["metric"] == "service_index_score")
    index.columns += [Column.of(glossary.TARGET, POINTS), Column("Kết quả", "Result")]
    index.rows = [[*row, None, None] for row in index.rows]
    index.rows.append(["Tổng / Total", 100, None, score["value"],
                       sum(group["computed_max"] for group in province["service_index"].values()),
                       score["target"], MET[score["met"]]])

    late = Section(
        "late_cases", "Hồ sơ quá hạn", "Late cases",
        [Column("Mã hồ sơ", "Case"), Column("Thủ tục", "Procedure"),
         Column("Cơ quan giải quyết", "Handling agency"), Column("Tình trạng", "Status"),
         Column("Hạn giải quyết", "Due"), Column("Đơn vị chịu trách nhiệm", "Responsible"),
         Column("Xin lỗi", "Apology")],
        [[case["case_id"], case["procedure"], case["handling_agency"], STATUS[case["status"]],
          _instant(case["due_at"]), ", ".join(case["responsible"]), APOLOGY[case["apology"]]]
         for case in report["late_cases"]],
    )
    paper = Section(
        "late_paper_transfers", glossary.LATE_PAPER_HANDOFFS.vi, glossary.LATE_PAPER_HANDOFFS.en,
        [Column("Mã hồ sơ", "Case"), Column("Bộ phận Một cửa", "Centre"),
         Column("Cơ quan giải quyết", "Handling agency"), Column("Tiếp nhận lúc", "Accepted"),
         Column("Hạn chuyển", "Due to leave"), Column("Chuyển lúc", "Left")],
        [[item["case_id"], item["centre"], item["handling_agency"],
          _instant(item["accepted_at"]), _instant(item["due_at"]),
          _instant(item["handed_off_at"])]
         for item in report["late_paper_transfers"]],
        "Hồ sơ giấy tiếp nhận đến giờ chốt của Bộ phận Một cửa (mặc định 15:00) phải chuyển "
        "trong ngày, sau giờ chốt chậm nhất hết buổi sáng ngày làm việc tiếp theo (Nghị định "
        "61/2018) / a paper case accepted by the centre's cut-off (15:00 unless set) leaves "
        "the same working day, a later one by the end of the next working morning",
    )
    return [summary, against, by_agency, ranking, fields, procedures, waits, index, late, paper]


def _instant(text: str) -> str:
    """An ISO instant of the report as people read it (rulebook §11.13)."""
    return shown_instant(dt.datetime.fromisoformat(text))


def _text(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == POINTS and isinstance(value, float):
        return f"{value:.1f}"
    if kind == SHARE and isinstance(value, float):
        return f"{100 * value:.1f}%"
    if kind == MINUTES:
        return f"{value:.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _title(report: dict[str, Any]) -> tuple[str, str]:
    period = report["period"]
    scope = f" — {report['agency']}" if report["agency"] else ""
    return (
        f"Báo cáo kết quả giải quyết thủ tục hành chính kỳ {period['label']}{scope} / "
        f"Administrative procedures report, {period['label']}{scope}",
        f"Từ / from {period['from']} đến / to {period['to']}; "
        f"số liệu tại / judged as of {period['judged_as_of']}",
    )


def markdown(report: dict[str, Any], reference: Reference) -> bytes:
    title, subtitle = _title(report)
    lines = [f"# {title}", "", subtitle, ""]
    for section in sections(report, reference):
        lines += [f"## {section.heading}", ""]
        if section.note:
            lines += [f"_{section.note}_", ""]
        if not section.rows:
            lines += ["Không có / none", ""]
            continue
        lines.append("| " + " | ".join(column.heading for column in section.columns) + " |")
        lines.append("|" + "|".join("---:" if column.kind != TEXT else "---"
                                    for column in section.columns) + "|")
        for row in section.rows + ([section.total] if section.total else []):
            cells = (_text(value, column.kind).replace("|", "\\|")
                     for value, column in zip(row, section.columns, strict=True))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).encode()
