"""The notifier against a real broker, a real SMTP server (aiosmtpd) and a real
Alertmanager: who gets which e-mail, once."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import smtplib
import threading
import time
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiosmtpd.controller import Controller
from docx import Document

from onestop.alerts.notifier import Notifier, mail_failure, serve
from onestop.common.clock import parse_clock
from onestop.common.replay import Replay
from onestop.common.settings import Settings
from onestop.consumers.store import connect, upgrade
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.broker import free_port
from onestop.streams.ingest import ingest_lines
from tests.integration.conftest import eventually, wait_processed
from tests.prometheus import DEPLOY, Server, binary

pytestmark = pytest.mark.integration

ZONE = dt.timezone(dt.timedelta(hours=7))
CLOCK = "fixed:2026-04-20T17:00:00+07:00"  # a Monday, after the digest hour
OFFICE = "vanphong@songxanh.gov.vn"


class Inbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def notifier_settings(settings: Settings, inbox: tuple[Inbox, int], tmp_path: Path) -> Settings:
    port = free_port()
    return settings.model_copy(update={
        "smtp_port": inbox[1], "clock": CLOCK, "drafts_dir": tmp_path / "drafts",
        "province_office_email": OFFICE, "operations_email": "vanhanh@songxanh.gov.vn",
        "database_url": f"sqlite:///{tmp_path / 'notify.db'}",
        "notifier_port": port, "public_url": f"http://127.0.0.1:{port}",
    })


def received(case_id: str, at: str, due: str, procedure: str, agency: str, centre: str,
             **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{case_id}-r", "type": "received", "case_id": case_id,
            "occurred_at": at, "procedure": procedure, "handling_agency": agency,
            "centre": centre, "channel": "counter", "due_at": due, **extra}


EVENTS = [
    # Due tomorrow morning: at risk now, at the Department of Justice.
    received("RISK-1", "2026-04-14T09:00:00+07:00", "2026-04-21T11:00:00+07:00",
             "1.004363", "SX-STP", "SX-TTPVHCC"),
    # Due last Wednesday, never processed, no apology: late, in Bến Đò ward.
    received("LATE-1", "2026-04-13T09:00:00+07:00", "2026-04-15T17:00:00+07:00",
             "1.001193", "SX-P-BENDO", "SX-P-BENDO-MC",
             applicant={"name": "Trần Thị Bình", "address": "12 Lê Lợi, Bến Đò"}),
    # Processed on time: nobody hears about it.
    received("DONE-1", "2026-04-13T09:00:00+07:00", "2026-04-15T17:00:00+07:00",
             "1.001193", "SX-P-BENDO", "SX-P-BENDO-MC"),
    {"event_id": "DONE-1-p", "type": "processed", "case_id": "DONE-1",
     "occurred_at": "2026-04-14T10:00:00+07:00"},
]


def head(code: str) -> str:
    return load_reference(SAMPLE_PROVINCE).agencies[code].head_email


def run_notifier(settings: Settings, stop: threading.Event) -> tuple[Notifier, Any]:
    engine = connect(settings.database_url)
    upgrade(engine)
    notifier = Notifier(settings, engine, CaseRules(load_reference(SAMPLE_PROVINCE)),
                        clock=parse_clock(settings.clock))
    server = serve(notifier, "127.0.0.1", settings.notifier_port)
    thread = threading.Thread(target=notifier.run, args=(stop,), daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(10)
        server.shutdown()
        server.server_close()
        notifier.close()
        engine.dispose()

    return notifier, close


def test_heads_hear_about_their_own_cases_once(
    notifier_settings: Settings, inbox: tuple[Inbox, int], start_worker: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    messages, _port = inbox
    settings = notifier_settings
    counts = ingest_lines(settings, [orjson.dumps(event) for event in EVENTS])
    start_worker(settings, clock=CLOCK).wait_ready()
    wait_processed(settings, counts.ends, timeout=60)
    # Who holds the late case now, by the rules themselves.
    replay = Replay.for_rules(CaseRules(load_reference(SAMPLE_PROVINCE)))
    for event in EVENTS:
        replay.feed(orjson.dumps(event))
    now = parse_clock(CLOCK).now()
    late_holder = replay.rules.evaluate(replay.cases["LATE-1"], now).holder
    late_head, risk_head = head(late_holder), head("SX-STP")
    assert late_head != risk_head

    notifier, close = run_notifier(settings, threading.Event())
    try:
        expected = 5  # at risk, late, escalation, and a digest for each of the two heads
        assert eventually(lambda: len(messages.messages) >= expected, timeout=40, every=0.5), [
            (m["To"], m["Subject"]) for m in messages.messages]
        time.sleep(2)  # nothing more comes
        subjects = sorted((m["To"], m["Subject"]) for m in messages.messages)
        assert len(subjects) == expected, subjects

        [risk_mail] = [m for m in messages.to(risk_head) if "sắp quá hạn" in m["Subject"]]
        assert "RISK-1" in risk_mail["Subject"] and "case at risk" in risk_mail["Subject"]
        [late_mail] = [m for m in messages.to(late_head) if "chưa có văn bản" in m["Subject"]]
        assert "LATE-1" in late_mail["Subject"]
        [escalated] = messages.to(OFFICE)
        assert "LATE-1" in escalated["Subject"] and late_holder in escalated["Subject"]
        # Each head hears only of their own agency's cases, in both parts of each e-mail.
        for message in messages.to(risk_head):
            body = message.get_body(("plain",)).get_content()
            assert "LATE-1" not in body and "DONE-1" not in body
            assert "RISK-1" in message.get_body(("html",)).get_content()
        for message in messages.to(late_head):
            body = message.get_body(("plain",)).get_content()
            assert "RISK-1" not in body and "DONE-1" not in body
        assert all("Trần Thị Bình" not in m.get_body(("plain",)).get_content()
                   for m in messages.messages)

        # The late notice links to a filled apology draft.
        plain = late_mail.get_body(("plain",)).get_content()
        link = plain.split("apology draft: ")[1].split()[0]
        with urllib.request.urlopen(link, timeout=5) as response:  # noqa: S310 - loopback
            draft = response.read()
        path = settings.drafts_dir / "fetched.docx"
        path.write_bytes(draft)
        text = "\n".join(p.text for p in Document(str(path)).paragraphs)
        assert "Kính gửi: Trần Thị Bình" in text and "LATE-1" in text
        assert "15/04/2026" in text
    finally:
        close()

    # Its log at info and above names kinds and agencies: no case, head or applicant.
    logged = [record.getMessage() for record in caplog.records
              if record.name.startswith("onestop") and record.levelno >= logging.INFO]
    assert any("notice sent for agency" in line for line in logged), logged
    secrets = ["RISK-1", "LATE-1", "DONE-1", "Trần Thị Bình", "12 Lê Lợi", late_head, risk_head,
               OFFICE]
    assert [(secret, line) for line in logged for secret in secrets if secret in line] == []

    # Started again, it reads every topic from the start: nothing is sent twice.
    before = len(messages.messages)
    again, close = run_notifier(settings, threading.Event())
    try:
        time.sleep(4)
        assert again.sent == 0 and len(messages.messages) == before
    finally:
        close()


def test_a_failure_to_send_is_logged_without_the_addresses_the_server_repeats() -> None:
    address = head("SX-STP")
    failures = [
        smtplib.SMTPRecipientsRefused({address: (550, f"5.1.1 <{address}>: unknown".encode())}),
        smtplib.SMTPDataError(554, f"5.7.1 <{address}>: rejected".encode()),
        smtplib.SMTPSenderRefused(553, b"no", address),
        smtplib.SMTPServerDisconnected(f"lost while sending to {address}"),
    ]
    for error in failures:
        assert address in str(error)
        assert address not in mail_failure(error) and type(error).__name__ in mail_failure(error)
    assert mail_failure(smtplib.SMTPDataError(554, b"x")) == "SMTPDataError 554"
    assert "Connection refused" in mail_failure(ConnectionRefusedError(111, "Connection refused"))


def start_alertmanager(folder: Path, webhook: str) -> Server:
    """Alertmanager with the repository's routing, pointed at the test's notifier, at
    any hour (office hours dropped) and repeating every two seconds."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    config["receivers"][0]["webhook_configs"][0]["url"] = webhook
    config["route"].update(group_wait="0s", group_interval="1s", repeat_interval="2s")
    for route in config["route"]["routes"]:
        route.pop("active_time_intervals", None)
        route["repeat_interval"] = "2s"
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    port = free_port()
    return Server(
        [binary("prometheus-alertmanager"),
         f"--config.file={path}", f"--storage.path={folder / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        port, "/-/ready", folder / "alertmanager.log",
    )


def test_alertmanager_reaches_the_head_of_the_agency_once(
    notifier_settings: Settings, inbox: tuple[Inbox, int], tmp_path: Path
) -> None:
    messages, _port = inbox
    settings = notifier_settings
    notifier, close = run_notifier(settings, threading.Event())
    calls: list[int] = []
    original = notifier.on_alertmanager
    notifier.on_alertmanager = lambda payload: calls.append(1) or original(payload)  # type: ignore[method-assign]
    alertmanager = None
    try:
        alertmanager = start_alertmanager(
            tmp_path, f"http://127.0.0.1:{settings.notifier_port}/alertmanager")
        starts = dt.datetime.now(dt.UTC).isoformat()
        alert = [{
            "labels": {"alertname": "OnestopAgencyOnTimeBelowTarget", "agency": "SX-SXD",
                       "severity": "warning", "audience": "agency"},
            "annotations": {"summary": "Tỷ lệ giải quyết đúng hạn của SX-SXD là 80% / "
                                       "on-time rate of SX-SXD is 80%"},
            "startsAt": starts,
        }]
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{alertmanager.url}/api/v2/alerts", data=orjson.dumps(alert),
            headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
        assert eventually(lambda: len(calls) >= 3, timeout=30, every=0.5), (
            "Alertmanager did not repeat the alert")
        [mail] = messages.messages
        assert mail["To"] == head("SX-SXD")
        assert "OnestopAgencyOnTimeBelowTarget" in mail["Subject"]
        assert "80%" in mail.get_body(("plain",)).get_content()
    finally:
        if alertmanager is not None:
            alertmanager.stop()
        close()
