"""The apology-letter draft (form 04) opened as a Word document, its fields checked."""

from __future__ import annotations

import datetime as dt
import io

import orjson
from docx import Document

from onestop.alerts.apology import DOCX_TYPE, TO_FILL, draft_docx, draft_for
from onestop.common.replay import Replay
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, load_reference

ZONE = dt.timezone(dt.timedelta(hours=7))
NOW = dt.datetime(2026, 4, 20, 17, tzinfo=ZONE).timestamp()
RECEIVED = {
    "event_id": "A-r", "type": "received", "case_id": "HS-2026-0415",
    "occurred_at": "2026-04-13T09:00:00+07:00", "procedure": "1.001193",
    "handling_agency": "SX-P-BENDO", "centre": "SX-P-BENDO-MC", "channel": "counter",
    "due_at": "2026-04-15T17:00:00+07:00",
    "applicant": {"name": "Trần Thị Bình", "address": "12 Lê Lợi, phường Bến Đò"},
}


def late_view(event: dict) -> tuple[CaseRules, object]:
    rules = CaseRules(load_reference(SAMPLE_PROVINCE))
    replay = Replay.for_rules(rules)
    assert replay.feed(orjson.dumps(event)) is None
    return rules, rules.evaluate(replay.cases[event["case_id"]], NOW)


def document_text(content: bytes) -> str:
    document = Document(io.BytesIO(content))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join([paragraph.text for paragraph in document.paragraphs] + cells)


def test_the_draft_carries_the_case_the_dates_and_the_signer() -> None:
    rules, view = late_view(RECEIVED)
    today = dt.date(2026, 4, 20)
    draft = draft_for(view, rules.reference, rules.calendar, 5, today)
    holder = rules.reference.agencies[view.holder]
    text = document_text(draft_docx(draft, today))

    assert "VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN THỜI GIAN GIẢI QUYẾT" in text
    assert "Kính gửi: Trần Thị Bình" in text
    assert "Địa chỉ: 12 Lê Lợi, phường Bến Đò" in text
    assert "mã hồ sơ HS-2026-0415" in text
    assert "Ngày 13/04/2026" in text  # received
    assert "hẹn trả kết quả ngày 15/04/2026" in text  # original due date
    # Proposed: five working days after today, as the due date has passed.
    proposed = rules.calendar.add_working_days(today, 5)
    assert proposed > today and f"đến ngày {proposed:%d/%m/%Y}" in text
    assert f"Lý do: {TO_FILL}" in text  # the agency states the reason
    assert holder.name.upper() in text and holder.head_name in text
    assert "ngày 20 tháng 4 năm 2026" in text  # Decree 30: no zero before April


def test_an_applicant_the_event_did_not_name_is_left_for_the_agency() -> None:
    event = {key: value for key, value in RECEIVED.items() if key != "applicant"}
    rules, view = late_view(event)
    draft = draft_for(view, rules.reference, rules.calendar, 5, dt.date(2026, 4, 20))
    text = document_text(draft_docx(draft, dt.date(2026, 4, 20)))
    assert f"Kính gửi: {TO_FILL}" in text


def test_a_due_at_24_00_is_written_as_that_day() -> None:
    """Rulebook §11.13: due at the end of 15 April (00:00 of the 16th) is "ngày 15/04"."""
    from onestop.alerts.messages import Attachment, at_risk, late

    rules, view = late_view({**RECEIVED, "due_at": "2026-04-16T00:00:00+07:00"})
    today = dt.date(2026, 4, 20)
    draft = draft_for(view, rules.reference, rules.calendar, 5, today)
    text = document_text(draft_docx(draft, today))
    assert "hẹn trả kết quả ngày 15/04/2026" in text
    agency = rules.reference.agencies[view.holder]
    letter = late("k", agency, view, rules.reference, rules.calendar,
                  Attachment("d.docx", b"", DOCX_TYPE)).text
    assert "hẹn trả 15/04/2026 / case" in letter and "due 15/04/2026." in letter
    assert "16/04/2026" not in letter
    assert "tiếp nhận 09:00 ngày 13/04/2026" in letter
    # The warning names the last day on which the apology is in time: Tuesday 14 April.
    warning = at_risk("k", agency, view, rules.reference, rules.calendar).text
    assert "trước khi hết ngày 14/04/2026" in warning
