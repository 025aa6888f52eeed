"""The notifier against a real broker, a real SMTP server (aiosmtpd) and a real
Alertmanager: who gets which e-mail, once."""

from __future__ import annotations

import datetime as dt
import io
import logging
import smtplib
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from docx import Document
from pydantic import SecretStr

from onestop.alerts.notifier import (
    REQUEST_TIMEOUT_SECONDS,
    WEBHOOK_MAX_BYTES,
    Notifier,
    mail_failure,
    serve,
)
from onestop.common.clock import parse_clock
from onestop.common.replay import Replay
from onestop.common.settings import Settings
from onestop.consumers.store import connect, upgrade
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.broker import free_port
from onestop.streams.ingest import ingest_lines
from tests.conftest import suite_secret
from tests.integration.conftest import Inbox, eventually, wait_processed
from tests.prometheus import DEPLOY, Server, binary

pytestmark = pytest.mark.integration

ZONE = dt.timezone(dt.timedelta(hours=7))
CLOCK = "fixed:2026-04-20T17:00:00+07:00"  # a Monday, after the digest hour
OFFICE = "vanphong@songxanh.gov.vn"
TOKEN = suite_secret("5f1c0e7a9b2d4c6e8f0a1b3c5d7e9f11")


@pytest.fixture
def notifier_settings(settings: Settings, inbox: tuple[Inbox, int], tmp_path: Path) -> Settings:
    port = free_port()
    return settings.model_copy(update={
        "smtp_port": inbox[1], "clock": CLOCK,
        "province_office_email": OFFICE, "operations_email": "vanhanh@songxanh.gov.vn",
        "database_url": f"sqlite:///{tmp_path / 'notify.db'}",
        "notifier_port": port, "webhook_token": SecretStr(TOKEN),
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


def http_status(url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
                ) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


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

        # The late notice carries the filled apology draft, and only it carries one.
        [attachment] = late_mail.iter_attachments()
        assert attachment.get_filename() == "LATE-1.docx"
        assert "apology draft attached: LATE-1.docx" in late_mail.get_body(
            ("plain",)).get_content()
        draft = Document(io.BytesIO(attachment.get_content()))
        text = "\n".join(p.text for p in draft.paragraphs)
        assert "Kính gửi: Trần Thị Bình" in text and "LATE-1" in text
        assert "15/04/2026" in text
        assert [m["Subject"] for m in messages.messages if m is not late_mail
                and list(m.iter_attachments())] == []
        # Nothing of it is served over HTTP, whatever the name guessed.
        for path in ("/drafts/LATE-1.docx", "/drafts/RISK-1.docx", "/LATE-1.docx"):
            assert http_status(f"http://127.0.0.1:{settings.notifier_port}{path}") == 404
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
    webhook_config = config["receivers"][0]["webhook_configs"][0]
    webhook_config["url"] = webhook
    token = folder / "webhook_token"
    token.write_text(TOKEN)
    webhook_config["http_config"]["authorization"]["credentials_file"] = str(token)
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
            "annotations": {"summary": "Tỷ lệ trước và đúng hạn của SX-SXD là 80% / "
                                       "early or on-time rate of SX-SXD is 80%"},
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


# -- attacks: what anyone who reaches the notifier's port may try -------------------------

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def alert_payload(fingerprint: str, summary: str = "early or on-time rate of SX-SXD is 80%") -> bytes:
    return orjson.dumps({"alerts": [{
        "status": "firing", "fingerprint": fingerprint, "startsAt": "2026-04-20T10:00:00Z",
        "labels": {"alertname": "OnestopAgencyOnTimeBelowTarget", "agency": "SX-SXD",
                   "audience": "agency"},
        "annotations": {"summary": summary},
    }]})


def metric(settings: Settings, series: str) -> float:
    url = f"http://127.0.0.1:{settings.notifier_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(series))


def raw_request(port: int, head: bytes) -> bytes:
    """What the notifier answers to `head` sent as it is (no body follows)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(head)
        return connection.recv(200)


def test_a_forged_webhook_call_sends_nothing(
    notifier_settings: Settings, inbox: tuple[Inbox, int]
) -> None:
    """The reproduction: attacker-written text sent to a head of agency from the official
    sender, by anyone reaching the port. Without the token: 401, nothing sent."""
    messages, _port = inbox
    settings = notifier_settings
    url = f"http://127.0.0.1:{settings.notifier_port}/alertmanager"
    forged = alert_payload("forged", "Please re-enter your credentials at http://evil.example")
    _notifier, close = run_notifier(settings, threading.Event())
    try:
        for authorization in (None, f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}",
                              TOKEN, "Bearer ", f"bearer{TOKEN}"):
            headers = {"Content-Type": "application/json"}
            if authorization is not None:
                headers["Authorization"] = authorization
            assert http_status(url, forged, headers) == 401, authorization
        assert messages.messages == []
        assert metric(settings, 'onestop_webhook_refused_total{reason="unauthenticated"}') == 7
        # The same call with the token is Alertmanager's, and goes through.
        assert http_status(url, alert_payload("real"), AUTH) == 200
        assert [m["To"] for m in messages.messages] == [head("SX-SXD")]
    finally:
        close()

    # A notifier given no token refuses everyone, an empty bearer included.
    open_settings = settings.model_copy(update={"webhook_token": SecretStr(""),
                                                "notifier_port": free_port()})
    _notifier, close = run_notifier(open_settings, threading.Event())
    try:
        url = f"http://127.0.0.1:{open_settings.notifier_port}/alertmanager"
        for authorization in ("Bearer ", "Bearer", f"Bearer {TOKEN}"):
            assert http_status(url, forged, {"Authorization": authorization}) == 401
        assert len(messages.messages) == 1
    finally:
        close()


def test_the_webhook_refuses_what_is_not_a_payload_and_goes_on(
    notifier_settings: Settings, inbox: tuple[Inbox, int]
) -> None:
    messages, _port = inbox
    settings = notifier_settings
    port = settings.notifier_port
    url = f"http://127.0.0.1:{port}/alertmanager"
    _notifier, close = run_notifier(settings, threading.Event())
    try:
        for body in (b"not json", b"[]", b"5", b'{"alerts": 5}', b'{"alerts": [{"status": 1}]}',
                     b'{"alerts": [{"status": "firing", "labels": ["agency"]}]}',
                     b'{"alerts": [7]}'):
            assert http_status(url, body, AUTH) == 400, body
        bearer = f"Authorization: Bearer {TOKEN}\r\n".encode()
        # Too large: refused before the body is read.
        too_large = raw_request(port, b"POST /alertmanager HTTP/1.1\r\nHost: x\r\n" + bearer
                                + f"Content-Length: {WEBHOOK_MAX_BYTES + 1}\r\n\r\n".encode())
        assert too_large.startswith(b"HTTP/1.0 413"), too_large
        no_length = raw_request(port, b"POST /alertmanager HTTP/1.1\r\nHost: x\r\n" + bearer
                                + b"\r\n")
        assert no_length.startswith(b"HTTP/1.0 411"), no_length
        # A caller that stops half-way is cut off, not waited for (raw_request's own
        # timeout, 15 s, fails the test).
        started = time.monotonic()
        assert raw_request(port, b"POST /alertmanager HTTP/1.1\r\nHost: x\r\n") == b""
        assert time.monotonic() - started >= REQUEST_TIMEOUT_SECONDS - 1
        assert metric(settings, 'onestop_webhook_refused_total{reason="malformed"}') == 8
        assert metric(settings, 'onestop_webhook_refused_total{reason="too_large"}') == 1
        # And the next real call is served.
        assert messages.messages == []
        assert http_status(url, alert_payload("after"), AUTH) == 200
        assert len(messages.messages) == 1
    finally:
        close()


def test_a_flood_of_webhook_calls_sends_at_most_the_limit(
    notifier_settings: Settings, inbox: tuple[Inbox, int]
) -> None:
    """The reproduction: one request sent 200 e-mails to one person in 1.6 s."""
    messages, _port = inbox
    settings = notifier_settings.model_copy(update={"mails_per_recipient_per_hour": 5})
    url = f"http://127.0.0.1:{settings.notifier_port}/alertmanager"
    _notifier, close = run_notifier(settings, threading.Event())
    try:
        statuses = [http_status(url, alert_payload(f"flood-{n}"), AUTH) for n in range(200)]
        assert statuses.count(200) == 5 and statuses.count(503) == 195, statuses
        assert len(messages.to(head("SX-SXD"))) == 5 and len(messages.messages) == 5
        assert metric(settings, 'onestop_notices_held_back_total{kind="alert"}') == 195
        assert metric(settings, 'onestop_notices_sent_total{kind="alert"}') == 5
    finally:
        close()
