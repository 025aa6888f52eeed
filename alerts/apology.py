"""Apology-letter drafts: form 04 of Circular 03/2025, "Văn bản xin lỗi và đề nghị gia
hạn thời gian giải quyết" (rulebook §6), filled from the case, as a Word document the
agency completes (the reason, when the monitor cannot know it) and its head signs."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt

from onestop.consumers.vietnamese import document_date
from onestop.models.calendar import WorkingCalendar
from onestop.models.case import CaseView
from onestop.models.reference import Reference

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# What the agency must write in by hand when the monitor does not know it.
TO_FILL = "…………………………………………"


@dataclass(frozen=True, slots=True)
class ApologyDraft:
    """The fields of form 04 for one case."""

    agency_name: str
    parent_name: str
    applicant_name: str
    applicant_address: str
    case_id: str
    procedure_name: str
    received_on: dt.date
    due_on: dt.date
    proposed_on: dt.date
    reason: str
    signer_name: str


def draft_for(view: CaseView, reference: Reference, calendar: WorkingCalendar,
              extension_days: int, today: dt.date) -> ApologyDraft:
    """The draft for the agency that holds the case now: it is the one that must
    apologise in time (rulebook §6). The proposed new date is `extension_days` working
    days after the later of the due date and today, for the agency to change."""
    agency = reference.agencies.get(view.holder) or reference.agencies[view.handling_agency]
    parent = reference.agencies.get(agency.parent or "")
    name, address = (view.applicant or (None, None))[:2]
    due_on = calendar.day_ending(view.due_at)  # a due at 24:00 is that day's (§11.13)
    procedure = reference.procedures.get(view.procedure)
    return ApologyDraft(
        agency_name=agency.name,
        parent_name=parent.name if parent else "",
        applicant_name=name or TO_FILL,
        applicant_address=address or TO_FILL,
        case_id=view.case_id,
        procedure_name=procedure.name if procedure else view.procedure,
        received_on=calendar.local_date(view.received_at),
        due_on=due_on,
        proposed_on=calendar.add_working_days(max(due_on, today), extension_days),
        reason=TO_FILL,
        signer_name=agency.head_name,
    )


def draft_docx(draft: ApologyDraft, today: dt.date) -> bytes:
    """The Word document of `draft`, in memory: it is attached to the head's e-mail and
    never written to disk, so no copy of the applicant's data is left behind."""
    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Times New Roman"
    style.font.size = Pt(13)

    header = document.add_table(rows=1, cols=2)
    left, right = header.rows[0].cells
    left.text = f"{draft.parent_name.upper()}\n{draft.agency_name.upper()}\nSố: ……/…….".lstrip()
    right.text = ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc\n\n"
                  f"…………, {document_date(today)}")
    for cell in (left, right):
        for paragraph in cell.paragraphs:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER

    title = document.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title.add_run("VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN THỜI GIAN GIẢI QUYẾT")
    run.bold = True
    document.add_paragraph(f"Kính gửi: {draft.applicant_name}").alignment = (
        WD_ALIGN_PARAGRAPH.CENTER)
    document.add_paragraph(f"Địa chỉ: {draft.applicant_address}")
    document.add_paragraph(
        f"Ngày {draft.received_on:%d/%m/%Y}, {draft.agency_name} tiếp nhận hồ sơ "
        f"“{draft.procedure_name}”, mã hồ sơ {draft.case_id}, hẹn trả kết quả "
        f"ngày {draft.due_on:%d/%m/%Y}."
    )
    document.add_paragraph(
        "Đến nay, hồ sơ chưa được giải quyết xong đúng thời hạn đã hẹn. "
        f"Lý do: {draft.reason}"
    )
    document.add_paragraph(
        f"{draft.agency_name} thành thật xin lỗi Ông/Bà vì sự chậm trễ này và đề nghị gia "
        f"hạn thời gian trả kết quả đến ngày {draft.proposed_on:%d/%m/%Y}."
    )
    document.add_paragraph("Trân trọng./.")

    signature = document.add_table(rows=1, cols=2)
    receivers, signer = signature.rows[0].cells
    receivers.text = "Nơi nhận:\n- Như trên;\n- Bộ phận Một cửa;\n- Lưu: VT."
    signer.text = (f"THỦ TRƯỞNG CƠ QUAN\n(Ký, ghi rõ họ tên và đóng dấu)\n\n\n\n"
                   f"{draft.signer_name}")
    for paragraph in signer.paragraphs:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    document.core_properties.title = f"Văn bản xin lỗi - {draft.case_id}"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
