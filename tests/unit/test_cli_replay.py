import orjson
import pytest
from typer.testing import CliRunner

from onestop.streams.cli import app

AGENCIES = (
    "code,name,level,parent,head_name,head_email,centre\n"
    "CENTRE,Trung tâm,province,,A,a@x.vn,CENTRE\nSTP,Sở Tư pháp,province,,B,b@x.vn,CENTRE\n"
)
PROCEDURES = (
    "code,name,field,level,limit,limit_unit,same_day_cutoff,fee_bearing,paper_result,full_online_eligible\n"
    "P5,Cấp phiếu lý lịch tư pháp,Lý lịch tư pháp,province,5,working_days,,true,true,true\n"
)


def line(**fields):
    return orjson.dumps(fields).decode()


EVENTS = [
    line(event_id="e1", type="received", case_id="C1", occurred_at="2026-03-02T09:00:00+07:00",
         procedure="P5", handling_agency="STP", centre="CENTRE", channel="online"),
    "{broken json",
    line(event_id="e2", type="transferred", case_id="C1", occurred_at="2026-03-02T10:00:00+07:00",
         from_unit="CENTRE", to_unit="STP", method="electronic"),
    line(event_id="e3", type="received", case_id="C2", occurred_at="2026-03-02T09:00:00+07:00",
         procedure="NOPE", handling_agency="STP", centre="CENTRE", channel="counter"),
    "",
    line(event_id="e4", type="processed", case_id="C1", occurred_at="2026-03-10T10:00:00+07:00"),
    line(event_id="e4", type="processed", case_id="C1", occurred_at="2026-03-10T10:00:00+07:00"),
    line(event_id="q1", type="ticket_issued", ticket_id="T1", centre="CENTRE",
         occurred_at="2026-03-02T08:00:00+07:00"),
    line(event_id="q2", type="ticket_called", ticket_id="T1", centre="CENTRE", counter="1",
         occurred_at="2026-03-02T08:20:00+07:00"),
]


@pytest.fixture()
def files(tmp_path):
    reference = tmp_path / "ref"
    reference.mkdir()
    (reference / "agencies.csv").write_text(AGENCIES, encoding="utf-8")
    (reference / "procedures.csv").write_text(PROCEDURES, encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(EVENTS) + "\n", encoding="utf-8")
    return reference, events


def test_replay_prints_the_contract_json_and_keeps_rejected_lines(files, tmp_path):
    reference, events = files
    dead = tmp_path / "dead.jsonl"
    derived = tmp_path / "derived.jsonl"
    result = CliRunner().invoke(app, [
        "replay", str(events), "--reference", str(reference),
        "--as-of", "2026-03-31T17:00:00+07:00", "--dead-letters", str(dead),
        "--derived", str(derived)])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["as_of"] == "2026-03-31T17:00:00+07:00"
    assert report["cases"] == {"C1": {
        "handling_agency": "STP", "status": "processed", "due_at": "2026-03-10T00:00:00+07:00",
        "verdict": "late", "service_index_verdict": "late", "apology": "missing",
        "rescheduled_twice": False, "responsible": ["STP"], "procedure": "P5",
        "overdue": False, "supplement_requests": 0}}
    stp = report["agencies"]["STP"]
    assert (stp["received"], stp["ended"], stp["late"], stp["apologies_missing"]) == (1, 1, 1, 1)
    assert report["agencies"]["CENTRE"]["e_transfer_share"]["numerator"] == 1
    assert report["province"]["received"] == 1
    centre = report["centres"]["CENTRE"]
    assert centre["visits_waited"] == 1 and centre["wait_within_target"]["numerator"] == 0
    assert centre["wait_p50_seconds"] == 1200
    rejected = [orjson.loads(text) for text in dead.read_text().splitlines()]
    assert [(r["line"], r["text"]) for r in rejected] == [(2, "{broken json"), (4, EVENTS[3])]
    assert rejected[0]["reason"].startswith("not valid JSON")
    assert rejected[1]["reason"] == "unknown procedure code 'NOPE'"
    assert "2 rejected lines" in result.stderr
    kinds = sorted(orjson.loads(text)["type"] for text in derived.read_text().splitlines())
    # C1 was at risk on Friday 6 March and overdue from 24:00 of Monday 9 until it was
    # processed: the replay finds both, as the live worker does (rulebook §11.12).
    assert kinds == ["apology_missing", "apology_required", "case_at_risk", "case_closed",
                     "overdue_detected", "wait_exceeded"]


def test_as_of_defaults_to_the_latest_event(files):
    reference, events = files
    result = CliRunner().invoke(app, ["replay", str(events), "--reference", str(reference)])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["as_of"] == "2026-03-10T10:00:00+07:00"


@pytest.mark.parametrize(("arguments", "message"), [
    (["--as-of", "2026-03-31T17:00:00"], "has no time-zone offset"),
    (["--as-of", "yesterday"], "is not an ISO 8601 instant"),
    (["--from", "2026-13-01"], "is not a date as YYYY-MM-DD"),
])
def test_bad_options_get_clear_errors(files, arguments, message):
    reference, events = files
    result = CliRunner().invoke(app, ["replay", str(events), "--reference", str(reference),
                                      *arguments])
    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_file_and_bad_reference(files, tmp_path):
    reference, events = files
    result = CliRunner().invoke(app, ["replay", str(tmp_path / "none.jsonl"),
                                      "--reference", str(reference)])
    assert result.exit_code == 2 and "no events file" in result.stderr
    (reference / "procedures.csv").write_text(PROCEDURES.replace(",5,", ",x,"), encoding="utf-8")
    result = CliRunner().invoke(app, ["replay", str(events), "--reference", str(reference)])
    assert result.exit_code == 2
    assert "procedures.csv, line 2, column 'limit'" in result.stderr


def test_instants_the_calendar_cannot_count_are_dead_letters(files, tmp_path):
    reference, events = files
    far = [
        line(event_id="f1", type="received", case_id="F1", occurred_at="2026-03-02T09:00:00+07:00",
             procedure="P5", handling_agency="STP", centre="CENTRE", channel="online",
             due_at="9999-01-01T00:00:00+07:00"),
        line(event_id="f2", type="ticket_issued", ticket_id="T9", centre="CENTRE",
             occurred_at="2401-01-01T08:00:00+07:00"),
    ]
    events.write_text("\n".join(EVENTS[:1] + far) + "\n", encoding="utf-8")
    dead = tmp_path / "dead.jsonl"
    result = CliRunner().invoke(app, ["replay", str(events), "--reference", str(reference),
                                      "--dead-letters", str(dead)])
    assert result.exit_code == 0, result.output
    reasons = [orjson.loads(text)["reason"] for text in dead.read_text().splitlines()]
    assert reasons == [
        "field 'due_at': 9999-01-01T00:00:00+07:00 is outside the years the working calendar supports (1950–2199)",
        "field 'occurred_at': 2401-01-01T08:00:00+07:00 is outside the years the working calendar supports (1950–2199)",
    ]
    assert list(orjson.loads(result.stdout)["cases"]) == ["C1"]
