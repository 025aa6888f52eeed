"""`onestop notify`: tells heads of agencies, personally and in time, about their cases.

It reads the derived-events and alerts topics, and the case changelog for the cases'
states (the applicant's name for the apology draft lives only there). For each notice
it looks up the responsible agency's head in the reference data and sends an e-mail
(plain text and HTML; a late case's e-mail carries the filled apology draft as an
attachment) and, when set, a webhook post. It also answers Alertmanager's webhook, for
callers that present the bearer token (`ONESTOP_WEBHOOK_TOKEN`). It serves no personal
data over HTTP: the drafts exist only in the e-mails to the heads who must sign them.

Every notice is written to the `notifications` table once sent, keyed by the derived
event (or alert, or digest) and recipient: read again after a restart, or repeated by
Alertmanager, it is not sent twice. The topics are read from the start at each start
(the states are needed anyway); the table makes that harmless. A notice is only sent
when it still holds: a case already finished is not warned about.

No one's mailbox can be flooded, by a bug or by whoever reaches the webhook: at most
`mails_per_recipient_per_hour` e-mails go to one address in any hour; the rest are held
back (logged, counted) and sent when the hour allows. A notice whose sending failed is
tried again later and later (`Retries`), not at every poll.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
import smtplib
import threading
import time
import urllib.request
from collections import defaultdict, deque
from collections.abc import Callable
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, insert, select

from onestop.alerts import messages
from onestop.alerts.apology import DOCX_TYPE, draft_docx, draft_for
from onestop.alerts.messages import Attachment, Notice
from onestop.common.clock import Clock, parse_clock
from onestop.common.codec import decode_entry
from onestop.common.settings import Settings
from onestop.common.topics import topics_for
from onestop.consumers.schema import notifications
from onestop.models.case import CaseRules, CaseState, CaseView, procedure_of

log = logging.getLogger("onestop.notify")
DAY_SECONDS = 86_400.0

# A notifier whose reading loop has not gone round for this long is reported unhealthy.
HEALTHY_WITHIN_SECONDS = 120.0
POLL_RECORDS = 2000
# A notice whose sending failed waits this long, doubled after each failure up to the most.
FIRST_RETRY_SECONDS, LAST_RETRY_SECONDS = 10.0, 600.0
# Alertmanager's payloads are a few kB per alert; anything this large is not one.
WEBHOOK_MAX_BYTES = 1 << 20
# A caller that sends nothing for this long is cut off (one slow client holds a thread).
REQUEST_TIMEOUT_SECONDS = 10.0


class HeldBack(Exception):
    """A notice not sent now: its recipient had their hour's share of e-mails."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"held back for {wait:.0f} s")
        self.wait = wait


class RecipientLimit:
    """At most `per_hour` e-mails to one address in any sliding hour (monotonic time)."""

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self.sent: defaultdict[str, deque[float]] = defaultdict(deque)

    def wait(self, recipient: str, now: float) -> float:
        """0 when an e-mail may go to `recipient` now (and it is counted), otherwise the
        seconds until one may."""
        times = self.sent[recipient]
        while times and times[0] <= now - 3600:
            times.popleft()
        if len(times) >= self.per_hour:
            return times[0] + 3600 - now
        times.append(now)
        return 0.0

    def give_back(self, recipient: str) -> None:
        """The last e-mail counted for `recipient` did not go: it does not use the hour."""
        times = self.sent.get(recipient)
        if times:
            times.pop()


class Retries:
    """When each notice (by key) may be tried again after failing or being held back."""

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.not_before: dict[str, float] = {}

    def due(self, key: str, now: float) -> bool:
        return self.not_before.get(key, 0.0) <= now

    def failed(self, key: str, now: float) -> float:
        """Count a failure; the seconds until the next try."""
        failures = self.failures[key] = self.failures.get(key, 0) + 1
        delay = min(FIRST_RETRY_SECONDS * 2 ** (failures - 1), LAST_RETRY_SECONDS)
        self.not_before[key] = now + delay
        return delay

    def hold(self, key: str, until: float) -> None:
        self.not_before[key] = until

    def forget(self, key: str) -> None:
        self.failures.pop(key, None)
        self.not_before.pop(key, None)


class NotifierMetrics:
    """The notifier's counters, on a registry of its own (served at /metrics)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sent = Counter("onestop_notices_sent", "E-mail đã gửi / e-mails sent",
                            ["kind"], registry=self.registry)
        self.held_back = Counter(
            "onestop_notices_held_back", "E-mail tạm giữ vì vượt giới hạn mỗi người nhận / "
            "e-mails held back by the per-recipient limit", ["kind"], registry=self.registry)
        self.failures = Counter("onestop_mail_failures", "Lần gửi e-mail lỗi (sẽ gửi lại) / "
                                "failed attempts to send an e-mail (tried again later)",
                                ["kind"], registry=self.registry)
        self.refused = Counter(
            "onestop_webhook_refused", "Lời gọi webhook bị từ chối / webhook calls refused "
            "(reason: unauthenticated, too_large, malformed)", ["reason"],
            registry=self.registry)


class Alert(BaseModel):
    """One alert of Alertmanager's webhook payload (the fields the notifier reads)."""

    status: str
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    startsAt: str = ""  # noqa: N815 - Alertmanager's name
    fingerprint: str = ""


class AlertmanagerPayload(BaseModel):
    alerts: list[Alert]


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
        if notice.draft is not None:
            maintype, subtype = notice.draft.content_type.split("/")
            message.add_attachment(notice.draft.content, maintype=maintype, subtype=subtype,
                                   filename=notice.draft.name)
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
            self.post(notice)

    def post(self, notice: Notice) -> None:
        """The notice to the chat webhook too, as a courtesy: the e-mail went out, so a
        failure here is logged, not retried (a retry would e-mail the head again)."""
        body = orjson.dumps({"text": f"{notice.subject}\n{notice.text}",
                             "kind": notice.kind, "agency": notice.agency})
        request = urllib.request.Request(  # noqa: S310 - the operator's own URL
            self.settings.notify_webhook_url, data=body,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=20):  # noqa: S310
                pass
        except OSError as error:
            log.warning("onestop: the %s notice was e-mailed but not posted to the chat "
                        "webhook (%s)", notice.kind, mail_failure(error))


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


def open_consumer(settings: Settings) -> KafkaConsumer:
    """The notifier's reader: the case changelog, the derived-events and the alerts
    topics, every partition from its start (no consumer group: the ledger makes reading
    again harmless, and the states are needed anyway)."""
    topics = topics_for(settings)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None,
        enable_auto_commit=False, auto_offset_reset="earliest",
        client_id=f"{settings.app_id}-notifier", **settings.kafka_options(),
    )
    parts = [TopicPartition(topic.name, partition)
             for topic in (topics.case_changelog, topics.derived_events, topics.alerts)
             for partition in sorted(consumer.partitions_for_topic(topic.name) or ())]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    return consumer


class Notifier:
    """Decides who hears what, when. Its reader, mailer and clocks are passed in (the
    command line opens the real ones), so its decisions can be tested against fakes."""

    def __init__(self, settings: Settings, engine: Engine, rules: CaseRules,
                 mailer: Mailer | None = None, clock: Clock | None = None,
                 consumer: Any = None, monotonic: Callable[[], float] = time.monotonic,
                 ) -> None:
        self.settings, self.engine, self.rules = settings, engine, rules
        self.reference, self.calendar = rules.reference, rules.calendar
        self.mailer = mailer or Mailer(settings)
        self.clock = clock or parse_clock(settings.clock)
        self.monotonic = monotonic  # for retries, the hourly limit and health
        self.lock = threading.Lock()
        self.states: dict[str, bytes] = {}  # case id → changelog value, decoded on use
        # Cases the worker archived (their changelog tombstone was read), and when (the
        # notifier's clock): settled, closed with nothing left for time to change, so no
        # notice about them is due any more. Kept for the archive window, then forgotten
        # (`forget_archived`): by then a derived event of theirs is that old itself.
        self.archived: dict[str, float] = {}
        self.waiting: list[dict[str, Any]] = []  # derived events not acted on yet
        self.missing_since: dict[str, float] = {}  # case id → when its apology went missing
        self.last_poll = monotonic()
        self.digests_done: dt.date | None = None  # the day whose digests have all gone out
        self.limit = RecipientLimit(settings.mails_per_recipient_per_hour)
        self.retries = Retries()
        self.metrics = NotifierMetrics()
        self.changelog = topics_for(settings).case_changelog.name
        self.consumer = consumer if consumer is not None else open_consumer(settings)
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
        """Send `notice` to each recipient not yet sent it; the number sent. Raises
        `HeldBack` for a recipient over the hour's limit, and the mail's own errors."""
        sent = 0
        for recipient in notice.recipients:
            if not recipient or self._already_sent(notice.key, recipient):
                continue
            wait = self.limit.wait(recipient, self.monotonic())
            if wait:
                self.metrics.held_back.labels(notice.kind).inc()
                log.warning("onestop: %s notice for agency %s held back: its recipient had "
                            "%d e-mails in the last hour (ONESTOP_MAILS_PER_RECIPIENT_PER_HOUR)",
                            notice.kind, notice.agency, self.limit.per_hour)
                raise HeldBack(wait)
            try:
                self.mailer.send(notice, recipient)
            except (OSError, smtplib.SMTPException):
                self.limit.give_back(recipient)
                self.metrics.failures.labels(notice.kind).inc()
                raise
            with self.engine.begin() as connection:
                connection.execute(insert(notifications).values(
                    key=notice.key, recipient=recipient, kind=notice.kind, agency=notice.agency,
                    case_id=notice.case_id, subject=notice.subject,
                    sent_at=self.calendar.isoformat(self.clock.now()),
                ))
            self.metrics.sent.labels(notice.kind).inc()
            log.info("onestop: %s notice sent for agency %s", notice.kind, notice.agency)
            sent += 1
        self.sent += sent
        return sent

    def send(self, notice: Notice) -> bool:
        """Deliver `notice`, or schedule its next try: False while it must wait (mail
        down, or its recipient over the hour's limit)."""
        now = self.monotonic()
        try:
            self.deliver(notice)
        except HeldBack as held:
            self.retries.hold(notice.key, now + held.wait)
            return False
        except (OSError, smtplib.SMTPException) as error:
            delay = self.retries.failed(notice.key, now)
            log.warning("onestop: cannot send e-mail now (%s notice; %s); trying it again in "
                        "%.0f s", notice.kind, mail_failure(error), delay)
            log.debug("onestop: the e-mail failure in full: %r", error)
            return False
        self.retries.forget(notice.key)
        return True

    # -- cases ---------------------------------------------------------------------
    def on_changelog(self, case_id: str, value: bytes | None) -> None:
        """A case changelog record: the case's state, or a tombstone (the worker archived
        the settled case). A state after the tombstone without a receipt holds only the
        late facts of the archived case (the worker's answer to a late event, a tombstone
        follows): nothing to watch, nor to replace."""
        if value is None:
            self.states.pop(case_id, None)
            self.archived.pop(case_id, None)  # to the end: the dict stays in time order
            self.archived[case_id] = self.clock.now()
        elif case_id not in self.archived or procedure_of(decode_entry(value).state) is not None:
            self.archived.pop(case_id, None)
            self.states[case_id] = value

    def forget_archived(self, now: float) -> None:
        """Drop the archived ids older than the archive window, so that memory stays
        bounded by the cases of one window, as the worker's."""
        oldest = now - self.settings.archive_after_days * DAY_SECONDS
        for key, at in list(islice(self.archived.items(), 1000)):
            if at >= oldest:
                break
            del self.archived[key]

    def view(self, case_id: str, now: float) -> CaseView | None:
        raw = self.states.get(case_id)
        if raw is None:
            return None
        state: CaseState = decode_entry(raw).state
        return self.rules.evaluate(state, now)

    def draft(self, view: CaseView, now: float) -> Attachment:
        """The filled apology draft (form 04), for the late-case e-mail to the head."""
        today = self.calendar.local_date(now)
        draft = draft_for(view, self.reference, self.calendar,
                          self.settings.apology_extension_days, today)
        return Attachment(safe_name(view.case_id), draft_docx(draft, today), DOCX_TYPE)

    def on_derived(self, event: dict[str, Any], now: float) -> bool:
        """Act on one derived event; False when it must wait (its case's state has not
        arrived yet, or its e-mail could not go now)."""
        kind, case_id = event["type"], event.get("case_id") or ""
        if kind not in ("case_at_risk", "apology_required", "apology_missing"):
            return True
        if not self.retries.due(event["event_id"], self.monotonic()):
            return False
        view = self.view(case_id, now)
        if view is None:
            # Wait for the case's state, unless the worker archived the case: it was
            # settled, its last event ONESTOP_ARCHIVE_AFTER_DAYS ago, and nothing is sent
            # about it any more. Only a notifier reading derived events that old meets
            # this (one down that long, or a topic kept longer); once the id is forgotten,
            # the event's own age says so.
            occurred = dt.datetime.fromisoformat(event["occurred_at"]).timestamp()
            return case_id in self.archived or (
                occurred < now - self.settings.archive_after_days * DAY_SECONDS)
        agency = self.reference.agencies.get(view.holder) or self.reference.agencies.get(
            view.handling_agency)
        if agency is None:
            return True
        if kind == "case_at_risk":
            if view.at_risk(now):
                return self.send(messages.at_risk(event["event_id"], agency, view,
                                                  self.reference, self.calendar))
        elif view.apology == "missing":
            if kind == "apology_missing":
                self.missing_since.setdefault(case_id, view.due_at)
            elif not self._already_sent(event["event_id"], agency.head_email):
                # Checked before drafting: a restart re-reads every event, and the drafts
                # of notices already sent need not be made again.
                return self.send(messages.late(event["event_id"], agency, view, self.reference,
                                               self.calendar, self.draft(view, now)))
        return True

    def escalate(self, now: float) -> None:
        office, days = self.settings.province_office_email, self.settings.escalate_after_days
        if not office:
            return
        today = self.calendar.local_date(now)
        for case_id, since in list(self.missing_since.items()):
            if self.calendar.add_working_days(self.calendar.local_date(since), days) > today:
                continue
            key = f"escalation:{case_id}"
            if not self.retries.due(key, self.monotonic()):
                continue
            # No view: the worker archived the case (see `on_derived`); nothing to send.
            view = self.view(case_id, now)
            if view is not None and view.apology == "missing":
                agency = self.reference.agencies.get(view.holder) or self.reference.agencies[
                    view.handling_agency]
                if not self.send(messages.escalation(key, office, agency, view,
                                                     self.reference, self.calendar, days)):
                    continue
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
        all_sent = True
        for code, views in sorted(by_agency.items()):
            agency = self.reference.agencies.get(code)
            key = f"digest:{code}:{local.date().isoformat()}"
            if agency is None or not self.retries.due(key, self.monotonic()):
                all_sent = all_sent and agency is None
                continue
            all_sent &= self.send(messages.digest(key, agency, local.date(), views, now,
                                                  self.reference, self.calendar))
        if all_sent:  # a digest that could not go is tried again at a later poll
            self.digests_done = local.date()

    # -- Alertmanager ----------------------------------------------------------------
    def on_alertmanager(self, payload: AlertmanagerPayload) -> int:
        sent = 0
        with self.lock:
            for alert in payload.alerts:
                if alert.status != "firing":
                    continue
                labels = alert.labels
                agency = self.reference.agencies.get(
                    labels.get("agency") or labels.get("centre") or "")
                recipient = agency.head_email if agency else self.settings.operations_email
                key = f"alert:{alert.fingerprint}:{alert.startsAt}"
                sent += self.deliver(messages.alert(key, recipient, alert.model_dump()))
        return sent

    # -- the loop ----------------------------------------------------------------------
    def poll_once(self, timeout_ms: int = 500) -> None:
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=POLL_RECORDS)
        events: list[dict[str, Any]] = []
        for records in polled.values():
            for record in records:
                if record.topic == self.changelog:
                    self.on_changelog(orjson.loads(record.key), record.value)
                else:
                    try:
                        events.append(orjson.loads(record.value))
                    except orjson.JSONDecodeError:
                        log.warning("onestop: an unreadable record on %s at offset %s",
                                    record.topic, record.offset)
        now = self.clock.now()
        with self.lock:
            waiting, self.waiting = self.waiting + events, []
            self.waiting = [event for event in waiting if not self.on_derived(event, now)]
            self.forget_archived(now)
            if sum(len(records) for records in polled.values()) == POLL_RECORDS:
                # Still catching up (at start): digests and escalations wait until every
                # case's state is known.
                return
            self.escalate(now)
            self.digests(now)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll_once()
            self.last_poll = self.monotonic()

    def healthy(self) -> bool:
        """The reading loop went round recently (the container's health check)."""
        return self.monotonic() - self.last_poll < HEALTHY_WITHIN_SECONDS

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def authorised(header: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time; nothing matches an
    empty token (the webhook is closed until one is set)."""
    scheme, _, given = (header or "").partition(" ")
    # http.server decodes headers as Latin-1: encoding back gives the bytes as sent.
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("latin-1", "replace"), token.encode())


class NotifierHandler(BaseHTTPRequestHandler):
    """POST /alertmanager (Alertmanager's webhook, with the bearer token), GET /healthz and
    GET /metrics (counts only). Nothing else: no personal data."""

    notifier: Notifier
    token: str
    timeout = REQUEST_TIMEOUT_SECONDS  # on the socket: a silent caller is cut off

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        if self.path.rstrip("/") != "/alertmanager":
            self.send_error(404)
            return
        payload = self.read_payload()
        if payload is None:
            return
        try:
            self.notifier.on_alertmanager(payload)
        except HeldBack:
            # 503, not 429: Alertmanager tries again only after a 5xx (the ledger keeps
            # it to one e-mail once the hour allows).
            self.send_error(503, "too many e-mails to one recipient in the last hour")
            return
        except (OSError, smtplib.SMTPException) as error:
            self.send_error(503, f"cannot send e-mail now: {mail_failure(error)}")
            return
        self.reply(200, b"", "text/plain; charset=utf-8")

    def read_payload(self) -> AlertmanagerPayload | None:
        """The caller's payload, once it proved who it is; None when refused (answered)."""
        refused = self.notifier.metrics.refused
        if not authorised(self.headers.get("Authorization"), self.token):
            refused.labels("unauthenticated").inc()
            self.send_error(401, "a bearer token is required")
            return None
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            refused.labels("malformed").inc()
            self.send_error(411, "Content-Length is required")
            return None
        if length < 0:
            refused.labels("malformed").inc()
            self.send_error(400, "a negative Content-Length")
            return None
        if length > WEBHOOK_MAX_BYTES:
            refused.labels("too_large").inc()
            self.send_error(413, f"at most {WEBHOOK_MAX_BYTES} bytes")
            return None
        try:
            return AlertmanagerPayload.model_validate_json(self.rfile.read(length))
        except ValidationError as error:
            refused.labels("malformed").inc()
            self.send_error(400, f"not an Alertmanager webhook payload: "
                            f"{error.error_count()} errors")
            return None

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/healthz":
            healthy = self.notifier.healthy()
            body = b"ok\n" if healthy else b"the notifier has not read its topics lately\n"
            self.reply(200 if healthy else 503, body, "text/plain; charset=utf-8")
        elif self.path == "/metrics":
            self.reply(200, generate_latest(self.notifier.metrics.registry),
                       "text/plain; version=0.0.4; charset=utf-8")
        else:
            self.send_error(404)

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass  # the log has the notices' kinds and agencies; requests add nothing


def serve(notifier: Notifier, host: str, port: int) -> ThreadingHTTPServer:
    """The notifier's HTTP endpoints (`NotifierHandler`), on a thread."""
    token = notifier.settings.webhook_token.get_secret_value()
    if not token:
        log.warning("onestop: ONESTOP_WEBHOOK_TOKEN is not set: the Alertmanager webhook "
                    "refuses every call")
    handler = type("Handler", (NotifierHandler,), {"notifier": notifier, "token": token})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="notifier-http", daemon=True).start()
    return server
