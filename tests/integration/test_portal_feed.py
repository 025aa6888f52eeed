"""A province's system feeds national-portal status records, and the live figures are
those of the contract events they stand for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest

from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.models.portal import VIETNAM, portal_event
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.ingest import ingest_lines
from onestop.streams.simulate import SimulationSettings, simulate
from onestop.streams.tansu_compat import read_to_end
from tests.integration.conftest import eventually, replay_of, wait_processed
from tests.integration.test_live_pipeline import AS_OF, FIXED_CLOCK, live_matches

pytestmark = pytest.mark.integration

STATUS_OF = {"received": 2, "refused": 3, "supplement_received": 4,
             "supplement_requested": 5, "withdrawn": 7, "stopped": 8, "processed": 9,
             "returned": 10}
CHANNEL_CODES = {"counter": 1, "online": 2, "postal": 3}


def portal_time(instant: str) -> str:
    return dt.datetime.fromisoformat(instant).astimezone(VIETNAM).strftime("%Y%m%d%H%M%S")


def as_portal_record(event: dict[str, Any], channels: dict[str, int]) -> dict[str, Any] | None:
    """What a one-stop system sends the portal for a contract event, if anything."""
    status = STATUS_OF.get(event["type"])
    if status is None or (status == 3 and event.get("stage") != "reception"):
        return None
    record = {"MaHoSo": event["case_id"], "TrangThaiHoSo": status,
              "ThoiDiemXuLy": portal_time(event["occurred_at"])}
    if status == 2:
        channels[event["case_id"]] = CHANNEL_CODES[event["channel"]]
        record.update(MaTTHC=event["procedure"], DonViXuLy=event["handling_agency"],
                      KenhThucHien=channels[event["case_id"]], ChuHoSo="Nguyễn Văn Dân")
        if event.get("due_at"):
            record["NgayHenTra"] = portal_time(event["due_at"])
    if status == 10:
        record["KenhTraKetQua"] = CHANNEL_CODES[event["channel"]]
    return record


def test_portal_status_records_give_the_figures_of_their_events(
    settings: Settings, start_worker: Any, tmp_path: Path
) -> None:
    reference = load_reference(SAMPLE_PROVINCE)
    channels: dict[str, int] = {}
    records = [record for event in simulate(reference, SimulationSettings(
        cases=150, seed=3, days=14, duplicate_rate=0.1))
        if (record := as_portal_record(event, channels)) is not None]
    assert {record["TrangThaiHoSo"] for record in records} >= {2, 4, 5, 9, 10}
    lines = [orjson.dumps(record) for record in records]
    bad = [b'{"MaHoSo":"X-1","TrangThaiHoSo":12,"ThoiDiemXuLy":"20260303091500"}',
           b"not json at all"]

    def centre_of(code: str) -> str | None:
        return reference.agencies[code].centre if code in reference.agencies else None

    events = tmp_path / "mapped.jsonl"
    events.write_bytes(b"".join(
        orjson.dumps(event) + b"\n" for record in records
        if (event := portal_event(record, centre_of)) is not None))
    expected, _ = replay_of(events, AS_OF)

    counts = ingest_lines(settings, lines[:300] + bad + lines[300:], portal=True)
    assert counts.portal_records == len(records) + 1 and counts.unkeyed == 1
    start_worker(settings, clock=FIXED_CLOCK).wait_ready()
    wait_processed(settings, counts.ends, timeout=120)
    assert eventually(lambda: live_matches(settings, expected), timeout=60), (
        "live figures of portal records differ from the replay of their events")

    letters = [orjson.loads(record.value) for record in read_to_end(
        settings.bootstrap_servers, [topics_for(settings).dead_letters.name])]
    assert sorted(letter["original"] for letter in letters) == sorted(b.decode() for b in bad)
    assert all(letter["reason"].startswith("portal status record: ") for letter in letters)
    assert all(letter["topic"] == topics_for(settings).portal_status.name for letter in letters)
