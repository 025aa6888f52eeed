"""Bad input never crashes a worker (contract §6-7): a fuzzer over the event decoder,
the rules that judge what it accepts, and the CSV reference loaders.

- Whatever bytes arrive, `decode_event` gives an event or a `Rejection` with a reason in
  plain words, and never raises. The reason never repeats the applicant's name, phone,
  address or e-mail (reasons are kept and shown; personal data must not spread).
- Valid events of every type, mutated one field or a few bytes at a time: what the decoder
  accepts goes through the rules' check; what passes is applied to a case (or ticket)
  state, judged at several instants, turned into metric contributions and a changelog
  record, and none of that raises. Metric labels are only the province's codes and closed
  sets of words: never a case id, a ticket id or personal data.
- A copy of the sample province with one CSV file damaged loads, or fails with a
  `ReferenceError` that names the file and the line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from onestop.common.codec import Entry, decode_entry, encode_entry
from onestop.models.case import CaseRules, CaseState
from onestop.models.events import CASE_EVENT_TYPES, QUEUE_EVENT_TYPES, Rejection, decode_event
from onestop.models.measures import case_measures, visit_measures
from onestop.models.queue import QueueRules, TicketState
from onestop.models.reference import SAMPLE_PROVINCE, ReferenceError, load_reference

REFERENCE = load_reference(SAMPLE_PROVINCE)
RULES = CaseRules(REFERENCE)
QUEUE_RULES = QueueRules(RULES.settings.wait_target_seconds)
ZONE = dt.timezone(dt.timedelta(hours=7))
START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=ZONE).timestamp()
# The judging instants besides the story's own: a month after it starts, and far later.
AS_OF = (START + 30 * 86400, dt.datetime(2027, 1, 4, 9, tzinfo=ZONE).timestamp())

# What a metric label may hold: reference codes and closed sets of words.
AGENCY_CODES = frozenset(REFERENCE.agencies)
FIELDS = frozenset(procedure.field for procedure in REFERENCE.procedures.values())
LABEL_WORDS = frozenset({"counter", "online", "postal", "early", "on_time", "late",
                         "electronic", "paper"})

# Fields whose value the rules' check names when it does not know it (a code): a value
# moved there from the applicant comes back in the check's reason by design.
CODE_FIELDS = frozenset({"procedure", "handling_agency", "centre", "from_unit", "to_unit",
                         "agency"})

# ---- personal data ---------------------------------------------------------------------

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ"]
MIDDLE = ["Văn", "Thị", "Hữu", "Ngọc", "Minh", "Đức", "Thanh"]
GIVEN = ["Ánh", "Bảo", "Cường", "Dũng", "Hạnh", "Khoa", "Loan", "Phúc", "Quỳnh", "Tâm"]
STREETS = ["Trần Hưng Đạo", "Lê Lợi", "Hai Bà Trưng", "Nguyễn Trãi", "Điện Biên Phủ"]


@st.composite
def applicants(draw: Any) -> dict[str, str]:
    return {
        "name": " ".join(draw(st.sampled_from(part)) for part in (FAMILY, MIDDLE, GIVEN)),
        "address": f"Số {draw(st.integers(1, 250))}, đường {draw(st.sampled_from(STREETS))}, "
                   f"tổ {draw(st.integers(1, 30))}",
        "phone": "0" + draw(st.sampled_from("35789")) + draw(st.from_regex(r"\d{8}", fullmatch=True)),
        "email": draw(st.from_regex(r"[a-z]{3,8}\.[a-z]{2,8}[0-9]{1,3}", fullmatch=True))
        + "@" + draw(st.sampled_from(["gmail.com", "yahoo.com.vn", "songxanh.vn"])),
    }


def personal(applicant: dict[str, str]) -> list[str]:
    return [applicant[key] for key in ("name", "address", "phone", "email")]


# ---- valid events of every type ----------------------------------------------------------


def iso(instant: float) -> str:
    return dt.datetime.fromtimestamp(instant, ZONE).isoformat()


def case_story(case_id: str, applicant: dict[str, str], start: float) -> list[dict[str, Any]]:
    """One valid event of each case type for one case (contract §2)."""

    def at(hours: float) -> str:
        return iso(start + hours * 3600)

    common = {"case_id": case_id, "source": "igate"}
    return [
        {"event_id": f"{case_id}-01", "type": "received", "occurred_at": at(0),
         "procedure": "1.004363", "handling_agency": "SX-STP", "centre": "SX-TTPVHCC",
         "channel": "counter", "due_at": at(240), "fee": 200000, "full_online": False,
         "applicant": applicant, **common},
        {"event_id": f"{case_id}-02", "type": "transferred", "occurred_at": at(1),
         "from_unit": "SX-TTPVHCC", "to_unit": "SX-STP", "method": "electronic", **common},
        {"event_id": f"{case_id}-03", "type": "paid", "occurred_at": at(2), "method": "online",
         "amount": 200000, **common},
        {"event_id": f"{case_id}-04", "type": "supplement_requested", "occurred_at": at(20),
         "reason": "Thiếu bản sao căn cước", **common},
        {"event_id": f"{case_id}-05", "type": "supplement_received", "occurred_at": at(44),
         **common},
        {"event_id": f"{case_id}-06", "type": "apology_issued", "occurred_at": at(200),
         "agency": "SX-STP", "new_due_at": at(320), "reason": "Quá tải hồ sơ",
         "signed_by": "Nguyễn Văn An", **common},
        {"event_id": f"{case_id}-07", "type": "overdue", "occurred_at": at(250),
         "due_at": at(240), **common},
        {"event_id": f"{case_id}-08", "type": "processed", "occurred_at": at(260),
         "outcome": "approved", "electronic_result": True, **common},
        {"event_id": f"{case_id}-09", "type": "refused", "occurred_at": at(262),
         "stage": "processing", "reason": "Không đủ điều kiện", **common},
        {"event_id": f"{case_id}-10", "type": "stopped", "occurred_at": at(263),
         "reason": "Theo yêu cầu", **common},
        {"event_id": f"{case_id}-11", "type": "withdrawn", "occurred_at": at(264), **common},
        {"event_id": f"{case_id}-12", "type": "returned", "occurred_at": at(270),
         "channel": "online", **common},
        {"event_id": f"{case_id}-13", "type": "rated", "occurred_at": at(271),
         "rating": "satisfied", **common},
        {"event_id": f"{case_id}-14", "type": "applicant_erased", "occurred_at": at(272),
         "source": "onestop erase", **common},
    ]


def ticket_story(ticket_id: str, case_id: str, start: float) -> list[dict[str, Any]]:
    """One valid event of each queue type for one ticket (contract §3)."""
    common = {"ticket_id": ticket_id, "centre": "SX-TTPVHCC"}
    return [
        {"event_id": f"{ticket_id}-1", "type": "ticket_issued", "occurred_at": iso(start),
         "service": "Hộ tịch", **common},
        {"event_id": f"{ticket_id}-2", "type": "ticket_called", "occurred_at": iso(start + 1200),
         "counter": "Quầy 2", **common},
        {"event_id": f"{ticket_id}-3", "type": "service_completed",
         "occurred_at": iso(start + 1500), "counter": "Quầy 2", "case_id": case_id, **common},
        {"event_id": f"{ticket_id}-4", "type": "ticket_abandoned",
         "occurred_at": iso(start + 1600), **common},
    ]


def test_the_stories_are_valid_and_cover_every_type() -> None:
    applicant = {"name": "Lê Thị Hạnh", "address": "Số 1", "phone": "0912345678",
                 "email": "hanh@x.vn"}
    events = case_story("SX-2026-000001", applicant, START) + ticket_story(
        "Q-1", "SX-2026-000001", START)
    assert {event["type"] for event in events} == CASE_EVENT_TYPES | QUEUE_EVENT_TYPES
    for event in events:
        decoded = decode_event(orjson.dumps(event))
        assert not isinstance(decoded, Rejection), (event, decoded)
        assert RULES.check(decoded) is None


# ---- nasty values ----------------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12,
)

BAD_INSTANTS = [
    "2026-03-02T09:00:00", "2026-03-02", "2026-03-02T09:00", "09:00:00+07:00", "",
    "2026-02-30T09:00:00+07:00", "2026-03-02T24:00:00+07:00", "2026-03-02T09:00:00+25:00",
    "2026-03-02T09:00:00+23:59", "2026-03-02T09:00:00-23:59", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00", "1949-12-31T23:59:59+07:00", "1950-01-01T00:00:00+07:00",
    "2199-12-31T23:59:59+07:00", "2200-01-01T00:00:00+07:00", "NaN", "Infinity", "-Infinity",
    "nan", "1e400", "now", "2026-03-02T09:00:00.123456789+07:00", "2026-03-02 09:00:00Z",
    "+002026-03-02T09:00:00+07:00", "２０２６-03-02T09:00:00+07:00",
]
# Hypothesis takes naive bounds, also for aware datetimes.
EARLIEST, LATEST = dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)  # noqa: DTZ001
bad_instants = st.one_of(
    st.sampled_from(BAD_INSTANTS),
    st.datetimes(min_value=EARLIEST, max_value=LATEST).map(lambda moment: moment.isoformat()),
    st.datetimes(min_value=EARLIEST, max_value=LATEST,
                 timezones=st.timezones() | st.just(ZONE)).map(lambda moment: moment.isoformat()),
    st.integers(-(2**70), 2**70),
    st.floats(),
)
# Placed in the JSON text as they are: not values orjson or json.dumps would write.
RAW_VALUES = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1" + b"0" * 400,
              b"[" * 3000 + b"]" * 3000, b"[" * 50 + b"]" * 50, b'"\\ud800"', b'"\\u0000"',
              b"\xff\xfe", b'"\xc3\x28"', b"undefined", b"0x10", b"01", b"-0", b"1e-400"]


@st.composite
def mutations(draw: Any) -> tuple[Any, ...]:
    """One change to one field (the field chosen by index among the event's keys) or to
    the message's bytes. Plain tuples, so that a failure can be kept with @example."""
    key = draw(st.integers(0, 20))
    return draw(st.one_of(
        st.just(("drop", key)),
        st.tuples(st.just("set"), st.just(key), json_values),
        st.tuples(st.just("set"), st.just(key), bad_instants),
        st.tuples(st.just("instant"), st.sampled_from(["occurred_at", "due_at", "new_due_at"]),
                  bad_instants),
        st.tuples(st.just("set"), st.just(key),
                  st.sampled_from([65, 129, 10_000, 300_000]).map(lambda n: "x" * n)),
        st.tuples(st.just("set"), st.just(key), st.text(min_size=1, max_size=40)),
        st.tuples(st.just("raw"), st.just(key), st.sampled_from(RAW_VALUES)),
        st.tuples(st.just("personal"), st.just(key), st.integers(0, 3)),
        st.tuples(st.just("applicant"), st.sampled_from(["name", "address", "phone", "email"]),
                  json_values),
        st.tuples(st.just("extra"), st.text(max_size=10), json_values),
        st.tuples(st.just("truncate"), st.integers(0, 400)),
        st.tuples(st.just("insert"), st.integers(0, 400), st.binary(min_size=1, max_size=6)),
        st.tuples(st.just("duplicate_key"), st.sampled_from(
            [b'"type":"opened"', b'"type":null', b'"case_id":7', b'"occurred_at":"x"'])),
    ))


def mutate(event: dict[str, Any], mutation: tuple[Any, ...],
           applicant: dict[str, str]) -> tuple[bytes, str | None]:
    """The message's bytes after `mutation`, and the field personal data was moved to."""
    event = json.loads(json.dumps(event))
    keys = sorted(event)
    op = mutation[0]
    moved_to = None
    raw_value = None
    if op == "drop":
        del event[keys[mutation[1] % len(keys)]]
    elif op == "set":
        event[keys[mutation[1] % len(keys)]] = mutation[2]
    elif op == "instant":
        event[mutation[1]] = mutation[2]
    elif op == "raw":
        event[keys[mutation[1] % len(keys)]] = "\x00raw\x00"
        raw_value = mutation[2]
    elif op == "personal":
        moved_to = keys[mutation[1] % len(keys)]
        event[moved_to] = personal(applicant)[mutation[2]]
    elif op == "applicant":
        event["applicant"] = {**applicant, mutation[1]: mutation[2]}
    elif op == "extra":
        event[mutation[1]] = mutation[2]
    # json.dumps writes big integers and (as non-standard tokens) NaN and Infinity;
    # lone surrogates come out as bytes that are not UTF-8.
    raw = json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if raw_value is not None:
        raw = raw.replace(b'"\\u0000raw\\u0000"', raw_value, 1)
    if op == "truncate":
        raw = raw[: mutation[1] % (len(raw) + 1)]
    elif op == "insert":
        at = mutation[1] % (len(raw) + 1)
        raw = raw[:at] + mutation[2] + raw[at:]
    elif op == "duplicate_key":
        raw = raw[:-1] + b"," + mutation[1] + b"}"
    return raw, moved_to


# ---- the decoder ------------------------------------------------------------------------------


def decoded_or_reason(raw: bytes | str, secrets: tuple[str, ...] | list[str] = ()) -> Any:
    """The decoder's answer, checked: an event, or a reason in plain words that repeats
    none of `secrets`."""
    result = decode_event(raw)
    if isinstance(result, Rejection):
        reason = result.reason
        assert isinstance(reason, str) and reason.strip(), result
        assert reason.isprintable() and len(reason) < 2000, reason
        assert "Input tag" not in reason and "pydantic" not in reason, reason
        for secret in secrets:
            assert secret not in reason, (secret, reason)
    else:
        assert result.type in CASE_EVENT_TYPES | QUEUE_EVENT_TYPES
    return result


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
@example(b"\xff\xfe")
@example(b"")
@example(b"null")
@example(b"[" * 100_000)
@example(b'{"type":"received","event_id":"\xff"}')
@example(b'{"type":null}')
@example(b'{"type":{"a":1}}')
@example(b'{"type":"nguyen.van.a@gmail.com","event_id":"x"}')
@example(b'{"type":"received","event_id":"e","case_id":"C","occurred_at":'
         b'"2026-03-02T09:00:00+07:00","procedure":"1.004363","handling_agency":"SX-STP",'
         b'"centre":"SX-TTPVHCC","channel":"online","fee":1e400}')
def test_any_bytes_give_an_event_or_a_reason(raw: bytes) -> None:
    decoded_or_reason(raw)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
@example("\ud800")
@example('{"type":"\udfff"}')
def test_any_text_gives_an_event_or_a_reason(text: str) -> None:
    decoded_or_reason(text)


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from(sorted(CASE_EVENT_TYPES | QUEUE_EVENT_TYPES)))
def test_any_json_value_gives_an_event_or_a_reason(value: Any, kind: str) -> None:
    decoded_or_reason(json.dumps(value).encode())
    if isinstance(value, dict):
        decoded_or_reason(json.dumps({**value, "type": kind}).encode())


def test_an_unknown_type_is_named_only_when_it_looks_like_one() -> None:
    assert decode_event(b'{"type":"opened"}') == Rejection("unknown event type 'opened'")
    for tag in ("Lê Thị Hạnh", "hanh.le@gmail.com", "0912345678"):
        reason = decode_event(orjson.dumps({"type": tag})).reason
        assert reason.startswith("unknown event type") and tag not in reason
    assert decode_event(b'{"type":null}') == Rejection("field 'type' is not a string")


def test_amounts_are_finite() -> None:
    for fee in (b"1e400", b'"Infinity"', b'"NaN"'):
        raw = (b'{"type":"paid","event_id":"e","case_id":"C","method":"online",'
               b'"occurred_at":"2026-03-02T09:00:00+07:00","amount":' + fee + b"}")
        assert "field 'amount'" in decode_event(raw).reason


# ---- mutated stories through the rules ---------------------------------------------------


def judge_case(state: CaseState, instants: list[float]) -> None:
    for now in instants:
        view = RULES.evaluate(state, now)
        judged = state
        if view is not None:
            judged, outputs = RULES.derive(state, view, now)
            for output in outputs:
                assert output.agency in AGENCY_CODES, output
            field = REFERENCE.procedures[view.procedure].field
            for _name, labels, value in case_measures(view, field, now):
                assert set(labels) <= AGENCY_CODES | FIELDS | LABEL_WORDS, labels
                assert math.isfinite(value)
        next_check = RULES.next_check(judged, view, now)
        assert next_check > now
        # What the worker writes to the table's changelog reads back as the same state.
        assert decode_entry(encode_entry(Entry(0, judged))).state == judged


def judge_ticket(state: TicketState, instants: list[float]) -> None:
    for now in instants:
        visit = QUEUE_RULES.evaluate(state, now)
        judged, outputs = QUEUE_RULES.derive(state, visit, now)
        for output in outputs:
            assert output.agency in AGENCY_CODES, output
        if visit is not None:
            for _name, labels, _value in visit_measures(visit):
                assert set(labels) <= AGENCY_CODES, labels
        assert QUEUE_RULES.next_check(judged, visit, now) > now
        assert decode_entry(encode_entry(Entry(0, judged))).state == judged


def feed_story(messages: list[bytes], secrets: list[str], moved_to: str | None) -> None:
    cases: dict[str, CaseState] = {}
    tickets: dict[str, TicketState] = {}
    for raw in messages:
        event = decoded_or_reason(raw, secrets)
        if isinstance(event, Rejection):
            continue
        reason = RULES.check(event)
        assert reason is None or (isinstance(reason, str) and reason.strip()), reason
        if reason is not None:
            if moved_to not in CODE_FIELDS:
                for secret in secrets:
                    assert secret not in reason, (secret, reason)
            continue
        if event.type in QUEUE_EVENT_TYPES:
            tickets[event.ticket_id], outputs = QUEUE_RULES.apply(tickets.get(event.ticket_id),
                                                                  event)
        else:
            cases[event.case_id], outputs = RULES.apply(cases.get(event.case_id), event)
        assert outputs == []
    for state in cases.values():
        judge_case(state, [*AS_OF, state.facts[-1].at, state.facts[0].at])
    for ticket in tickets.values():
        judge_ticket(ticket, [*AS_OF, ticket.facts[-1].at])


@settings(max_examples=350, deadline=None)
@given(
    applicant=applicants(),
    start=st.integers(0, 60 * 86400),
    kept=st.sets(st.integers(0, 16), min_size=1),
    chosen=st.integers(0, 16),
    mutation=mutations(),
)
@example(applicant={"name": "Lê Thị Hạnh", "address": "Số 1, đường Lê Lợi, tổ 2",
                    "phone": "0912345678", "email": "hanh.le1@gmail.com"},
         start=0, kept={0}, chosen=0,
         mutation=("instant", "occurred_at", "2199-12-31T23:59:59+07:00"))  # ran off the calendar
@example(applicant={"name": "Lê Thị Hạnh", "address": "Số 1, đường Lê Lợi, tổ 2",
                    "phone": "0912345678", "email": "hanh.le1@gmail.com"},
         start=0, kept={0, 3, 4}, chosen=4,
         mutation=("instant", "occurred_at", "2199-12-31T23:59:59+07:00"))  # a pause to 2199
@example(applicant={"name": "Lê Thị Hạnh", "address": "Số 1, đường Lê Lợi, tổ 2",
                    "phone": "0912345678", "email": "hanh.le1@gmail.com"},
         start=0, kept={0}, chosen=0, mutation=("raw", 9, b"1e400"))  # fee: inf became null
@example(applicant={"name": "Lê Thị Hạnh", "address": "Số 1, đường Lê Lợi, tổ 2",
                    "phone": "0912345678", "email": "hanh.le1@gmail.com"},
         start=0, kept={0, 1}, chosen=1, mutation=("personal", 9, 3))  # to_unit: an e-mail
@example(applicant={"name": "Lê Thị Hạnh", "address": "Số 1, đường Lê Lợi, tổ 2",
                    "phone": "0912345678", "email": "hanh.le1@gmail.com"},
         start=0, kept={13}, chosen=13, mutation=("personal", 0, 0))  # centre: a name
def test_mutated_events_never_crash_the_rules_nor_echo_personal_data(
    applicant: dict[str, str], start: int, kept: set[int], chosen: int, mutation: tuple[Any, ...]
) -> None:
    case_id, ticket_id = "SX-2026-004711", "Q-20260302-0042"
    story = case_story(case_id, applicant, START + start) + ticket_story(
        ticket_id, case_id, START + start)
    kept = {index % len(story) for index in kept}
    chosen = chosen % len(story)
    messages = []
    moved_to = None
    for index, event in enumerate(story):
        if index == chosen:
            raw, moved_to = mutate(event, mutation, applicant)
            messages.append(raw)
        elif index in kept:
            messages.append(orjson.dumps(event))
    feed_story(messages, personal(applicant), moved_to)


# ---- the CSV reference loaders -----------------------------------------------------------

CSV_FILES = sorted(path.name for path in SAMPLE_PROVINCE.glob("*.csv"))
NASTY_CELLS = [
    "", " ", "TRUE", "yes", "1", "-1", "-0", "0", "1e309", "nan", "inf", "-inf", "1e400",
    "99999999999999999999", "3651", "1e-300", "2026-02-30", "2026-13-01", "31/12/2026",
    "25:00", "7:30", "24:00", "07:30-", "07:00-07:01", "17:00-07:00", "a,b", '"', 'x"y', "\x00",
    "=1+1", "SX-STP", "1.004363", "working_days", "day_off", "province", "\ufeff", "x" * 200_000,
]
MESSAGE = re.compile(r"^[a-z_]+\.csv(, line \d+|: cannot be read)")


@st.composite
def csv_damage(draw: Any) -> tuple[Any, ...]:
    row, column = draw(st.integers(0, 60)), draw(st.integers(0, 12))
    return draw(st.one_of(
        st.tuples(st.just("cell"), st.just(row), st.just(column),
                  st.sampled_from(NASTY_CELLS) | st.text(max_size=12)),
        st.tuples(st.just("drop_column"), st.just(column)),
        st.tuples(st.just("duplicate_column"), st.just(column)),
        st.tuples(st.just("rename_column"), st.just(column), st.text(max_size=8)),
        st.tuples(st.just("duplicate_row"), st.just(row)),
        st.tuples(st.just("drop_row"), st.just(row)),
        st.tuples(st.just("extra_cells"), st.just(row), st.sampled_from(["", "x", ",,", " "])),
        st.tuples(st.just("short_row"), st.just(row)),
        st.just(("bom",)), st.just(("double_bom",)), st.just(("crlf",)), st.just(("delete",)),
        st.just(("header_only",)), st.just(("empty",)),
        st.tuples(st.just("insert"), st.integers(0, 5000),
                  st.sampled_from([b'"', b"\xff", b"\xc3", b"\x00", b"\r", b"\n", b",", b"\xe2\x80"])
                  | st.binary(min_size=1, max_size=4)),
        st.tuples(st.just("truncate"), st.integers(0, 5000)),
    ))


def damage(path: Path, change: tuple[Any, ...]) -> None:
    op = change[0]
    if op == "delete":
        path.unlink()
        return
    data = path.read_bytes()
    if op in ("insert", "truncate"):
        at = change[1] % (len(data) + 1)
        data = data[:at] + change[2] + data[at:] if op == "insert" else data[:at]
    elif op in ("bom", "double_bom"):
        data = b"\xef\xbb\xbf" * (1 if op == "bom" else 2) + data
    elif op == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif op == "empty":
        data = b""
    else:
        lines = data.decode().splitlines()
        header, rows = lines[0].split(","), lines[1:]
        if op == "header_only":
            rows = []
        elif op in ("drop_column", "duplicate_column", "rename_column"):
            at = change[1] % len(header)
            if op == "drop_column":
                del header[at]
            elif op == "duplicate_column":
                header.insert(at, header[at])
            else:
                header[at] = change[2].replace(",", "").replace("\n", "")
        elif rows:
            at = change[1] % len(rows)
            if op == "cell":
                # A cell as a spreadsheet would save it: quoted when it holds a comma or
                # a quote (the rows are re-read with csv to find the cells).
                cells = next(csv.reader([rows[at]]))
                cells[change[2] % len(cells)] = change[3]
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="").writerow(cells)
                rows[at] = buffer.getvalue()
            elif op == "duplicate_row":
                rows.insert(at, rows[at])
            elif op == "drop_row":
                del rows[at]
            elif op == "extra_cells":
                rows[at] += "," + change[2]
            elif op == "short_row":
                rows[at] = rows[at].rsplit(",", 1)[0]
        data = ("\n".join([",".join(header), *rows]) + "\n").encode("utf-8", "surrogatepass")
    path.write_bytes(data)


def judge_one_case_per_procedure(directory: Path) -> None:
    """A reference that loads can judge a case of each of its procedures."""
    reference = load_reference(directory)
    rules = CaseRules(reference)
    received = START
    for number, procedure in enumerate(reference.procedures.values()):
        agency = next(iter(reference.agencies.values()))
        event = decode_event(orjson.dumps({
            "event_id": f"r{number}", "type": "received", "case_id": f"C{number}",
            "occurred_at": iso(received), "procedure": procedure.code,
            "handling_agency": agency.code, "centre": agency.centre, "channel": "counter",
        }))
        assert rules.check(event) is None
        state, _ = rules.apply(None, event)
        for now in (received + 86400, received + 400 * 86400):
            view = rules.evaluate(state, now)
            assert view is not None
            rules.derive(state, view, now)
            rules.next_check(state, view, now)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CSV_FILES), csv_damage())
# Row 2 of the procedures is counted in working days, so its limit is used when judging.
@example("procedures.csv", ("cell", 2, 4, "nan"))  # int(nan) when judging
@example("procedures.csv", ("cell", 2, 4, "1e309"))  # int(inf) when judging
@example("procedures.csv", ("cell", 2, 4, "99999999999999999999"))  # ran off the calendar
@example("steps.csv", ("cell", 0, 1, "inf"))  # int(inf) in the loader
@example("steps.csv", ("cell", 0, 3, "1e308"))  # round(inf) in the loader
@example("agencies.csv", ("extra_cells", 0, "x"))  # a row longer than the header
@example("agencies.csv", ("insert", 51, b",,,,,,,x\n"))  # empty cells, then one too many
@example("agencies.csv", ("insert", 10, b"\xff"))  # not UTF-8 in the header
@example("targets.csv", ("cell", 0, 0, "x" * 200_000))  # over the csv module's field limit
@example("calendar.csv", ("insert", 60, b"\x00"))
def test_a_damaged_reference_file_loads_or_names_file_and_line(
    name: str, change: tuple[Any, ...]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder) / "province"
        shutil.copytree(SAMPLE_PROVINCE, directory)
        damage(directory / name, change)
        try:
            load_reference(directory)
        except ReferenceError as error:
            assert type(error) is ReferenceError
            assert MESSAGE.match(str(error)), str(error)
            return
        judge_one_case_per_procedure(directory)


def test_the_sample_province_judges_a_case_of_each_procedure() -> None:
    judge_one_case_per_procedure(SAMPLE_PROVINCE)


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf", "1e309", "3651"])
def test_a_limit_must_be_a_finite_number_of_at_most_ten_years(tmp_path: Path, cell: str) -> None:
    directory = tmp_path / "province"
    shutil.copytree(SAMPLE_PROVINCE, directory)
    damage(directory / "procedures.csv", ("cell", 0, 4, cell))
    with pytest.raises(ReferenceError, match=r"procedures.csv, line 2, column 'limit'"):
        load_reference(directory)
