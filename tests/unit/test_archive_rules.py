"""When a case or ticket leaves the live state, and how late facts join its archived
state (models/archive.py)."""

from __future__ import annotations

import datetime as dt
import math

from onestop.models.archive import archive_horizon, settled, with_late_facts
from onestop.models.case import CLOSING_KINDS, CaseState, holds_applicant
from onestop.models.facts import Fact
from onestop.models.queue import CLOSING_KINDS as TICKET_CLOSING_KINDS
from onestop.models.queue import TicketState

DAY = 86_400.0
MARCH_2 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC).timestamp()


def utc_date(at: float) -> dt.date:
    return dt.datetime.fromtimestamp(at, dt.UTC).date()


def fact(day: int, kind: str, event_id: str, data: object = None) -> Fact:
    return Fact(MARCH_2 + day * DAY, event_id, kind, data)


RECEIVED = fact(0, "received", "e1", ("P1", "A1", "C1", "counter", None, 0, False,
                                      ("Nguyễn Văn A", "Huế", None, None), "dvc"))
PROCESSED = fact(5, "processed", "e2")


def test_the_horizon_counts_back_from_the_newest_event_never_from_the_future() -> None:
    newest = MARCH_2 + 30 * DAY
    assert archive_horizon(newest, newest + 90 * DAY, 10, utc_date) == dt.date(2026, 3, 22)
    # An event from the future does not move the horizon past now.
    assert archive_horizon(newest + 400 * DAY, newest, 10, utc_date) == dt.date(2026, 3, 22)


def test_a_closed_case_is_settled_once_its_last_day_is_final() -> None:
    facts = (RECEIVED, PROCESSED)  # the last fact on 7 March
    assert settled(facts, CLOSING_KINDS, math.inf, dt.date(2026, 3, 8), utc_date)
    assert not settled(facts, CLOSING_KINDS, math.inf, dt.date(2026, 3, 7), utc_date)
    # Time may still change it (an apology still due, say): it stays.
    assert not settled(facts, CLOSING_KINDS, MARCH_2 + 9 * DAY, dt.date(2026, 4, 1), utc_date)


def test_an_open_case_is_never_settled_but_late_facts_alone_are() -> None:
    assert not settled((RECEIVED,), CLOSING_KINDS, math.inf, dt.date(2026, 6, 1), utc_date)
    rating = (fact(40, "rated", "e9", ("satisfied",)),)
    assert settled(rating, CLOSING_KINDS, math.inf, dt.date(2026, 6, 1), utc_date)
    ticket = (fact(0, "ticket_issued", "t1", ("C1",)),)
    assert not settled(ticket, TICKET_CLOSING_KINDS, math.inf, dt.date(2026, 6, 1), utc_date)
    done = (*ticket, fact(0, "service_completed", "t2", ("C1",)))
    assert settled(done, TICKET_CLOSING_KINDS, math.inf, dt.date(2026, 6, 1), utc_date)


def test_late_facts_join_the_archived_state_once_and_in_order() -> None:
    stored = CaseState("H1", (RECEIVED, PROCESSED), emitted=3)
    rating = fact(6, "rated", "e3", ("satisfied",))
    late = CaseState("H1", (rating, PROCESSED))  # one new, one already there
    merged = with_late_facts(stored, late)
    assert merged == CaseState("H1", (RECEIVED, PROCESSED, rating), emitted=3)
    assert with_late_facts(merged, late) == merged


def test_a_late_erasure_erases_the_archived_state() -> None:
    stored = CaseState("H1", (RECEIVED, PROCESSED))
    assert holds_applicant(stored)
    erased = with_late_facts(stored, CaseState("H1", (fact(90, "applicant_erased", "x1"),)))
    assert not holds_applicant(erased)
    assert [f.kind for f in erased.facts] == ["received", "processed", "applicant_erased"]


def test_late_facts_of_a_ticket() -> None:
    issued = fact(0, "ticket_issued", "t1", ("C1",))
    stored = TicketState("Q1", (issued,), wait_exceeded_sent=True)
    called = fact(0.01, "ticket_called", "t2", ("C1",))
    assert with_late_facts(stored, TicketState("Q1", (called,))) == TicketState(
        "Q1", (issued, called), True)
