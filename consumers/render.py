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

from onestop.consumers.report import breakdown
from onestop.models.calendar import shown_instant
from onestop.models.reference import Reference
from onestop.models.targets import TARGETS

# Column kinds: how a value is shown.
TEXT, COUNT, SHARE, MINUTES, POINTS = "text", "count", "share", "minutes", "points"


@dataclass(frozen=True, slots=True)
class Column:
    vi: str
    en: str
    kind: str = TEXT

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
MET = {True: "Đạt / Met", False: "Không đạt / Not met", None: "Chưa đánh giá / Not judged"}
APOLOGY = {
    "not_required": "Không phải xin lỗi / Not required",
    "issued_in_time": "Đã xin lỗi đúng hạn / Issued in time",
    "issued_late": "Xin lỗi muộn / Issued late",
    "missing": "Chưa xin lỗi / Missing",
}
STATUS = {
    "open": "Đang giải quyết / Open", "processed": "Đã giải quyết / Processed",
    "returned": "Đã trả kết quả / Returned", "refused": "Từ chối / Refused",
    "withdrawn": "Rút hồ sơ / Withdrawn", "stopped": "Dừng / Stopped",
}
GROUPS = {
    "publicity": ("Công khai, minh bạch", "Publicity"),
    "progress": ("Tiến độ giải quyết", "Processing progress"),
    "online_service": ("Dịch vụ công trực tuyến", "Online service"),
    "online_payment": ("Thanh toán trực tuyến", "Online payment"),
    "digitisation": ("Số hóa hồ sơ", "Digitisation"),
    "satisfaction": ("Mức độ hài lòng", "Satisfaction"),
}
GROUP_STATUS = {"computed": "Tính đủ / Computed", "partial": "Tính một phần / Partial",
                "not_available": "Không có số liệu / Not available"}
COUNTS = [
    ("received", "Hồ sơ tiếp nhận", "Cases received"),
    ("ended", "Hồ sơ đã giải quyết", "Cases ended"),
    ("early", "Trước hạn", "Early"),
    ("on_time", "Đúng hạn", "On time"),
    ("late", "Quá hạn", "Late"),
    ("overdue_open", "Đang quá hạn cuối kỳ", "Overdue open at period end"),
    ("apologies_required", "Phải xin lỗi", "Apologies required"),
    ("apologies_in_time", "Xin lỗi đúng hạn", "Apologies in time"),
    ("apologies_late", "Xin lỗi muộn", "Apologies late"),
    ("apologies_missing", "Chưa xin lỗi", "Apologies missing"),
    ("rescheduled_twice", "Hẹn lại lần hai", "Re-scheduled twice"),
    ("refusals_without_reason", "Từ chối không nêu lý do", "Refusals without reasons"),
]
# What became of the cases, for the tables by field and by procedure.
CASE_COUNTS = COUNTS[:6]
CHANNELS = [
    ("received_counter", "Trực tiếp", "Counter"),
    ("received_online", "Trực tuyến", "Online"),
    ("received_postal", "Bưu chính", "Postal"),
]
CHANNELS_RECEIVED = [
    (key, f"Tiếp nhận {vi.lower()}", f"Received ({en.lower()})") for key, vi, en in CHANNELS
]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def sections(report: dict[str, Any], reference: Reference) -> list[Section]:
    agencies, centres, province = report["agencies"], report["centres"], report["province"]
    targets = report["targets"]
    names = {code: agency.name for code, agency in reference.agencies.items()}
    labels = {target.metric: (target.vi, target.en) for target in TARGETS}

    summary = Section(
        "summary", "Tổng hợp toàn tỉnh", "Province summary",
        [Column("Chỉ tiêu", "Indicator"), Column("Số lượng", "Number", COUNT)],
        [[f"{vi} / {en}", province[key]] for key, vi, en in COUNTS + CHANNELS_RECEIVED],
    )
    against = Section(
        "targets", "So với mục tiêu của tỉnh", "Against the province's targets",
        [Column("Chỉ tiêu", "Indicator"), Column("Giá trị", "Value", SHARE),
         Column("Tử số", "Numerator", COUNT), Column("Mẫu số", "Denominator", COUNT),
         Column("Mục tiêu", "Target", SHARE), Column("Kết quả", "Result")],
        [[" / ".join(labels[item["metric"]]), item["value"], item["numerator"],
          item["denominator"], item["target"], MET[item["met"]]]
         for item in targets["province"] if item["metric"] != "service_index_score"],
    )

    by_agency = Section(
        "agencies", "Theo cơ quan", "By agency",
        [Column("Mã", "Code"), Column("Cơ quan", "Agency"),
         *(Column(vi, en, COUNT) for _key, vi, en in COUNTS),
         Column("Tỷ lệ đúng hạn", "Completed on time", SHARE),
         Column("Đạt mục tiêu", "Target met"),
         Column("Đúng hạn (Chỉ số phục vụ)", "On time (service index)", SHARE),
         Column("Luân chuyển điện tử", "Electronic transfers", SHARE),
         *(Column(vi, en, SHARE) for _key, vi, en in CHANNELS),
         Column("Thanh toán trực tuyến", "Paid online", SHARE)],
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
         Column("Đã giải quyết", "Ended", COUNT),
         Column("Tỷ lệ đúng hạn", "Completed on time", SHARE),
         Column("Đúng hạn (Chỉ số phục vụ)", "On time (service index)", SHARE)],
        [[entry["rank"], entry["agency"], names.get(entry["agency"], entry["agency"]),
          entry["ended"], entry["completed_on_time_rate"], entry["service_index_on_time_rate"]]
         for entry in report["ranking"]],
        "Cơ quan chưa giải quyết hồ sơ nào trong kỳ không xếp hạng / "
        "agencies that ended no case in the period are not ranked",
    )

    by_field, by_procedure = breakdown(report, reference)
    scope = province if report["agency"] is None else agencies[report["agency"]]
    case_columns = [*(Column(vi, en, COUNT) for _key, vi, en in CASE_COUNTS),
                    Column("Tỷ lệ đúng hạn", "Completed on time", SHARE)]

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
        "Mọi hồ sơ trong kỳ, thủ tục có nhiều hồ sơ quá hạn và đang quá hạn nhất trước / "
        "every case of the period, the procedures with most late and overdue cases first",
        [TOTAL, None, None, *cases(scope)],
    )

    wait_goal = reference.targets.get("wait_within_target_share")
    waits = Section(
        "waits", "Thời gian chờ tại Bộ phận Một cửa", "Waits at the one-stop centres",
        [Column("Mã", "Code"), Column("Bộ phận Một cửa", "Centre"),
         Column("Lượt chờ", "Visits", COUNT),
         Column("Chờ ≤ 15 phút", "Within 15 minutes", SHARE),
         Column("Mục tiêu", "Target", SHARE), Column("Kết quả", "Result"),
         Column("Trung vị (phút)", "Median (minutes)", MINUTES),
         Column("Phân vị 90 (phút)", "90th percentile (minutes)", MINUTES),
         Column("Không đến", "No-shows", COUNT)],
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
        "service_index", "Chỉ số phục vụ (Quyết định 766)", "Service index (Decision 766)",
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
    index.columns += [Column("Mục tiêu", "Target", POINTS), Column("Kết quả", "Result")]
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
        "late_paper_transfers", "Hồ sơ giấy chuyển muộn", "Late paper hand-offs",
        [Column("Mã hồ sơ", "Case"), Column("Bộ phận Một cửa", "Centre"),
         Column("Cơ quan giải quyết", "Handling agency"), Column("Tiếp nhận", "Accepted"),
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
