"""National-portal status records mapped to the event contract (rulebook §2)."""

from __future__ import annotations

import orjson
import pytest

from onestop.models.case import CaseRules
from onestop.models.events import Rejection, decode_event
from onestop.models.portal import PortalRecordError, portal_event
from onestop.models.reference import SAMPLE_PROVINCE, load_reference

REFERENCE = load_reference(SAMPLE_PROVINCE)


def centre_of(code: str) -> str | None:
    agency = REFERENCE.agencies.get(code)
    return None if agency is None else agency.centre


def record(status: int | str, **fields: object) -> dict[str, object]:
    return {"MaHoSo": "000.00.01.H99-260302-0001", "TrangThaiHoSo": status,
            "ThoiDiemXuLy": "20260303091500", **fields}


RECEIVED = record(
    2, MaTTHC="1.004363", DonViXuLy="SX-STP", KenhThucHien=2, NgayTiepNhan="20260302081000",
    ThoiDiemXuLy="", NgayHenTra="20260313170000", ChuHoSo="Trần Thị Bình",
    Email="binh@example.vn", SoDienThoai="0912345678", DiaChi="12 Lê Lợi, Sông Xanh",
    DanhSachLePhi=[{"TenPhiLePhi": "Lệ phí", "MucPhi": 200000}, {"MucPhi": "1.000"}],
)


def test_a_received_record_opens_the_case_with_everything_the_contract_needs() -> None:
    event = portal_event(RECEIVED, centre_of)
    assert event == {
        "event_id": "portal:000.00.01.H99-260302-0001:2:2026-03-02T08:10:00+07:00",
        "type": "received", "case_id": "000.00.01.H99-260302-0001",
        "occurred_at": "2026-03-02T08:10:00+07:00", "source": "portal",
        "procedure": "1.004363", "handling_agency": "SX-STP", "centre": "SX-TTPVHCC",
        "channel": "online", "due_at": "2026-03-13T17:00:00+07:00", "fee": 201000.0,
        "applicant": {"name": "Trần Thị Bình", "address": "12 Lê Lợi, Sông Xanh",
                      "phone": "0912345678", "email": "binh@example.vn"},
    }
    decoded = decode_event(orjson.dumps(event))
    assert not isinstance(decoded, Rejection)
    assert CaseRules(REFERENCE).check(decoded) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "fields", "expected"), [
    (3, {"NoiDungXuLy": "Thiếu tờ khai"},
     {"type": "refused", "stage": "reception", "reason": "Thiếu tờ khai"}),
    (4, {}, {"type": "supplement_received"}),
    ("5", {"NoiDungXuLy": "Bổ sung bản sao"},
     {"type": "supplement_requested", "reason": "Bổ sung bản sao"}),
    (7, {}, {"type": "withdrawn"}),
    (8, {"GhiChu": "Theo đề nghị"}, {"type": "stopped", "reason": "Theo đề nghị"}),
    (9, {}, {"type": "processed", "outcome": "approved"}),
    (10, {"KenhThucHien": 1, "KenhTraKetQua": 3}, {"type": "returned", "channel": "postal"}),
    (10, {"KenhThucHien": "1"}, {"type": "returned", "channel": "counter"}),
])
def test_each_status_becomes_its_event(
    status: int | str, fields: dict[str, object], expected: dict[str, object]
) -> None:
    event = portal_event(record(status, **fields), centre_of)
    assert event is not None
    assert {key: event[key] for key in expected} == expected
    assert event["occurred_at"] == "2026-03-03T09:15:00+07:00"
    assert not isinstance(decode_event(orjson.dumps(event)), Rejection)


def test_statuses_without_an_event_give_none() -> None:
    assert portal_event(record(1), centre_of) is None
    assert portal_event(record(6), centre_of) is None


def test_the_status_date_is_the_fallback_instant_and_rfc3339_is_accepted() -> None:
    processed = record(9, ThoiDiemXuLy=None, NgayKetThucXuLy="2026-03-05T10:00:00+07:00")
    assert portal_event(processed, centre_of)["occurred_at"] == (  # type: ignore[index]
        "2026-03-05T10:00:00+07:00")


def test_the_same_record_twice_is_the_same_event() -> None:
    assert portal_event(record(9), centre_of) == portal_event(record(9), centre_of)
    assert portal_event(record(9), centre_of) != portal_event(
        record(9, ThoiDiemXuLy="20260303091501"), centre_of)


@pytest.mark.parametrize(("bad", "reason"), [
    ([1, 2], "not a JSON object"),
    ({"TrangThaiHoSo": 2}, "'MaHoSo' is missing"),
    (record(11), "'TrangThaiHoSo' must be one of 1, 2"),
    (record(True), "'TrangThaiHoSo' must be one of"),
    (record(9, ThoiDiemXuLy="2026-03-05 10:00"), "'ThoiDiemXuLy' has no UTC offset"),
    (record(9, ThoiDiemXuLy="20261305100000"), "'ThoiDiemXuLy' is not an instant"),
    ({**RECEIVED, "DonViXuLy": "SX-NOPE"}, "'SX-NOPE' is not an agency"),
    ({**RECEIVED, "KenhThucHien": 4}, "'KenhThucHien' must be one of 1, 2, 3"),
    ({**RECEIVED, "MaTTHC": ""}, "'MaTTHC' is missing"),
    ({**RECEIVED, "DanhSachLePhi": [{"MucPhi": -5}]}, "MucPhi that is not an amount"),
    ({**RECEIVED, "DanhSachLePhi": "200000"}, "'DanhSachLePhi' is not a list"),
])
def test_a_record_that_cannot_be_mapped_says_why(bad: object, reason: str) -> None:
    with pytest.raises(PortalRecordError, match=reason.replace("(", r"\(")):
        portal_event(bad, centre_of)
