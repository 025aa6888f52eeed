"""The names of the figures people read, in Vietnamese and English, in one place: the
live view, the report (document, Excel, Markdown), the Grafana boards and the e-mails
take them from here, so that one figure has one name everywhere
(tests/unit/test_glossary.py holds the other modules to it). The apology letter names
no figure: it is form 04 of Circular 03/2025, in the form's own words.

The words are the administration's: *luân chuyển* for hand-offs between agencies
("liên thông" is an inter-agency procedure, something else); the service index of
Decision 766 is a score out of 100, and its on-time rate is named after the decision.
"Đúng hạn / On time" is the verdict alone; the share of cases ended early or on time is
"Trước và đúng hạn / Early or on time", never plain "on time".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Term:
    vi: str
    en: str
    # Short forms for a terminal's column, where the name has no room: `short` alone
    # on a narrow terminal (its lines as they stand there), both on a wide one when the
    # name is long.
    short: str = ""
    short_en: str = ""

    @property
    def both(self) -> str:
        """"Tiếp nhận / Received": Vietnamese first, as every bilingual label."""
        return f"{self.vi} / {self.en}"

    @property
    def within(self) -> Term:
        """The name inside a sentence: its first letter only in lower case ("tỷ lệ đúng
        hạn theo Chỉ số 766", where lower() would lose the capitals of a proper name)."""
        return Term(self.vi[:1].lower() + self.vi[1:], self.en[:1].lower() + self.en[1:])


def in_minutes(term: Term) -> Term:
    """A wait's name as a column of minutes."""
    return Term(f"{term.vi} (phút)", f"{term.en} (minutes)")


# What became of the cases.
RECEIVED = Term("Tiếp nhận", "Received", "Nhận")
ENDED = Term("Đã giải quyết", "Ended", "Xong")
OPEN = Term("Đang giải quyết", "Open")
EARLY = Term("Trước hạn", "Early")
ON_TIME = Term("Đúng hạn", "On time")
LATE = Term("Quá hạn", "Late")
EARLY_OR_ON_TIME = Term("Trước và đúng hạn", "Early or on time")
# Open cases past their due instant (LATE is a verdict of an ended case).
OVERDUE = Term("Đang quá hạn", "Overdue", "Đang\nquá hạn")
AT_RISK = Term("Sắp quá hạn", "At risk")
RESCHEDULED_TWICE = Term("Hẹn lại lần hai", "Re-scheduled twice")
REFUSALS_WITHOUT_REASON = Term("Từ chối không nêu lý do", "Refusals without reasons")

# The rates.
ON_TIME_RATE = Term("Tỷ lệ trước và đúng hạn", "Early or on-time rate", "Trước,\nđúng hạn",
                    "Early/on time")
SERVICE_INDEX_ON_TIME_RATE = Term("Tỷ lệ đúng hạn theo Chỉ số 766",
                                  "On-time rate (Decision 766)", "Đúng hạn 766", "On time, 766")
E_TRANSFERS = Term("Luân chuyển hồ sơ điện tử", "Electronic hand-offs", "Luân chuyển ĐT",
                   "E-hand-offs")
ONLINE_SUBMISSION = Term("Nộp hồ sơ trực tuyến", "Submitted online")
POSTAL_SUBMISSION = Term("Qua dịch vụ bưu chính", "By post")
ONLINE_PAYMENT = Term("Thanh toán trực tuyến", "Paid online")
ELECTRONIC_RESULTS = Term("Trả kết quả điện tử", "Electronic results")
FULLY_ONLINE = Term("Trực tuyến toàn trình", "Fully online")
SATISFACTION = Term("Mức độ hài lòng", "Satisfaction")

# The service index of Decision 766: a score, points out of 100.
SERVICE_INDEX = Term("Chỉ số phục vụ", "Service index")
SERVICE_INDEX_SCORE = Term("Điểm Chỉ số phục vụ (thang 100, phần tính được)",
                           "Service-index score out of 100 (computable part)")
SERVICE_INDEX_GROUPS = Term("Nhóm Chỉ số phục vụ (điểm)", "Service-index groups (points)")

# Apology letters.
APOLOGIES_REQUIRED = Term("Phải xin lỗi", "Apologies required")
APOLOGIES_IN_TIME = Term("Xin lỗi đúng hạn", "Apologies in time")
APOLOGIES_LATE = Term("Xin lỗi muộn", "Apologies late")
APOLOGIES_MISSING = Term("Chưa xin lỗi", "Apologies missing")

# Hand-offs of paper cases (Decree 61).
LATE_PAPER_HANDOFFS = Term("Hồ sơ giấy chuyển muộn", "Late paper hand-offs")

# Waits at the counter.
VISITS = Term("Lượt chờ", "Visits", "Lượt")
WAITS_WITHIN_15 = Term("Chờ không quá 15 phút", "Waits within 15 minutes", "≤ 15 phút",
                       "Within 15 min")
WAIT_MEDIAN = Term("Trung vị thời gian chờ", "Median wait", "Trung vị", "Median")
WAIT_P90 = Term("Phân vị 90 thời gian chờ", "90th-percentile wait", "P90", "90th pct.")
NO_SHOWS = Term("Không đến", "No-shows")
WAITING_NOW = Term("Đang chờ", "Waiting now")

# Targets and whether they are met.
TARGET = Term("Mục tiêu", "Target")
MET = Term("Đạt", "Met")
NOT_MET = Term("Không đạt", "Not met")
NOT_JUDGED = Term("Chưa đánh giá", "Not judged")

# Each target of models/targets.py by its figure.
TARGET_NAMES = {
    "completed_on_time_rate": ON_TIME_RATE,
    "service_index_on_time_rate": SERVICE_INDEX_ON_TIME_RATE,
    "apology_compliance": APOLOGIES_IN_TIME,
    "e_transfer_share": E_TRANSFERS,
    "online_submission_share": ONLINE_SUBMISSION,
    "postal_share": POSTAL_SUBMISSION,
    "online_payment_share": ONLINE_PAYMENT,
    "electronic_result_share": ELECTRONIC_RESULTS,
    "satisfaction_share": SATISFACTION,
    "service_index_score": SERVICE_INDEX_SCORE,
    "wait_within_target_share": WAITS_WITHIN_15,
}

# A case's state and its apology's, as a late case's row shows them.
CASE_STATES = {
    "open": OPEN,
    "processed": ENDED,
    "returned": Term("Đã trả kết quả", "Returned"),
    "refused": Term("Từ chối", "Refused"),
    "withdrawn": Term("Rút hồ sơ", "Withdrawn"),
    "stopped": Term("Dừng", "Stopped"),
}
APOLOGY_STATES = {
    "not_required": Term("Không phải xin lỗi", "Not required"),
    "issued_in_time": Term("Đã xin lỗi đúng hạn", "Issued in time"),
    "issued_late": Term("Đã xin lỗi muộn", "Issued late"),
    "missing": Term("Chưa có văn bản xin lỗi", "Not issued"),
}

# Every name above, once: what tests/unit/test_glossary.py looks for in other modules.
TERMS = tuple(dict.fromkeys(
    [value for value in list(globals().values()) if isinstance(value, Term)]
    + [*CASE_STATES.values(), *APOLOGY_STATES.values()]))

# Names the figures had before this glossary, each of which meant something else in
# another place or is not the administration's word; no module may use them again.
RETIRED = (
    "Liên thông",  # an inter-agency procedure, not a hand-off
    "Luân chuyển điện tử",
    "Electronic transfers",
    "e-transfer",
    "Completed on time",  # the early or on-time rate, not "on time"
    "Early and on time",
    "Giải quyết đúng hạn",
    "Tỷ lệ đúng hạn",  # which one? the early or on-time rate, or Decision 766's
    "Tỷ lệ giải quyết đúng hạn",
    "Đúng hạn (Chỉ số phục vụ)",
    "Đúng hạn theo Chỉ số phục vụ",
    "On time (service index)",
    "Chờ ≤ 15 phút",
)
