"""`onestop notify`: tells heads of agencies, personally and in time, about their cases.

It reads the derived-events and alerts topics, and the case changelog for the cases'
states (the applicant's name for the apology draft lives only there). For each notice
it looks up the responsible agency's head in the reference data and sends an e-mail
(plain text and HTML) and, when set, a webhook post. It also answers Alertmanager's
webhook and serves the apology drafts its e-mails link to.

Every notice is written to the `notifications` table once sent, keyed by the derived
event (or alert, or digest) and recipient: read again after a restart, or repeated by
Alertmanager, it is not sent twice. The topics are read from the start at each start
(the states are needed anyway); the table makes that harmless. A notice is only sent
when it still holds: a case already finished is not warned about.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import smtplib
import threading
import time
import urllib.request
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, insert, select

from onestop.alerts import messages
from onestop.alerts.apology import draft_for, write_docx
from onestop.alerts.messages import Notice
from onestop.common.clock import Clock, parse_clock
from onestop.common.codec import decode_entry
from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.consumers.schema import notifications
from onestop.models.case import CaseRules, CaseState, CaseView

log = logging.getLogger("onestop.notify")

# A notifier whose reading loop has not gone round for this long is reported unhealthy.
HEALTHY_WITHIN_SECONDS = 120.0
POLL_RECORDS = 2000


class Mailer:
    """SMTP, and the optional webhook."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, notice: Notice, recipient: str) -> None:
        settings = self.settings
        message = EmailMessage()
        message["From"] = settings.mail_from
        message["To"] = recipient
        message["Subject"] = notice.subject
        message.set_content(notice.text)
        message.add_alternative(notice.html, subtype="html")
        context = settings.smtp_tls_context()
        connection = (
            smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=20, context=context)
            if settings.smtp_implicit_tls
            else smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20)
        )
        with connection as smtp:
            if settings.smtp_starttls and not settings.smtp_implicit_tls:
                smtp.starttls(context=context)  # the certificate checked, not only encrypted
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
        if settings.notify_webhook_url:
            body = orjson.dumps({"text": f"{notice.subject}\n{notice.text}",
                                 "kind": notice.kind, "agency": notice.agency})
            request = urllib.request.Request(  # noqa: S310 - the operator's own URL
                settings.notify_webhook_url, data=body,
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=20):  # noqa: S310
                pass


def mail_failure(error: OSError) -> str:
    """A failure to send, for the log: its kind and SMTP code. Never the server's words,
    which repeat the recipients' addresses (a head's e-mail is not for the log)."""
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{type(error).__name__} {error.smtp_code}"
    if isinstance(error, smtplib.SMTPException):
        return type(error).__name__
    return f"{type(error).__name__}: {error}"


def safe_name(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", case_id) + ".docx"


class Notifier:
    def __init__(self, settings: Settings, engine: Engine, rules: CaseRules,
                 mailer: Mailer | None = None, clock: Clock | None = None) -> None:
        self.settings, self.engine, self.rules = settings, engine, rules
        self.reference, self.calendar = rules.reference, rules.calendar
        self.mailer = mailer or Mailer(settings)
        self.clock = clock or parse_clock(settings.clock)
        self.lock = threading.Lock()
        self.states: dict[str, bytes] = {}  # case id → changelog value, decoded on use
        self.waiting: list[dict[str, Any]] = []  # derived events whose case is not known yet
        self.missing_since: dict[str, float] = {}  # case id → when its apology went missing
        self.last_poll = time.monotonic()
        self.digests_done: dt.date | None = None  # the day whose digests have all gone out
        topics = topics_for(settings)
        self.changelog = topics.case_changelog.name
        self.event_topics = (topics.derived_events.name, topics.alerts.name)
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers, group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            client_id=f"{settings.app_id}-notifier", **settings.kafka_options(),
        )
        parts = [TopicPartition(topic, partition)
                 for topic in (self.changelog, *self.event_topics)
                 for partition in sorted(self.consumer.partitions_for_topic(topic) or ())]
        self.consumer.assign(parts)
        self.consumer.seek_to_beginning(*parts)
        self.sent = 0

    # -- ledger --------------------------------------------------------------------
    def _already_sent(self, key: str, recipient: str) -> bool:
        with self.engine.connect() as connection:
            found = connection.execute(
                select(notifications.c.key).where(
                    notifications.c.key == key, notifications.c.recipient == recipient)
            ).first()
        return found is not None

    def deliver(self, notice: Notice) -> int:
        """Send `notice` to each recipient not yet sent it; the number sent."""
        sent = 0
        for recipient in notice.recipients:
            if not recipient or self._already_sent(notice.key, recipient):
                continue
            self.mailer.send(notice, recipient)
            with self.engine.begin() as connection:
                connection.execute(insert(notifications).values(
                    key=notice.key, recipient=recipient, kind=notice.kind, agency=notice.agency,
                    case_id=notice.case_id, subject=notice.subject,
                    sent_at=self.calendar.isoformat(self.clock.now()),
                ))
            log.info("onestop: %s notice sent for agency %s", notice.kind, notice.agency)
            sent += 1
        self.sent += sent
        return sent

    # -- cases ---------------------------------------------------------------------
    def view(self, case_id: str, now: float) -> CaseView | None:
        raw = self.states.get(case_id)
        if raw is None:
            return None
        state: CaseState = decode_entry(raw).state
        return self.rules.evaluate(state, now)

    def draft_link(self, view: CaseView, now: float) -> str:
        today = self.calendar.local_date(now)
        draft = draft_for(view, self.reference, self.calendar,
                          self.settings.apology_extension_days, today)
        name = safe_name(view.case_id)
        write_docx(draft, self.settings.drafts_dir / name, today)
        return f"{self.settings.public_url.rstrip('/')}/drafts/{name}"

    def on_derived(self, event: dict[str, Any], now: float) -> bool:
        """Act on one derived event; False when its case's state has not arrived yet."""
        kind, case_id = event["type"], event.get("case_id") or ""
        if kind not in ("case_at_risk", "apology_required", "apology_missing"):
            return True
        view = self.view(case_id, now)
        if view is None:
            return False
        agency = self.reference.agencies.get(view.holder) or self.reference.agencies.get(
            view.handling_agency)
        if agency is None:
            return True
        if kind == "case_at_risk":
            if view.at_risk(now):
                self.deliver(messages.at_risk(event["event_id"], agency, view, self.reference,
                                              self.calendar))
        elif view.apology == "missing":
            if kind == "apology_missing":
                self.missing_since.setdefault(case_id, view.due_at)
            elif not self._already_sent(event["event_id"], agency.head_email):
                # Checked before drafting: a restart re-reads every event, and the drafts
                # of notices already sent need not be written again.
                self.deliver(messages.late(event["event_id"], agency, view, self.reference,
                                           self.calendar, self.draft_link(view, now)))
        return True

    def escalate(self, now: float) -> None:
        office, days = self.settings.province_office_email, self.settings.escalate_after_days
        if not office:
            return
        today = self.calendar.local_date(now)
        for case_id, since in list(self.missing_since.items()):
            if self.calendar.add_working_days(self.calendar.local_date(since), days) > today:
                continue
            view = self.view(case_id, now)
            if view is not None and view.apology == "missing":
                agency = self.reference.agencies.get(view.holder) or self.reference.agencies[
                    view.handling_agency]
                self.deliver(messages.escalation(f"escalation:{case_id}", office, agency, view,
                                                 self.reference, self.calendar, days))
            del self.missing_since[case_id]

    def digests(self, now: float) -> None:
        """Once a day from `digest_hour`: each head's open cases at risk or overdue."""
        local = self.calendar.to_datetime(now)
        if (local.date() == self.digests_done or local.hour < self.settings.digest_hour
                or not self.calendar.is_working_day(local.date())):
            return
        by_agency: dict[str, list[CaseView]] = {}
        for case_id in self.states:
            view = self.view(case_id, now)
            if view is None or view.status != "open":
                continue
            if view.overdue or view.at_risk(now):
                by_agency.setdefault(view.holder, []).append(view)
        for code, views in sorted(by_agency.items()):
            agency = self.reference.agencies.get(code)
            if agency is not None:
                key = f"digest:{code}:{local.date().isoformat()}"
                self.deliver(messages.digest(key, agency, local.date(), views, now,
                                             self.reference, self.calendar))
        # Not before every digest went out: a failed one is tried again at the next poll.
        self.digests_done = local.date()

    # -- Alertmanager ----------------------------------------------------------------
    def on_alertmanager(self, payload: dict[str, Any]) -> int:
        sent = 0
        with self.lock:
            for alert in payload.get("alerts", []):
                if alert.get("status") != "firing":
                    continue
                labels = alert.get("labels", {})
                agency = self.reference.agencies.get(
                    labels.get("agency") or labels.get("centre") or "")
                recipient = agency.head_email if agency else self.settings.operations_email
                key = f"alert:{alert.get('fingerprint')}:{alert.get('startsAt')}"
                sent += self.deliver(messages.alert(key, recipient, alert))
        return sent

    # -- the loop ----------------------------------------------------------------------
    def poll_once(self, timeout_ms: int = 500) -> None:
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=POLL_RECORDS)
        events: list[dict[str, Any]] = []
        for records in polled.values():
            for record in records:
                if record.topic == self.changelog:
                    key = orjson.loads(record.key)
                    if record.value is None:
                        self.states.pop(key, None)
                    else:
                        self.states[key] = record.value
                else:
                    try:
                        events.append(orjson.loads(record.value))
                    except orjson.JSONDecodeError:
                        log.warning("onestop: an unreadable record on %s at offset %s",
                                    record.topic, record.offset)
        now = self.clock.now()
        with self.lock:
            waiting, self.waiting = self.waiting + events, []
            for event in waiting:
                try:
                    done = self.on_derived(event, now)
                except (OSError, smtplib.SMTPException) as error:
                    # Kept for the next poll: the ledger sends it once when mail is back.
                    log.warning("onestop: cannot send e-mail now (%s); will retry",
                                mail_failure(error))
                    log.debug("onestop: the e-mail failure in full: %r", error)
                    done = False
                if not done:
                    self.waiting.append(event)
            if sum(len(records) for records in polled.values()) == POLL_RECORDS:
                # Still catching up (at start): digests and escalations wait until every
                # case's state is known.
                return
            try:
                self.escalate(now)
                self.digests(now)
            except (OSError, smtplib.SMTPException) as error:
                log.warning("onestop: cannot send e-mail now (%s); will retry",
                            mail_failure(error))
                log.debug("onestop: the e-mail failure in full: %r", error)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll_once()
            self.last_poll = time.monotonic()

    def healthy(self) -> bool:
        """The reading loop went round recently (the container's health check)."""
        return time.monotonic() - self.last_poll < HEALTHY_WITHIN_SECONDS

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def serve(notifier: Notifier, host: str, port: int) -> ThreadingHTTPServer:
    """POST /alertmanager (Alertmanager's webhook) and GET /drafts/<file>, on a thread."""
    drafts = notifier.settings.drafts_dir

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            if self.path.rstrip("/") != "/alertmanager":
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                payload = orjson.loads(self.rfile.read(length))
                notifier.on_alertmanager(payload)
            except (orjson.JSONDecodeError, AttributeError) as error:
                self.send_error(400, f"not an Alertmanager webhook payload: {error}")
                return
            except (OSError, smtplib.SMTPException) as error:
                # Alertmanager retries a failed delivery; the ledger keeps it to one e-mail.
                self.send_error(503, f"cannot send e-mail now: {mail_failure(error)}")
                return
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/healthz":
                healthy = notifier.healthy()
                body = b"ok\n" if healthy else b"the notifier has not read its topics lately\n"
                self.send_response(200 if healthy else 503)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            name = self.path.removeprefix("/drafts/")
            path = drafts / name
            if name == self.path or "/" in name or not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.openxmlformats-officedocument."
                             "wordprocessingml.document")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass  # requests name drafts, which name cases: not for the log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="notifier-http", daemon=True).start()
    return server
