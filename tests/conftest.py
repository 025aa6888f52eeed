"""Shared test helpers: a small explicit reference and event builders."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import orjson
import pytest

from onestop.models.calendar import WorkingCalendar
from onestop.models.case import CaseRules, CaseState, CaseView
from onestop.models.events import Rejection, decode_event
from onestop.models.reference import Agency, Procedure, Reference, Step

ZONE = "+07:00"


def _close_refused_sockets() -> None:
    """kafka-python 3.0.12 (pinned) leaves the socket of a refused connection open
    (`KafkaNetSocket.sock_connect` raises without closing it); the garbage collector
    closes it later with a ResourceWarning, which this suite turns into a failure of
    whichever test is running. The tests' own clients close it where it is dropped."""
    from kafka.net import inet

    connect = inet.KafkaNetSocket.sock_connect

    async def sock_connect(self: Any, net: Any, sock: Any, sockaddr: Any,
                           timeout_at: Any = None) -> Any:
        try:
            return await connect(self, net, sock, sockaddr, timeout_at=timeout_at)
        except BaseException:
            sock.close()
            raise

    inet.KafkaNetSocket.sock_connect = sock_connect


_close_refused_sockets()


def _close_sockets_left_to_cancelled_tasks() -> None:
    """kafka-python 3.0.12 (pinned) leaves a connection's socket open in two more cases,
    and the garbage collector closes it later with a ResourceWarning, a failure of
    whichever test is running:
    - `KafkaTCPTransport.close()` with bytes still unsent leaves them, and the closing of
      the socket, to its write task; closing the client then cancels that task and the
      socket stays open, in a reference cycle with its connection. Seen in the TLS test:
      `read_to_end`'s consumer closed while a request it had queued was not yet sent.
    - `KafkaConnectionManager._build_transport` closes nothing when the TLS handshake
      fails, or is cancelled by the client closing meanwhile. Seen in the TLS test too:
      `ingest_lines`'s producer closed while a connection's handshake was under way.
    Here the write task, cancelled, and the handshake, failed, close the socket."""
    from kafka.net import transport

    def closing_on(stopped: type[BaseException], method: Any) -> Any:
        async def run(self: Any) -> Any:
            try:
                return await method(self)
            except stopped:
                if self._sock is not None:
                    self._sock.close()
                raise
        return run

    tcp, tls = transport.KafkaTCPTransport, transport.KafkaSSLTransport
    tcp._write_to_sock = closing_on(GeneratorExit, tcp._write_to_sock)
    tls.handshake = closing_on(BaseException, tls.handshake)


_close_sockets_left_to_cancelled_tasks()


# Every secret the suite hands the code (passwords, tokens): none may appear in any test's
# captured output or log (below), nor in a worker's log (tests/integration/conftest.py).
SUITE_SECRETS: set[str] = set()


def suite_secret(value: str) -> str:
    SUITE_SECRETS.add(value)
    return value


def leaked_secrets(text: str) -> list[str]:
    return sorted(secret for secret in SUITE_SECRETS if secret in text)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    leaks = [name for name, content in report.sections if leaked_secrets(content)]
    if leaks and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = f"a secret of the suite appears in: {', '.join(leaks)}"


def agency(code: str, level: str = "province", centre: str = "CENTRE") -> Agency:
    return Agency(code, code, level, None, "Head of " + code, code.lower() + "@example.vn", centre)


def small_reference() -> Reference:
    hours = 3600
    procedures = [
        Procedure("P5", "Five working days", "civil", "province", 5, "working_days",
                  paper_result=True),
        Procedure("P30C", "Thirty calendar days", "land", "province", 30, "calendar_days",
                  paper_result=False),
        Procedure("P8H", "Eight working hours", "certification", "commune", 8, "working_hours"),
        Procedure("PSAME", "Same day", "certification", "commune", 0, "same_day"),
        Procedure(
            "PSTEP", "Three working days with steps", "construction", "province", 3,
            "working_days",
            steps=(Step("CENTRE", 4 * hours), Step("STP", 15 * hours), Step("UBND", 3 * hours)),
        ),
    ]
    agencies = [agency("CENTRE"), agency("STP"), agency("UBND"), agency("XA", "commune")]
    return Reference(
        procedures={p.code: p for p in procedures},
        agencies={a.code: a for a in agencies},
    )


def at(text: str) -> float:
    """'2026-03-02 09:00' in Vietnam time as an instant."""
    return dt.datetime.fromisoformat(text.replace(" ", "T") + ZONE).timestamp()


def iso(text: str) -> str:
    return text.replace(" ", "T") + ":00" + ZONE


_ids = itertools.count(1)


def event(kind: str, when: str, case_id: str = "C1", **fields: Any) -> Any:
    """A case event decoded through the real decoder, as a producer would send it."""
    message = {
        "event_id": fields.pop("event_id", f"e{next(_ids)}"),
        "type": kind,
        "case_id": case_id,
        "occurred_at": iso(when),
        **fields,
    }
    decoded = decode_event(orjson.dumps(message))
    assert not isinstance(decoded, Rejection), decoded
    return decoded


def received(when: str, procedure: str = "P5", case_id: str = "C1", **fields: Any) -> Any:
    fields.setdefault("handling_agency", "STP")
    fields.setdefault("centre", "CENTRE")
    fields.setdefault("channel", "counter")
    return event("received", when, case_id, procedure=procedure, **fields)


@pytest.fixture(scope="session")
def rules() -> CaseRules:
    return CaseRules(small_reference())


@pytest.fixture(scope="session")
def calendar() -> WorkingCalendar:
    return WorkingCalendar()


def story(rules: CaseRules, events: list[Any]) -> tuple[CaseState, list[Any]]:
    state = None
    outputs: list[Any] = []
    for item in events:
        state, new = rules.apply(state, item)
        outputs.extend(new)
    assert state is not None
    return state, outputs


def view_of(rules: CaseRules, events: list[Any], as_of: str) -> CaseView:
    state, _ = story(rules, events)
    view = rules.evaluate(state, at(as_of))
    assert view is not None
    return view


def local(rules: CaseRules, instant: float) -> str:
    return rules.calendar.to_datetime(instant).strftime("%Y-%m-%d %H:%M")


# ---- SQL stores: SQLite files and a throw-away PostgreSQL server ---------------------

@pytest.fixture(scope="session")
def postgres() -> Any:
    from tests.brokers import PostgresContainer, postgres_source
    from tests.postgres import PostgresServer

    server = PostgresContainer() if postgres_source() == "container" else PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """An empty database of each kind the store supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'onestop.db'}"
    return request.getfixturevalue("postgres").new_database()
