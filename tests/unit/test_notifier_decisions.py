"""The notifier's decisions without a broker or a mail server: its reader, mailer and
clocks are fakes (Kafka Streams' TopologyTestDriver idea). The states and derived events
it reads are the rules' own, from a replay of the same events; the ledger is SQLite.

The real-server tests (tests/integration/test_notifier.py) stay: these run in a second
and move the clock where the real ones cannot."""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from onestop.alerts.messages import Notice
from onestop.alerts.notifier import Notifier
from onestop.common.codec import Entry, encode_entry
from onestop.common.replay import Replay, derived_json
from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.consumers.store import connect, upgrade
from onestop.models.case import CaseRules, CaseState
from onestop.models.facts import Fact
from onestop.models.reference import SAMPLE_PROVINCE, load_reference

ZONE = dt.timezone(dt.timedelta(hours=7))
OFFICE = "vanphong@songxanh.gov.vn"
RULES = CaseRules(load_reference(SAMPLE_PROVINCE))
Record = namedtuple("Record", "topic key value offset")


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


def received(case_id: str, when: str, due: str, procedure: str, agency: str,
             centre: str) -> dict[str, Any]:
    return {"event_id": f"{case_id}-r", "type": "received", "case_id": case_id,
            "occurred_at": f"{when}+07:00", "procedure": procedure, "handling_agency": agency,
            "centre": centre, "channel": "counter", "due_at": f"{due}+07:00",
            "applicant": {"name": "Trần Thị Bình", "address": "12 Lê Lợi"}}


EVENTS = [
    # Due tomorrow morning: at risk on Monday 20 April, at the Department of Justice.
    received("RISK-1", "2026-04-14T09:00:00", "2026-04-21T11:00:00", "1.004363", "SX-STP",
             "SX-TTPVHCC"),
    # Due Wednesday 15 April, never processed, no apology: late in Bến Đò ward.
    received("LATE-1", "2026-04-13T09:00:00", "2026-04-15T17:00:00", "1.001193",
             "SX-P-BENDO", "SX-P-BENDO-MC"),
]


@dataclass
class Moments:
    """The pipeline's clock and the monotonic clock, both moved by the test."""

    now: float
    elapsed: float = 0.0

    def wall(self) -> Any:
        moments = self

        class Clock:
            def now(self) -> float:
                return moments.now

        return Clock()

    def monotonic(self) -> float:
        return self.elapsed


@dataclass
class FakeReader:
    """A consumer whose polls return the records given to it, once."""

    waiting: list[Record] = field(default_factory=list)
    offset: int = 0

    def give(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.offset += 1
        self.waiting.append(Record(topic, key, value, self.offset))

    def poll(self, timeout_ms: int = 0, max_records: int = 0) -> dict[Any, list[Record]]:
        records, self.waiting = self.waiting, []
        return {("topic", 0): records} if records else {}

    def close(self, autocommit: bool = False) -> None:
        pass


@dataclass
class FakeMailer:
    sent: list[tuple[str, Notice]] = field(default_factory=list)
    down: bool = False
    tries: int = 0

    def send(self, notice: Notice, recipient: str) -> None:
        self.tries += 1
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        self.sent.append((recipient, notice))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                    province_office_email=OFFICE, escalate_after_days=2, digest_hour=8)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Any]:
    made = connect(settings.database_url)
    upgrade(made)
    yield made
    made.dispose()


def feed(reader: FakeReader, settings: Settings, events: list[dict[str, Any]],
         now: float) -> Replay:
    """The changelog records and derived events the worker would have written by `now`."""
    replay = Replay.for_rules(RULES, collect_derived=True)
    list(replay.feed_lines(orjson.dumps(event) for event in events))
    replay.report(now)  # judges every case up to now, collecting its derived events
    topics = topics_for(settings)
    for case_id, state in replay.cases.items():
        reader.give(topics.case_changelog.name, orjson.dumps(case_id),
                    encode_entry(Entry(0, state)))
    for event in replay.derived:
        reader.give(topics.derived_events.name, event.case_id.encode(),
                    orjson.dumps(derived_json(event, RULES.calendar.isoformat)))
    return replay


def head(code: str) -> str:
    return RULES.reference.agencies[code].head_email


def notifier_for(settings: Settings, engine: Any, moments: Moments, reader: FakeReader,
                 mailer: FakeMailer) -> Notifier:
    return Notifier(settings, engine, RULES, mailer=mailer,  # type: ignore[arg-type]
                    clock=moments.wall(), consumer=reader, monotonic=moments.monotonic)


def test_who_hears_what_once_and_the_next_morning_s_digests(settings: Settings,
                                                             engine: Any) -> None:
    moments = Moments(at("2026-04-20T17:00:00"))
    reader, mailer = FakeReader(), FakeMailer()
    replay = feed(reader, settings, EVENTS, moments.now)
    holder = RULES.evaluate(replay.cases["LATE-1"], moments.now).holder
    notifier = notifier_for(settings, engine, moments, reader, mailer)
    notifier.poll_once()

    sent = sorted((recipient, notice.kind) for recipient, notice in mailer.sent)
    assert sent == sorted([(head("SX-STP"), "at_risk"), (head(holder), "late"),
                           (OFFICE, "escalation"), (head("SX-STP"), "digest"),
                           (head(holder), "digest")])
    [late] = [notice for _recipient, notice in mailer.sent if notice.kind == "late"]
    assert late.draft is not None and late.draft.name == "LATE-1.docx"
    assert all(notice.draft is None for _recipient, notice in mailer.sent if notice is not late)

    # Polled again, or read again by a new notifier (a restart): nothing twice.
    notifier.poll_once()
    again = notifier_for(settings, engine, moments, reader, mailer)
    feed(reader, settings, EVENTS, moments.now)
    again.poll_once()
    assert len(mailer.sent) == 5

    # The next working day: no digest before 08:00, each head's at 08:00.
    moments.now = at("2026-04-21T07:59:00")
    notifier.poll_once()
    assert len(mailer.sent) == 5
    moments.now = at("2026-04-21T08:00:00")
    notifier.poll_once()
    assert sorted(notice.kind for _recipient, notice in mailer.sent[5:]) == ["digest", "digest"]


def test_a_case_finished_before_its_warning_is_acted_on_gets_none(settings: Settings,
                                                                   engine: Any) -> None:
    moments = Moments(at("2026-04-20T17:00:00"))
    reader, mailer = FakeReader(), FakeMailer()
    processed = {"event_id": "RISK-1-p", "type": "processed", "case_id": "RISK-1",
                 "occurred_at": "2026-04-20T16:30:00+07:00"}
    # The worker raised case_at_risk at 07:30, then the case was processed at 16:30.
    feed(reader, settings, EVENTS[:1], at("2026-04-20T08:00:00"))
    reader.waiting = [record for record in reader.waiting if b"case_at_risk" in
                      (record.value or b"")]
    feed(reader, settings, [*EVENTS[:1], processed], moments.now)
    notifier_for(settings, engine, moments, reader, mailer).poll_once()
    assert [notice.kind for _recipient, notice in mailer.sent] == []


def test_with_mail_down_each_notice_is_tried_again_later_and_later(settings: Settings,
                                                                    engine: Any) -> None:
    moments = Moments(at("2026-04-20T17:00:00"))
    reader, mailer = FakeReader(), FakeMailer(down=True)
    feed(reader, settings, EVENTS, moments.now)
    notifier = notifier_for(settings, engine, moments, reader, mailer)
    notifier.poll_once()
    assert mailer.tries == 5  # each notice once
    for _ in range(20):  # polls within the first 10 seconds try nothing
        moments.elapsed += 0.4
        notifier.poll_once()
    assert mailer.tries == 5
    moments.elapsed = 10.5  # the first retry
    notifier.poll_once()
    assert mailer.tries == 10
    moments.elapsed = 25.0  # the second is 20 s after the first: not yet
    notifier.poll_once()
    assert mailer.tries == 10
    mailer.down = False
    moments.elapsed = 31.0
    notifier.poll_once()
    assert mailer.tries == 15 and len(mailer.sent) == 5


def test_one_address_gets_at_most_its_hourly_share(settings: Settings, engine: Any) -> None:
    """Two notices and a digest for the Department of Justice's head with a limit of two
    an hour: the third waits for the hour to pass, then goes."""
    limited = settings.model_copy(update={"mails_per_recipient_per_hour": 2,
                                          "province_office_email": ""})
    moments = Moments(at("2026-04-20T17:00:00"))
    reader, mailer = FakeReader(), FakeMailer()
    second = received("RISK-2", "2026-04-14T10:00:00", "2026-04-21T11:00:00", "1.004363",
                      "SX-STP", "SX-TTPVHCC")
    feed(reader, limited, [EVENTS[0], second], moments.now)
    notifier = notifier_for(limited, engine, moments, reader, mailer)
    notifier.poll_once()
    to_head = [notice.kind for recipient, notice in mailer.sent if recipient == head("SX-STP")]
    assert len(to_head) == 2 and notifier.metrics.held_back.labels("digest")._value.get() >= 1
    moments.elapsed = 1800
    notifier.poll_once()
    assert len(mailer.sent) == 2
    moments.elapsed = 3601
    notifier.poll_once()
    assert sorted(notice.kind for _recipient, notice in mailer.sent) == [
        "at_risk", "at_risk", "digest"]


def test_an_archived_case_is_dropped_and_its_late_facts_are_not_kept(settings: Settings,
                                                                       engine: Any) -> None:
    """The worker archives a settled case (a tombstone), then answers a late event for it
    with a state of the late fact alone (its tombstone may come in a later poll). The
    notifier forgets the case, keeps none of its derived events waiting for a state that
    will not come, and sends nothing about it. (LATE-1 would not be settled yet: the
    mechanism is what is tested.) A state with a receipt is a case again (`onestop
    reprocess` rebuilds the changelog)."""
    moments = Moments(at("2026-04-20T17:00:00"))
    reader, mailer = FakeReader(), FakeMailer()
    feed(reader, settings, EVENTS, moments.now)
    changelog = topics_for(settings).case_changelog.name
    erased = CaseState("LATE-1", (Fact(moments.now, "LATE-1-e", "applicant_erased", None),))
    reader.give(changelog, b'"LATE-1"', None)
    reader.give(changelog, b'"LATE-1"', encode_entry(Entry(0, erased)))
    notifier = notifier_for(settings, engine, moments, reader, mailer)
    notifier.poll_once()

    assert "LATE-1" not in notifier.states and notifier.waiting == []
    assert sorted((recipient, notice.kind) for recipient, notice in mailer.sent) == [
        (head("SX-STP"), "at_risk"), (head("SX-STP"), "digest")]

    again = feed(reader, settings, EVENTS[1:], moments.now)
    notifier.poll_once()
    assert notifier.states["LATE-1"] == encode_entry(Entry(0, again.cases["LATE-1"]))


def test_archived_ids_are_forgotten_after_the_archive_window(settings: Settings,
                                                             engine: Any) -> None:
    """The ids of archived cases stay only for the archive window: the notifier's memory
    is bounded by one window's cases, as the worker's."""
    moments = Moments(at("2026-04-20T17:00:00"))
    reader, mailer = FakeReader(), FakeMailer()
    changelog = topics_for(settings).case_changelog.name
    notifier = notifier_for(settings, engine, moments, reader, mailer)
    reader.give(changelog, b'"OLD-1"', None)
    notifier.poll_once()
    moments.now += settings.archive_after_days * 86_400 - 60
    reader.give(changelog, b'"OLD-2"', None)
    notifier.poll_once()
    assert list(notifier.archived) == ["OLD-1", "OLD-2"]
    moments.now += 120
    notifier.poll_once()
    assert list(notifier.archived) == ["OLD-2"]
