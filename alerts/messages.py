"""What the notifier says, to whom: bilingual notices (Vietnamese first), as plain text
and HTML. Pure: the notifier decides when, these decide the words and the recipient.

Each notice goes to the head of one agency about that agency's cases only; the
applicant is named only in the apology draft, attached to the late-case e-mail of the
head who must sign it, never in an e-mail's text."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from onestop.consumers.glossary import APOLOGY_STATES, AT_RISK, OVERDUE, RECEIVED
from onestop.models.calendar import WorkingCalendar, shown_date, shown_instant
from onestop.models.case import CaseView
from onestop.models.reference import Agency, Reference

SUBJECT_PREFIX = "[Một cửa / One-stop]"
# A late case with no apology letter yet.
NO_APOLOGY = APOLOGY_STATES["missing"].within


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    content: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str  # at_risk, late, escalation, digest, alert
    key: str  # de-duplication key (with each recipient)
    recipients: tuple[str, ...]
    subject: str
    lines: tuple[str, ...]  # paragraphs, each "Vietnamese / English"
    agency: str | None = None
    case_id: str | None = None
    draft: Attachment | None = None  # the apology draft (form 04)
    rows: tuple[tuple[str, ...], ...] = field(default_factory=tuple)  # a table (digest)

    @property
    def text(self) -> str:
        parts = list(self.lines)
        if self.rows:
            parts += [" | ".join(row) for row in self.rows]
        if self.draft:
            parts.append(f"Dự thảo văn bản xin lỗi đính kèm / apology draft attached: "
                         f"{self.draft.name}")
        return "\n\n".join(parts) + "\n"

    @property
    def html(self) -> str:
        parts = [f"<p>{html.escape(line)}</p>" for line in self.lines]
        if self.rows:
            header, *body = self.rows
            parts.append("<table border='1' cellpadding='4' style='border-collapse:collapse'>"
                         + "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in header) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row)
                                   + "</tr>" for row in body)
                         + "</table>")
        if self.draft:
            parts.append(f"<p>Dự thảo văn bản xin lỗi (mẫu 04) đính kèm / apology draft (form "
                         f"04) attached: {html.escape(self.draft.name)}</p>")
        return "<html><body>" + "".join(parts) + "</body></html>"


def _day(calendar: WorkingCalendar, instant: float) -> str:
    """An instant as people read it: a due at 24:00 is that day's date (rulebook §11.13)."""
    return shown_instant(calendar.to_datetime(instant))


def _day_en(calendar: WorkingCalendar, instant: float) -> str:
    moment = calendar.to_datetime(instant)
    if calendar.is_end_of_day(instant):
        return f"{shown_date(moment):%d/%m/%Y}"
    return f"{moment:%H:%M} on {moment:%d/%m/%Y}"


def _greeting(agency: Agency) -> str:
    return f"Kính gửi {agency.head_name}, {agency.name} / Dear {agency.head_name},"


def _case_line(view: CaseView, reference: Reference, calendar: WorkingCalendar) -> str:
    procedure = reference.procedures.get(view.procedure)
    name = procedure.name if procedure else view.procedure
    received = RECEIVED.within
    return (f"Hồ sơ {view.case_id} ({name}), {received.vi} {_day(calendar, view.received_at)}, "
            f"hẹn trả {_day(calendar, view.due_at)} / case {view.case_id}, {received.en} "
            f"{_day_en(calendar, view.received_at)}, due {_day_en(calendar, view.due_at)}.")


def _apology_day(calendar: WorkingCalendar, view: CaseView) -> str:
    """The last day on which the apology is in time (its deadline is that day's 24:00)."""
    deadline = view.apology_deadline if view.apology_deadline is not None else view.due_at
    return f"{calendar.day_ending(deadline):%d/%m/%Y}"


def at_risk(event_id: str, agency: Agency, view: CaseView, reference: Reference,
            calendar: WorkingCalendar) -> Notice:
    return Notice(
        "at_risk", event_id, (agency.head_email,),
        f"{SUBJECT_PREFIX} Hồ sơ {AT_RISK.within.vi} / case {AT_RISK.within.en}: "
        f"{view.case_id}",
        (
            _greeting(agency),
            _case_line(view, reference, calendar),
            f"Nếu không kịp giải quyết, văn bản xin lỗi và đề nghị gia hạn (mẫu 04) phải gửi "
            f"trước khi hết ngày {_apology_day(calendar, view)}. Đề nghị giải quyết ngay, hoặc "
            f"gửi văn bản xin lỗi trong ngày / If the case cannot be finished in time, the "
            f"apology letter with a new date (form 04) must be sent before the end of "
            f"{_apology_day(calendar, view)}. Please finish it now, or send the letter today.",
        ),
        agency.code, view.case_id,
    )


def late(event_id: str, agency: Agency, view: CaseView, reference: Reference,
         calendar: WorkingCalendar, draft: Attachment) -> Notice:
    return Notice(
        "late", event_id, (agency.head_email,),
        f"{SUBJECT_PREFIX} Hồ sơ quá hạn {NO_APOLOGY.vi} / late case, apology "
        f"{NO_APOLOGY.en}: {view.case_id}",
        (
            _greeting(agency),
            _case_line(view, reference, calendar),
            f"Hồ sơ đã quá hạn mà {NO_APOLOGY.vi}. Dự thảo văn bản xin lỗi (mẫu 04 "
            "Thông tư 03/2025) đã được điền sẵn: đề nghị ghi lý do, ký và gửi người nộp hồ sơ "
            "/ The case is late and no apology has been issued. A draft of the apology letter "
            "(form 04, Circular 03/2025) is filled in: please state the reason, sign it and "
            "send it to the applicant.",
        ),
        agency.code, view.case_id, draft,
    )


def escalation(key: str, office: str, agency: Agency, view: CaseView, reference: Reference,
               calendar: WorkingCalendar, days: int) -> Notice:
    return Notice(
        "escalation", key, (office,),
        f"{SUBJECT_PREFIX} Chưa xin lỗi sau {days} ngày làm việc / apology still missing "
        f"after {days} working days: {view.case_id} ({agency.code})",
        (
            "Kính gửi Văn phòng UBND tỉnh / To the province office,",
            _case_line(view, reference, calendar),
            f"{agency.name} ({agency.head_name}) đã được thông báo nhưng sau {days} ngày làm "
            f"việc vẫn {NO_APOLOGY.vi} / {agency.name} ({agency.head_name}) was told, "
            f"but {days} working days later no apology has been issued.",
        ),
        agency.code, view.case_id,
    )


def digest(key: str, agency: Agency, day: dt.date, views: Iterable[CaseView], now: float,
           reference: Reference, calendar: WorkingCalendar) -> Notice:
    rows: list[tuple[str, ...]] = [("Hồ sơ / case", "Thủ tục / procedure",
                                    "Hẹn trả / due", "Tình trạng / status")]
    for view in sorted(views, key=lambda view: view.due_at):
        procedure = reference.procedures.get(view.procedure)
        if view.overdue:
            status = OVERDUE.both
            if view.apology == "missing":
                status = f"{OVERDUE.vi}, {NO_APOLOGY.vi} / {OVERDUE.en}, apology {NO_APOLOGY.en}"
        else:
            status = AT_RISK.both
        rows.append((view.case_id, procedure.name if procedure else view.procedure,
                     _day(calendar, view.due_at), status))
    return Notice(
        "digest", key, (agency.head_email,),
        f"{SUBJECT_PREFIX} Tổng hợp ngày {day:%d/%m/%Y} / daily digest: "
        f"{len(rows) - 1} hồ sơ cần xử lý / cases need action",
        (_greeting(agency),
         f"Các hồ sơ của {agency.name} sắp quá hạn hoặc đã quá hạn, tính đến "
         f"{_day(calendar, now)} / Cases of {agency.name} at risk or overdue, as of "
         f"{_day_en(calendar, now)}:"),
        agency.code, rows=tuple(rows),
    )


def alert(key: str, recipient: str, payload: dict[str, Any]) -> Notice:
    labels, annotations = payload.get("labels", {}), payload.get("annotations", {})
    name = labels.get("alertname", "alert")
    where = labels.get("agency") or labels.get("centre") or ""
    summary = annotations.get("summary", name)
    return Notice(
        "alert", key, (recipient,),
        f"{SUBJECT_PREFIX} Cảnh báo / alert {name}{' ' + where if where else ''}",
        (summary, f"Bắt đầu / since {payload.get('startsAt', '')}"),
        labels.get("agency"),
    )
