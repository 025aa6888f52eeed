"""What one case or one queue ticket adds to the monitor's Prometheus series.

Pure, so that a worker can keep running totals by taking away an entity's old
contribution and adding its new one whenever it is judged again. Each contribution
counts the entity as of the instant it was judged, over all time: the same figures as
`onestop replay` without `--from`, broken down by labels.

Labels are agency, centre, field, channel, verdict and a few closed sets of words;
never a case, a ticket or a person (architecture, Metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

from .case import CaseView
from .queue import Visit


@dataclass(frozen=True, slots=True)
class Series:
    name: str  # without the `onestop_` prefix, nor `_total` for counters
    kind: str  # counter, gauge or histogram
    labels: tuple[str, ...]
    # Vietnamese first, then English; in the words of consumers/glossary.py, which this
    # layer cannot import (tests/unit/test_glossary.py leaves this module out).
    help: str


# Counters only grow while a case moves forward (a case ends once, an apology is issued
# once); gauges are states that come and go (open, overdue, at risk).
CASE_SERIES = (
    Series("cases_received", "counter", ("agency", "field", "channel"),
           "Hồ sơ tiếp nhận / cases received"),
    Series("cases_ended", "counter", ("agency", "field", "verdict"),
           "Hồ sơ đã giải quyết theo kết quả đúng hạn / cases ended, by verdict"),
    Series("cases_open", "gauge", ("agency",), "Hồ sơ đang giải quyết / cases open"),
    Series("cases_overdue", "gauge", ("agency",),
           "Hồ sơ đang giải quyết quá hạn / open cases past their due instant"),
    Series("cases_at_risk", "gauge", ("agency",),
           "Hồ sơ sắp quá hạn (từ đầu ngày làm việc cuối cùng trước ngày hẹn trả) / cases "
           "in the last working day before their due day, by the agency holding them"),
    Series("transfers", "counter", ("agency", "method"),
           "Lần luân chuyển hồ sơ theo hình thức / hand-offs sent, by method"),
    Series("apologies_required", "counter", ("agency",),
           "Hồ sơ phải xin lỗi / cases that need an apology letter"),
    Series("apologies_in_time", "counter", ("agency",),
           "Văn bản xin lỗi gửi đúng hạn / apology letters issued in time"),
    Series("apologies_missing", "gauge", ("agency",),
           "Hồ sơ chưa có văn bản xin lỗi quá hạn gửi / apologies overdue, not issued"),
    Series("fee_cases", "counter", ("agency",), "Hồ sơ có phí, lệ phí / fee-bearing cases"),
    Series("fee_paid_online", "counter", ("agency",),
           "Hồ sơ thanh toán trực tuyến / fee-bearing cases paid online"),
    Series("full_online_eligible", "counter", ("agency",),
           "Hồ sơ thuộc thủ tục trực tuyến toàn trình / cases of fully-online procedures"),
    Series("full_online", "counter", ("agency",),
           "Hồ sơ nộp trực tuyến toàn trình / cases submitted fully online"),
    Series("paper_results", "counter", ("agency",),
           "Hồ sơ thủ tục có kết quả giấy đã giải quyết chấp thuận / approved cases of "
           "procedures with a paper result"),
    Series("electronic_results", "counter", ("agency",),
           "Hồ sơ có kết quả điện tử / of those, with an electronic result too"),
    Series("late_paper_transfers", "counter", ("centre",),
           "Hồ sơ giấy chuyển đi muộn (Nghị định 61) / first paper hand-offs that left the "
           "centre later than the same-day rule"),
    Series("service_index_cases", "gauge", ("agency", "verdict"),
           "Hồ sơ tính chỉ số tiến độ (766) / cases counted in the service index's progress"),
    Series("service_index_satisfied_cases", "gauge", ("agency",),
           "Hồ sơ đúng hạn và không bị đánh giá không hài lòng / on time and not rated "
           "unsatisfied"),
)

QUEUE_SERIES = (
    Series("visits", "counter", ("centre",), "Số phiếu lấy số / queue tickets issued"),
    Series("wait_seconds", "histogram", ("centre",),
           "Thời gian chờ đến lượt (giây) / wait from ticket to first call, seconds"),
    Series("no_shows", "counter", ("centre",), "Không đến khi được gọi / no-shows"),
    Series("recalls", "counter", ("centre",), "Lần gọi lại / recalls"),
    Series("waiting_now", "gauge", ("centre",), "Đang chờ / waiting now"),
)

# The 15-minute target is the 900 s bucket (architecture, Metrics).
WAIT_BUCKETS = (60.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0)

# One measure: a series, its label values and what it adds (1 for a count, the wait in
# seconds for the histogram).
Measure = tuple[str, tuple[str, ...], float]


# Complexity over the limit, on purpose: one branch per series.
def case_measures(view: CaseView, field: str, now: float) -> tuple[Measure, ...]:  # noqa: C901
    """The case's contribution as of `now`, the instant it was judged (its `view`).
    Mirrors `models.aggregates.add_case` over a period that holds everything."""
    agency = view.handling_agency
    one = (agency,)
    measures: list[Measure] = [("cases_received", (agency, field, view.channel), 1)]
    if view.fee_bearing:
        measures.append(("fee_cases", one, 1))
        if view.paid_online:
            measures.append(("fee_paid_online", one, 1))
    if view.full_online_eligible:
        measures.append(("full_online_eligible", one, 1))
        if view.full_online:
            measures.append(("full_online", one, 1))
    for _at, sender, _receiver, method in view.transfers:
        measures.append(("transfers", (sender, method), 1))
    is_open = view.status == "open"
    if view.late_paper_transfer_at is not None:
        measures.append(("late_paper_transfers", (view.centre,), 1))
    if view.paper_result and view.approved_at is not None:
        measures.append(("paper_results", one, 1))
        if view.electronic_result:
            measures.append(("electronic_results", one, 1))
    if view.ended:
        measures.append(("cases_ended", (agency, field, view.verdict or "late"), 1))
    elif is_open:
        measures.append(("cases_open", one, 1))
        if view.overdue:
            measures.append(("cases_overdue", one, 1))
        if view.at_risk(now):
            measures.append(("cases_at_risk", (view.holder,), 1))
    if view.ended or is_open:
        on_time = view.service_index_verdict == "on_time"
        measures.append(("service_index_cases", (agency, "on_time" if on_time else "late"), 1))
        if on_time and view.rating != "unsatisfied":
            measures.append(("service_index_satisfied_cases", one, 1))
        if view.apology != "not_required":
            measures.append(("apologies_required", one, 1))
            if view.apology == "issued_in_time":
                measures.append(("apologies_in_time", one, 1))
            elif view.apology == "missing":
                measures.append(("apologies_missing", one, 1))
    return tuple(measures)


def visit_measures(visit: Visit) -> tuple[Measure, ...]:
    """The ticket's contribution as of the instant it was judged (`models.aggregates.
    add_visit` over a period that holds everything)."""
    centre = (visit.centre,)
    measures: list[Measure] = [("visits", centre, 1)]
    if visit.recalls:
        measures.append(("recalls", centre, visit.recalls))
    if visit.no_show:
        measures.append(("no_shows", centre, 1))
    elif visit.wait_seconds is None:
        measures.append(("waiting_now", centre, 1))
    else:
        measures.append(("wait_seconds", centre, visit.wait_seconds))
    return tuple(measures)
