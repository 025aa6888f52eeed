"""The national public-service portal's dossier-status records, as contract events.

A province's one-stop system already sends each dossier's status to the national portal
(Cổng Dịch vụ công quốc gia) as a record with the portal's field names. Sent as they are
to the portal-status topic, they are mapped here to the event contract (rulebook §2):

| TrangThaiHoSo | meaning | event |
|---|---|---|
| 1 | submitted (nộp, not yet received) | none: the clock starts at reception |
| 2 | received | `received` |
| 3 | refused at reception | `refused`, stage `reception` |
| 4 | in processing | `supplement_received` (ends a supplement pause; else no effect) |
| 5 | supplement requested | `supplement_requested` |
| 6 | financial obligation requested | none: that pause is off by default (rulebook §3) |
| 7 | withdrawn by applicant | `withdrawn` |
| 8 | processing stopped | `stopped` |
| 9 | processed | `processed` |
| 10 | result returned | `returned` |

`KenhThucHien` (channel): 1 counter, 2 online, 3 postal. Instants are the portal's
`yyyyMMddHHmmss` in Vietnam's time (UTC+7, no daylight saving) or RFC 3339 with an
offset. The event's instant is `ThoiDiemXuLy` (when the status was set), else the
status's own date field (`NgayTiepNhan`, `NgayKetThucXuLy`, `NgayTra`).

The event id is made of the dossier code, the status and its instant, so a record sent
twice is one event, applied once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

VIETNAM = dt.timezone(dt.timedelta(hours=7))

STATUS_EVENTS: dict[int, str | None] = {
    1: None, 2: "received", 3: "refused", 4: "supplement_received",
    5: "supplement_requested", 6: None, 7: "withdrawn", 8: "stopped", 9: "processed",
    10: "returned",
}
CHANNELS = {1: "counter", 2: "online", 3: "postal"}
# Where each status's own instant is, when the record has no ThoiDiemXuLy.
STATUS_DATE_FIELDS = {2: "NgayTiepNhan", 9: "NgayKetThucXuLy", 10: "NgayTra"}

_PORTAL_INSTANT = re.compile(r"\d{14}")


class PortalRecordError(ValueError):
    """A status record that cannot be mapped; the message says why in plain words."""


# Complexity over the limit, on purpose: one branch per national status code.
def portal_event(  # noqa: C901
    record: Any, centre_of: Callable[[str], str | None]
) -> dict[str, Any] | None:
    """The contract event of one status record, or None for a status that has no event.
    `centre_of(agency)` is the one-stop centre that receives for an agency."""
    if not isinstance(record, Mapping):
        raise PortalRecordError("the record is not a JSON object")
    case_id = _text(record, "MaHoSo")
    status = _code(record, "TrangThaiHoSo", STATUS_EVENTS)
    kind = STATUS_EVENTS[status]
    if kind is None:
        return None
    instant_field = "ThoiDiemXuLy" if record.get("ThoiDiemXuLy") else STATUS_DATE_FIELDS.get(
        status, "ThoiDiemXuLy")
    occurred_at = _instant(record, instant_field)
    event: dict[str, Any] = {
        "event_id": f"portal:{case_id}:{status}:{occurred_at}", "type": kind,
        "case_id": case_id, "occurred_at": occurred_at, "source": "portal",
    }
    reason = _optional_text(record, "NoiDungXuLy") or _optional_text(record, "GhiChu")
    if kind == "received":
        agency = _text(record, "DonViXuLy")
        centre = centre_of(agency)
        if centre is None:
            raise PortalRecordError(f"DonViXuLy '{agency}' is not an agency of agencies.csv")
        event.update(
            procedure=_text(record, "MaTTHC"), handling_agency=agency, centre=centre,
            channel=CHANNELS[_code(record, "KenhThucHien", CHANNELS)],
        )
        if record.get("NgayHenTra"):
            event["due_at"] = _instant(record, "NgayHenTra")
        fee = _fee(record)
        if fee is not None:
            event["fee"] = fee
        applicant = {field: record[source] for field, source in (
            ("name", "ChuHoSo"), ("address", "DiaChi"), ("phone", "SoDienThoai"),
            ("email", "Email")) if isinstance(record.get(source), str) and record[source]}
        if applicant:
            event["applicant"] = applicant
    elif kind == "refused":
        event["stage"] = "reception"
        if reason:
            event["reason"] = reason
    elif kind in ("supplement_requested", "stopped"):
        if reason:
            event["reason"] = reason
    elif kind == "processed":
        event["outcome"] = "approved"
    elif kind == "returned":
        source = "KenhTraKetQua" if record.get("KenhTraKetQua") else "KenhThucHien"
        event["channel"] = CHANNELS[_code(record, source, CHANNELS)]
    return event


def _text(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PortalRecordError(f"field '{field}' is missing or not text")
    return value.strip()


def _optional_text(record: Mapping[str, Any], field: str) -> str | None:
    value = record.get(field)
    return (value.strip() or None) if isinstance(value, str) else None


def _code(record: Mapping[str, Any], field: str, known: Mapping[int, object]) -> int:
    value = record.get(field)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value not in known:
        raise PortalRecordError(
            f"field '{field}' must be one of {', '.join(map(str, known))}")
    return value


def _instant(record: Mapping[str, Any], field: str) -> str:
    """RFC 3339 text of a portal instant, in Vietnam's offset."""
    value = record.get(field)
    if not isinstance(value, str) or not value.strip():
        raise PortalRecordError(f"field '{field}' is missing or not text")
    value = value.strip()
    try:
        if _PORTAL_INSTANT.fullmatch(value):
            parsed = dt.datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VIETNAM)
        else:
            parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise PortalRecordError(
            f"field '{field}' is not an instant (yyyyMMddHHmmss or RFC 3339)") from None
    if parsed.tzinfo is None:
        raise PortalRecordError(f"field '{field}' has no UTC offset")
    return parsed.isoformat()


def _fee(record: Mapping[str, Any]) -> float | None:
    """The sum of `DanhSachLePhi[].MucPhi` (fees and charges, VND), if any is given."""
    fees = record.get("DanhSachLePhi")
    if not fees:
        return None
    if not isinstance(fees, list):
        raise PortalRecordError("field 'DanhSachLePhi' is not a list")
    total = 0.0
    for item in fees:
        amount = item.get("MucPhi") if isinstance(item, Mapping) else None
        if isinstance(amount, str):
            amount = amount.strip().replace(".", "").replace(",", "") or None
            amount = int(amount) if amount and amount.isdigit() else amount
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
            raise PortalRecordError("field 'DanhSachLePhi' has a MucPhi that is not an amount")
        total += amount
    return total
