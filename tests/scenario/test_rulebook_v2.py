"""Rulebook §11: the points §1–§10 left open, one story each, with explicit times.

The small reference's centre works 07:30–11:30 and 13:30–17:00 (7.5 hours a day). A
five-working-day case received on Monday 2 March 2026 is due at 24:00 of Monday 9 March;
its apology is due by the end of Friday 6 March.
"""

import datetime as dt
from dataclasses import replace

from onestop.models.aggregates import AgencyFigures, Period, add_case, notifying_sources
from onestop.models.calendar import WorkingCalendar, shown_date, shown_instant
from onestop.models.case import CaseRules, move_due
from onestop.models.judge import first_instant, judge_case
from onestop.models.measures import case_measures
from onestop.models.queue import QueueRules
from tests.conftest import at, event, local, received, small_reference, story, view_of

LATER = "2026-03-31 00:00"
ALL_TIME = Period(float("-inf"), at(LATER))


def figures_of(views, period=ALL_TIME, states=()):
    figures: dict[str, AgencyFigures] = {}
    notifying = notifying_sources(states, period.end)
    for view in views:
        add_case(figures, view, period, notifying)
    return figures


def apology(when, case_id="C1"):
    return event("apology_issued", when, case_id, agency="STP",
                 new_due_at="2026-03-13T17:00:00+07:00", reason="Chờ kết quả thẩm định")


# ---- §11.1 (unchanged) ------------------------------------------------------------------

def test_11_1_a_supplement_requested_after_the_due_instant_gives_no_time_back(rules):
    view = view_of(rules, [received("2026-03-02 09:00"),
                           event("supplement_requested", "2026-03-10 08:00"),
                           event("supplement_received", "2026-03-12 08:00"),
                           event("processed", "2026-03-12 10:00")], LATER)
    assert local(rules, view.due_at) == "2026-03-10 00:00"
    assert view.verdict == "late"


# ---- §11.2 the apology deadline's boundary ----------------------------------------------

def test_11_2_an_apology_at_24_00_of_the_day_before_the_due_day_is_late(rules):
    base = [received("2026-03-02 09:00"), event("processed", "2026-03-10 10:00")]
    evening = view_of(rules, [*base, apology("2026-03-06 20:00")], LATER)
    assert evening.apology == "issued_in_time"
    midnight = view_of(rules, [*base, apology("2026-03-07 00:00")], LATER)
    assert local(rules, midnight.apology_deadline) == "2026-03-07 00:00"
    assert midnight.apology == "issued_late"


# ---- §11.3 withdrawn cases --------------------------------------------------------------

def test_11_3_a_withdrawn_case_is_neither_ended_nor_in_the_service_index(rules):
    withdrawn = view_of(rules, [received("2026-03-02 09:00", case_id="W"),
                                event("withdrawn", "2026-03-04 09:00", case_id="W")], LATER)
    assert withdrawn.service_index_verdict is None
    assert not withdrawn.ended
    stp = figures_of([withdrawn])["STP"]
    assert stp.received == 1
    assert stp.ended == 0
    assert stp.completed_on_time_rate.denominator == 0
    assert stp.service_index_on_time_rate.denominator == 0
    assert not any(name.startswith("service_index") or name == "cases_ended"
                   for name, _, _ in case_measures(withdrawn, "civil", at(LATER)))


# ---- §11.4 and §11.5 (unchanged) ----------------------------------------------------------

def test_11_4_processed_with_outcome_refused_gives_the_status_refused(rules):
    view = view_of(rules, [received("2026-03-02 09:00"),
                           event("processed", "2026-03-04 09:00", outcome="refused",
                                 reason="Hồ sơ không đủ điều kiện")], LATER)
    assert view.status == "refused"
    assert view.ended


def test_11_5_a_late_case_with_no_hand_off_is_the_handling_agency_s(rules):
    view = view_of(rules, [received("2026-03-02 09:00", handling_agency="UBND"),
                           event("processed", "2026-03-11 09:00")], LATER)
    assert view.verdict == "late"
    assert view.responsible == ("UBND",)


# ---- §11.6 electronic-result share ------------------------------------------------------

def test_11_6_every_approved_case_of_a_paper_result_procedure_counts(rules):
    def case(case_id, procedure="P5", **processed):
        return view_of(rules, [received("2026-03-02 09:00", procedure, case_id=case_id),
                               event("processed", "2026-03-05 10:00", case_id=case_id,
                                     **processed)], LATER)

    views = [
        case("E", electronic_result=True),
        case("NOFLAG"),  # the producer said nothing: no electronic result
        case("PAPER", electronic_result=False),
        case("REFUSED", outcome="refused", reason="Không đủ điều kiện"),  # not approved
        case("NOPAPER", "P30C", electronic_result=True),  # no paper result at all
    ]
    share = figures_of(views)["STP"].electronic_result_share
    assert (share.numerator, share.denominator) == (1, 3)
    measures = [name for view in views for name, _, _ in case_measures(view, "civil", at(LATER))]
    assert (measures.count("paper_results"), measures.count("electronic_results")) == (3, 1)


def test_11_6_a_case_belongs_to_the_period_of_its_processed_instant(rules):
    view = view_of(rules, [received("2026-03-25 09:00", case_id="X"),
                           event("processed", "2026-03-31 10:00", case_id="X"),
                           event("returned", "2026-04-02 10:00", case_id="X",
                                 channel="counter")], "2026-04-30 00:00")
    march = figures_of([view], Period(at("2026-03-01 00:00"), at("2026-04-01 00:00")))
    april = figures_of([view], Period(at("2026-04-01 00:00"), at("2026-05-01 00:00")))
    assert march["STP"].electronic_result_share.denominator == 1
    assert april["STP"].electronic_result_share.denominator == 0


# ---- §11.7 and §11.8 (unchanged) ----------------------------------------------------------

def test_11_7_the_online_payment_denominator_is_every_fee_case_received(rules):
    views = [view_of(rules, [received("2026-03-02 09:00", case_id="F1", fee=20000),
                             event("withdrawn", "2026-03-03 09:00", case_id="F1")], LATER),
             view_of(rules, [received("2026-03-02 09:00", case_id="F2", fee=20000),
                             event("paid", "2026-03-02 09:10", case_id="F2", method="online",
                                   amount=20000)], LATER)]
    share = figures_of(views)["STP"].online_payment_share
    assert (share.numerator, share.denominator) == (1, 2)


def test_11_8_a_wait_is_clock_time_with_the_lunch_break_in_it():
    queue = QueueRules(900)
    ticket = None
    for kind, when in (("ticket_issued", "2026-03-02 11:20"),
                       ("ticket_called", "2026-03-02 13:40")):
        fields = {"ticket_id": "T1", "centre": "CENTRE", "event_id": kind}
        if kind == "ticket_called":
            fields["counter"] = "Q1"
        ticket, _ = queue.apply(ticket, event(kind, when, **fields))
    visit = queue.evaluate(ticket, at(LATER))
    assert visit.wait_seconds == 140 * 60


# ---- §11.9 pauses keep the form of the due instant ----------------------------------------

def paused_one_working_day(**fields):
    """Paused from Tuesday 3 March 07:30 to Wednesday 4 March 07:30: 7.5 working hours."""
    return [received("2026-03-02 09:00", **fields),
            event("supplement_requested", "2026-03-03 07:30"),
            event("supplement_received", "2026-03-04 07:30")]


def test_11_9_a_receipt_due_at_17_00_paused_a_working_day_is_due_at_17_00(rules):
    view = view_of(rules, paused_one_working_day(due_at="2026-03-09T17:00:00+07:00"), LATER)
    assert local(rules, view.due_at) == "2026-03-10 17:00"


def test_11_9_an_end_of_day_due_moves_to_the_end_of_a_day(rules):
    whole_day = view_of(rules, paused_one_working_day(), LATER)
    assert local(rules, whole_day.due_at) == "2026-03-11 00:00"
    # Half a morning (07:30–09:30): the moved instant is 09:30 on Tuesday 10 March, and
    # the due stays an end of a day.
    half = view_of(rules, [received("2026-03-02 09:00"),
                           event("supplement_requested", "2026-03-03 07:30"),
                           event("supplement_received", "2026-03-03 09:30")], LATER)
    assert local(rules, half.due_at) == "2026-03-11 00:00"


def test_11_9_an_hour_limit_moved_to_the_close_of_a_day_stays_there(rules):
    # Eight working hours from Monday 09:00: due Tuesday 09:30. Paused 5.5 working hours
    # (Monday 09:30 to Tuesday 07:30): moved to Tuesday 17:00, not to 24:00.
    events = [received("2026-03-02 09:00", "P8H"),
              event("supplement_requested", "2026-03-02 09:30"),
              event("supplement_received", "2026-03-03 07:30")]
    state, _ = story(rules, events[:1])
    assert local(rules, rules.evaluate(state, at(LATER)).due_at) == "2026-03-03 09:30"
    view = view_of(rules, events, LATER)
    assert local(rules, view.due_at) == "2026-03-03 17:00"


def test_11_9_a_receipt_due_outside_hours_counts_from_the_last_working_instant(rules):
    # Due 20:00 Monday 9 March sits at 17:00 on the working-time line: one paused working
    # hour moves it to 08:30 on Tuesday 10 March.
    view = view_of(rules, [received("2026-03-02 09:00", due_at="2026-03-09T20:00:00+07:00"),
                           event("supplement_requested", "2026-03-03 07:30"),
                           event("supplement_received", "2026-03-03 08:30")], LATER)
    assert local(rules, view.due_at) == "2026-03-10 08:30"


def test_11_9_a_moved_instant_at_00_00_belongs_to_the_day_that_ends_there():
    # A centre that works round the clock: a due at 24:00 of Monday 2 March moved by one
    # whole working day lands exactly on 00:00 of Wednesday, which ends Tuesday.
    calendar = WorkingCalendar(hours={"NIGHT": ((0, 24 * 3600),)})
    due = calendar.end_of_day(dt.date(2026, 3, 2))
    moved = move_due(calendar, due, 24 * 3600, "NIGHT")
    assert moved == calendar.end_of_day(dt.date(2026, 3, 3))
    assert calendar.day_ending(moved) == dt.date(2026, 3, 3)


# ---- §11.10 overdue-notice mismatches ------------------------------------------------------

def overdue_story(rules, case_id, source, notice_at=None, notice_source=None):
    events = [received("2026-03-02 09:00", case_id=case_id, source=source),
              event("processed", "2026-03-11 10:00", case_id=case_id)]
    if notice_at is not None:
        events.append(event("overdue", notice_at, case_id, source=notice_source or source))
    return story(rules, events)[0]


def test_11_10_a_late_case_is_a_mismatch_only_where_its_source_sends_notices(rules):
    quiet = overdue_story(rules, "Q", "old-system")
    noticed = overdue_story(rules, "N", "portal", notice_at="2026-03-10 08:00")
    missed = overdue_story(rules, "M", "portal")
    states = [quiet, noticed, missed]
    views = [rules.evaluate(state, at(LATER)) for state in states]
    assert all(view.verdict == "late" for view in views)
    # Before: every late case without a notice was a mismatch (2 here).
    assert figures_of(views, states=states)["STP"].overdue_notice_mismatches == 1
    # The portal's notice came after the instant judged: it has sent none yet.
    early = Period(float("-inf"), at("2026-03-10 07:00"))
    views = [rules.evaluate(state, early.end) for state in states]
    assert figures_of(views, early, states)["STP"].overdue_notice_mismatches == 0


def test_11_10_a_notice_before_the_case_is_overdue_is_always_a_mismatch(rules):
    premature = overdue_story(rules, "P", "portal", notice_at="2026-03-09 10:00")
    view = rules.evaluate(premature, at(LATER))
    assert view.verdict == "late"  # late in the end, but not yet overdue at the notice
    assert figures_of([view], states=[premature])["STP"].overdue_notice_mismatches == 1


def test_11_10_a_case_s_source_is_its_receipt_s(rules):
    # The notice names no source; the receipt named 'portal'. The unnamed source has sent
    # a notice, the portal none: the late case M is not a mismatch.
    noticed = overdue_story(rules, "N", None, notice_at="2026-03-10 08:00")
    missed = overdue_story(rules, "M", "portal")
    states = [noticed, missed]
    views = [rules.evaluate(state, at(LATER)) for state in states]
    assert views[1].source == "portal"
    assert figures_of(views, states=states)["STP"].overdue_notice_mismatches == 0


# ---- §11.11 paper transfers -------------------------------------------------------------

def handed_off(rules, accepted, handed, method="paper", case_id="H", earlier=()):
    events = [received(accepted, case_id=case_id), *earlier,
              event("transferred", handed, case_id, from_unit="CENTRE", to_unit="STP",
                    method=method)]
    return view_of(rules, events, LATER)


def test_11_11_a_paper_case_accepted_by_15_00_leaves_the_same_day(rules):
    in_time = handed_off(rules, "2026-03-02 15:00", "2026-03-02 17:00")
    assert local(rules, in_time.paper_handoff_due_at) == "2026-03-02 17:00"
    assert in_time.late_paper_transfer_at is None
    late = handed_off(rules, "2026-03-02 14:00", "2026-03-03 07:31")
    assert late.late_paper_transfer_at == at("2026-03-03 07:31")


def test_11_11_after_15_00_it_leaves_by_the_end_of_the_next_morning(rules):
    in_time = handed_off(rules, "2026-03-02 15:01", "2026-03-03 11:30")
    assert local(rules, in_time.paper_handoff_due_at) == "2026-03-03 11:30"
    assert in_time.late_paper_transfer_at is None
    late = handed_off(rules, "2026-03-02 15:01", "2026-03-03 11:31")
    assert late.late_paper_transfer_at == at("2026-03-03 11:31")
    # Received on Friday evening: accepted Monday 07:30, by 15:00, so due Monday 17:00.
    weekend = handed_off(rules, "2026-02-27 18:00", "2026-03-02 16:00")
    assert local(rules, weekend.paper_handoff_due_at) == "2026-03-02 17:00"


def test_11_11_only_a_first_hand_off_on_paper_is_judged(rules):
    electronic = handed_off(rules, "2026-03-02 09:00", "2026-03-05 09:00", method="electronic")
    assert electronic.paper_handoff_due_at is None
    assert electronic.late_paper_transfer_at is None
    second = handed_off(rules, "2026-03-02 09:00", "2026-03-05 09:00", earlier=[
        event("transferred", "2026-03-02 10:00", "H", from_unit="CENTRE", to_unit="UBND",
              method="electronic")])
    assert second.late_paper_transfer_at is None


def test_11_11_late_paper_transfers_count_under_the_case_s_centre(rules):
    late = handed_off(rules, "2026-03-02 14:00", "2026-03-04 09:00")
    figures = figures_of([late])
    assert figures["CENTRE"].late_paper_transfers == 1
    assert figures["STP"].late_paper_transfers == 0
    assert ("late_paper_transfers", ("CENTRE",), 1) in case_measures(late, "civil", at(LATER))
    # Counted in the period of the hand-off.
    february = figures_of([late], Period(float("-inf"), at("2026-03-03 00:00")))
    assert february.get("CENTRE", AgencyFigures()).late_paper_transfers == 0


def test_11_11_the_cut_off_is_a_setting_per_centre():
    rules = CaseRules(replace(small_reference(), handoff_cutoffs={"CENTRE": 16 * 3600}))
    view = handed_off(rules, "2026-03-02 15:30", "2026-03-02 16:59")
    assert local(rules, view.paper_handoff_due_at) == "2026-03-02 17:00"
    assert view.late_paper_transfer_at is None


# ---- §11.12 when a case becomes at risk ------------------------------------------------------

def test_11_12_at_risk_from_the_first_working_instant_of_the_day_before_the_due_day(rules):
    state, _ = story(rules, [received("2026-03-02 09:00")])
    view = rules.evaluate(state, at("2026-03-06 07:29"))
    assert local(rules, view.risk_at) == "2026-03-06 07:30"
    _, outputs = rules.on_tick(state, at("2026-03-06 07:29"))
    assert outputs == []
    state, outputs = rules.on_tick(state, at("2026-03-06 07:30"))
    assert [o.type for o in outputs] == ["case_at_risk"]
    assert outputs[0].occurred_at == at("2026-03-06 07:30")
    # The apology deadline is the end of that same day: the head has the whole day.
    assert local(rules, view.apology_deadline) == "2026-03-07 00:00"


def test_11_12_a_case_at_risk_on_friday_and_closed_on_tuesday_keeps_its_warning(rules):
    """The same history gives the same derived events judged live, as it arrives, or
    replayed at the end."""
    received_, processed = received("2026-03-02 09:00"), event("processed", "2026-03-10 10:00")
    expected = [("case_at_risk", "2026-03-06 07:30"), ("overdue_detected", "2026-03-10 00:00"),
                ("apology_required", "2026-03-10 00:00"), ("apology_missing", "2026-03-10 00:00"),
                ("case_closed", "2026-03-10 10:00")]

    # Replayed: the whole history judged from its first event to the end.
    state, _ = story(rules, [received_, processed])
    replayed = judge_case(rules, state, first_instant(state), at(LATER)).derived
    assert [(o.type, local(rules, o.occurred_at)) for o in replayed] == expected

    # Live: judged on Friday at 08:00, then the processed event arrives at 11:00 on
    # Tuesday and the case is judged from the earlier of that event and its next check.
    state, _ = story(rules, [received_])
    friday = judge_case(rules, state, first_instant(state), at("2026-03-06 08:00"))
    state, _ = rules.apply(friday.state, processed)
    start = min(friday.next_check, processed.occurred_at.timestamp())
    tuesday = judge_case(rules, state, start, at("2026-03-10 11:00"))
    later = judge_case(rules, tuesday.state, tuesday.next_check, at(LATER))
    assert [*friday.derived, *tuesday.derived, *later.derived] == list(replayed)


# ---- §11.13 dates shown to people -------------------------------------------------------

def test_11_13_an_end_of_day_due_is_shown_as_that_day(rules):
    view = view_of(rules, [received("2026-03-02 09:00")], "2026-03-03 00:00")
    moment = rules.calendar.to_datetime(view.due_at)
    assert moment.isoformat() == "2026-03-10T00:00:00+07:00"
    assert shown_date(moment) == dt.date(2026, 3, 9)
    assert shown_instant(moment) == "09/03/2026"
    hours = view_of(rules, [received("2026-03-02 09:00", "P8H")], "2026-03-03 00:00")
    assert shown_instant(rules.calendar.to_datetime(hours.due_at)) == "09:30 ngày 03/03/2026"


def test_11_13_the_rules_and_the_screens_read_a_day_alike(rules):
    calendar = rules.calendar
    for text in ("2026-03-10 00:00", "2026-03-09 23:59", "2026-03-10 00:01", "2026-03-09 17:00"):
        assert calendar.day_ending(at(text)) == shown_date(calendar.to_datetime(at(text)))


# ---- days late, as the report's late-case list shows them (§11.13) -----------------------

def test_days_late_count_from_the_due_day_to_the_day_processing_ended(rules):
    from onestop.models.case import days_late

    base = [received("2026-03-02 09:00")]  # due at 24:00 of Monday 9 March
    late = view_of(rules, [*base, event("processed", "2026-03-11 10:00")], LATER)
    assert days_late(late, at(LATER), rules.calendar) == 2
    in_time = view_of(rules, [*base, event("processed", "2026-03-09 16:00")], LATER)
    assert days_late(in_time, at(LATER), rules.calendar) == 0
    # Still open, judged at 24:00 of Wednesday 11 March: that day counts, the next not.
    still_open = view_of(rules, base, "2026-03-12 00:00")
    assert days_late(still_open, at("2026-03-12 00:00"), rules.calendar) == 2
