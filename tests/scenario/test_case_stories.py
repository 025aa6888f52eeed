"""Whole case stories with explicit event times; every output asserted.

Dates: Monday 2 March 2026 is an ordinary working week; Tết 2026 is 16–20 February.
A five-working-day case received on Monday 2 March is due at the end of Monday 9 March.
"""

import random

from onestop.models.case import derived_event_id
from tests.conftest import at, event, local, received, story, view_of


def test_processed_on_the_due_day_is_on_time(rules):
    view = view_of(rules, [received("2026-03-02 09:00"),
                           event("processed", "2026-03-09 16:00"),
                           event("returned", "2026-03-10 08:00", channel="counter")],
                   "2026-03-31 00:00")
    assert local(rules, view.due_at) == "2026-03-10 00:00"  # 24:00 of Monday 9 March
    assert view.status == "returned"
    assert view.verdict == "on_time"
    assert view.service_index_verdict == "on_time"
    assert view.apology == "not_required"
    assert view.responsible == ()


def test_processed_before_the_due_day_is_early_and_after_it_late(rules):
    early = view_of(rules, [received("2026-03-02 09:00"), event("processed", "2026-03-06 10:00")],
                    "2026-03-31 00:00")
    assert early.verdict == "early"
    late = view_of(rules, [received("2026-03-02 09:00"), event("processed", "2026-03-10 08:00")],
                   "2026-03-31 00:00")
    assert late.verdict == "late"
    assert late.service_index_verdict == "late"
    assert late.apology == "missing"
    # No transfers: the handling agency held the case when it went late.
    assert late.responsible == ("STP",)


def test_returned_without_processed_ends_at_the_return(rules):
    view = view_of(rules, [received("2026-03-02 09:00"),
                           event("returned", "2026-03-10 09:00", channel="postal")],
                   "2026-03-31 00:00")
    assert view.end_at == at("2026-03-10 09:00")
    assert view.verdict == "late"


def test_apology_in_time_late_and_missing(rules):
    base = [received("2026-03-02 09:00"), event("processed", "2026-03-11 10:00")]

    def apology(when):
        return event("apology_issued", when, agency="STP", new_due_at=iso_of("2026-03-12 17:00"),
                     reason="Chờ kết quả thẩm định")

    # Due Monday 9 March: the apology is due by the end of Friday 6 March.
    in_time = view_of(rules, [*base, apology("2026-03-06 16:55")], "2026-03-31 00:00")
    assert in_time.apology == "issued_in_time"
    assert in_time.verdict == "late"  # an apology never makes a late case on time
    late = view_of(rules, [*base, apology("2026-03-09 08:00")], "2026-03-31 00:00")
    assert late.apology == "issued_late"
    missing = view_of(rules, base, "2026-03-31 00:00")
    assert missing.apology == "missing"
    assert local(rules, in_time.apology_deadline) == "2026-03-07 00:00"


def iso_of(text):
    return text.replace(" ", "T") + ":00+07:00"


def test_supplement_request_pauses_the_clock(rules):
    # Paused Tue 09:00 → Thu 09:00: 6 h + 7.5 h + 1.5 h = 15 working hours = two working
    # days, which move the due date from Monday 9 to Wednesday 11 March.
    events = [received("2026-03-02 09:00"),
              event("supplement_requested", "2026-03-03 09:00", reason="Thiếu bản sao CCCD"),
              event("supplement_received", "2026-03-05 09:00"),
              event("processed", "2026-03-11 16:00")]
    view = view_of(rules, events, "2026-03-31 00:00")
    assert local(rules, view.due_at) == "2026-03-12 00:00"
    assert view.verdict == "on_time"
    assert view.supplement_requests == 1
    assert view.service_index_verdict == "on_time"


def test_more_than_one_supplement_request_is_late_for_the_service_index(rules):
    events = [received("2026-03-02 09:00"),
              event("supplement_requested", "2026-03-03 09:00"),
              event("supplement_received", "2026-03-03 10:00"),
              event("supplement_requested", "2026-03-04 09:00"),
              event("supplement_received", "2026-03-04 10:00"),
              event("processed", "2026-03-05 10:00")]
    view = view_of(rules, events, "2026-03-31 00:00")
    assert view.verdict == "early"
    assert view.service_index_verdict == "late"


def test_applicant_who_never_returns_ends_at_the_request_for_the_service_index(rules):
    events = [received("2026-03-02 09:00"), event("supplement_requested", "2026-03-03 09:00")]
    view = view_of(rules, events, "2026-04-30 00:00")
    assert view.status == "open"
    assert view.paused
    assert not view.overdue  # the clock is stopped
    assert view.service_index_verdict == "on_time"


def test_case_received_after_hours_before_tet(rules):
    view = view_of(rules, [received("2026-02-13 20:00", channel="online")], "2026-02-20 00:00")
    assert local(rules, view.accepted_at) == "2026-02-23 07:30"
    assert local(rules, view.due_at) == "2026-03-03 00:00"  # 5th working day: Mon 2 March


def test_make_up_saturday_counts_as_a_working_day(rules):
    view = view_of(rules, [received("2026-08-21 09:00")], "2026-08-21 10:00")
    # Sat 22 (make-up), Mon 24, Tue 25, Wed 26, Thu 27.
    assert local(rules, view.due_at) == "2026-08-28 00:00"


def test_same_day_procedure_and_its_cut_off(rules):
    before = view_of(rules, [received("2026-03-06 14:59", "PSAME")], "2026-03-06 15:00")
    assert local(rules, before.due_at) == "2026-03-07 00:00"
    after = view_of(rules, [received("2026-03-06 15:30", "PSAME")], "2026-03-06 15:31")
    assert local(rules, after.due_at) == "2026-03-10 00:00"  # end of Monday 9 March


def test_limit_in_working_hours(rules):
    view = view_of(rules, [received("2026-03-02 16:00", "P8H")], "2026-03-02 16:01")
    assert local(rules, view.due_at) == "2026-03-03 16:30"


def test_limit_in_calendar_days_moves_off_days_to_the_next_working_day(rules):
    view = view_of(rules, [received("2026-03-02 09:00", "P30C")], "2026-03-02 10:00")
    assert local(rules, view.due_at) == "2026-04-02 00:00"  # Wednesday 1 April
    # 26 March + 30 = Saturday 25 April; 26 and 27 April are Hùng Kings' day off.
    view = view_of(rules, [received("2026-03-26 09:00", "P30C")], "2026-03-26 10:00")
    assert local(rules, view.due_at) == "2026-04-29 00:00"


def test_receipt_due_date_is_authoritative_and_disagreement_is_a_finding(rules):
    view = view_of(rules, [received("2026-03-02 09:00", due_at=iso_of("2026-03-10 17:00")),
                           event("processed", "2026-03-10 16:00")], "2026-03-31 00:00")
    assert view.due_at == at("2026-03-10 17:00")
    assert view.verdict == "on_time"
    assert view.due_mismatch
    agreeing = view_of(rules, [received("2026-03-02 09:00", due_at=iso_of("2026-03-10 00:00"))],
                       "2026-03-03 00:00")
    assert not agreeing.due_mismatch


def test_late_case_is_attributed_to_the_step_that_overran(rules):
    # PSTEP: 3 working days (due end of Thu 5 March), budgets CENTRE 4 h, STP 15 h, UBND 3 h.
    events = [received("2026-03-02 08:00", "PSTEP"),
              event("transferred", "2026-03-02 10:00", from_unit="CENTRE", to_unit="STP",
                    method="electronic"),
              # STP holds it from Mon 10:00 to Thu 15:30: 28 working hours > 15 h.
              event("transferred", "2026-03-05 15:30", from_unit="STP", to_unit="UBND",
                    method="paper"),
              # UBND holds it 1 h 45 min, within budget, but the case is already late.
              event("processed", "2026-03-06 07:45")]
    view = view_of(rules, events, "2026-03-31 00:00")
    assert view.verdict == "late"
    assert view.responsible == ("STP",)


def test_without_budgets_the_holder_at_the_due_instant_is_responsible(rules):
    events = [received("2026-03-02 08:00"),
              event("transferred", "2026-03-02 10:00", from_unit="CENTRE", to_unit="STP",
                    method="electronic"),
              event("transferred", "2026-03-09 15:00", from_unit="STP", to_unit="UBND",
                    method="electronic"),
              event("processed", "2026-03-10 09:00")]
    view = view_of(rules, events, "2026-03-31 00:00")
    assert view.responsible == ("UBND",)
    assert view.holder == "UBND"


def ticked(rules, events, when):
    """The outputs of a case story: applying its events, then one tick at `when`."""
    state, applied = story(rules, events)
    assert applied == []  # events alone bring no output; ticks judge the whole history
    return rules.on_tick(state, at(when))


def test_refusal_without_reason_is_a_finding(rules):
    state, outputs = ticked(rules, [received("2026-03-02 09:00"),
                                    event("refused", "2026-03-02 10:00", stage="reception")],
                            "2026-03-02 10:00")
    assert [o.type for o in outputs] == ["refusal_without_reason", "case_closed"]
    assert outputs[0].event_id == derived_event_id("refusal_without_reason", "C1")
    assert (outputs[0].agency, outputs[0].occurred_at) == ("STP", at("2026-03-02 10:00"))
    view = rules.evaluate(state, at("2026-03-03 00:00"))
    assert view.status == "refused" and view.refusal_without_reason
    assert view.verdict == "early"
    _, outputs = ticked(rules, [received("2026-03-02 09:00"),
                                event("refused", "2026-03-02 10:00", stage="reception",
                                      reason="Hồ sơ không thuộc thẩm quyền")], "2026-03-03 00:00")
    assert [o.type for o in outputs] == ["case_closed"]
    _, outputs = ticked(rules, [received("2026-03-02 09:00"),
                                event("processed", "2026-03-03 10:00", outcome="refused")],
                        "2026-03-04 00:00")
    assert [o.type for o in outputs] == ["refusal_without_reason", "case_closed"]


def test_second_apology_is_rescheduled_twice(rules):
    def apology(when, new_due):
        return event("apology_issued", when, agency="STP", new_due_at=iso_of(new_due),
                     reason="Chờ ý kiến cơ quan phối hợp")

    events = [received("2026-03-02 09:00"),
              apology("2026-03-05 10:00", "2026-03-12 17:00"),
              apology("2026-03-12 10:00", "2026-03-17 17:00"),
              event("processed", "2026-03-16 10:00")]
    state, outputs = ticked(rules, events, "2026-03-31 00:00")
    assert [o.type for o in outputs] == ["apology_required", "rescheduled_twice", "case_closed"]
    assert outputs[1].occurred_at == at("2026-03-12 10:00")
    view = rules.evaluate(state, at("2026-03-31 00:00"))
    assert view.rescheduled_twice
    assert view.apology == "issued_in_time"
    assert not view.late_after_reschedule
    view_missed = view_of(rules, [*events[:3], event("processed", "2026-03-18 10:00")],
                          "2026-03-31 00:00")
    assert view_missed.late_after_reschedule


def test_derived_events_do_not_depend_on_arrival_order(rules):
    def apology(when):
        return event("apology_issued", when, agency="STP", new_due_at=iso_of("2026-03-20 17:00"),
                     reason="Chờ xác minh")

    events = [received("2026-03-02 09:00"), apology("2026-03-05 10:00"),
              apology("2026-03-06 10:00"), event("refused", "2026-03-11 10:00",
                                                 stage="processing")]
    expected = ticked(rules, events, "2026-03-31 00:00")[1]
    assert {o.agency for o in expected} == {"STP"}
    for arrival in (events[::-1], events[1:] + events[:1]):
        assert ticked(rules, arrival, "2026-03-31 00:00")[1] == expected


def test_ticks_warn_before_the_due_date_then_find_the_overdue_case(rules):
    state, _ = story(rules, [received("2026-03-02 09:00"),
                             event("transferred", "2026-03-02 10:00", from_unit="CENTRE",
                                   to_unit="STP", method="electronic")])
    state, outputs = rules.on_tick(state, at("2026-03-05 17:00"))
    assert outputs == []
    # Due end of Monday 9 March; apology due by the end of Friday 6 → warn Friday 07:30.
    state, outputs = rules.on_tick(state, at("2026-03-06 07:30"))
    assert [(o.type, o.agency) for o in outputs] == [("case_at_risk", "STP")]
    state, outputs = rules.on_tick(state, at("2026-03-06 12:00"))
    assert outputs == []  # once only
    state, outputs = rules.on_tick(state, at("2026-03-10 00:00:01"[:16]))
    assert outputs == []  # exactly at the due instant it is not yet overdue
    state, outputs = rules.on_tick(state, at("2026-03-10 00:01"))
    assert [o.type for o in outputs] == ["overdue_detected", "apology_required", "apology_missing"]
    assert all(o.occurred_at == at("2026-03-10 00:00") for o in outputs)
    assert {o.event_id for o in outputs} == {
        derived_event_id(kind, "C1")
        for kind in ("overdue_detected", "apology_required", "apology_missing")
    }
    state, outputs = rules.on_tick(state, at("2026-03-11 09:00"))
    assert outputs == []
    state, _ = rules.apply(state, event("processed", "2026-03-11 10:00"))
    state, outputs = rules.on_tick(state, at("2026-03-11 10:00"))
    assert [o.type for o in outputs] == ["case_closed"]
    assert outputs[0].details == {"verdict": "late", "responsible": ["STP"], "status": "processed"}


def test_duplicates_apply_once_and_arrival_order_does_not_matter(rules):
    events = [received("2026-03-02 09:00"),
              event("transferred", "2026-03-02 10:00", from_unit="CENTRE", to_unit="STP",
                    method="electronic"),
              event("supplement_requested", "2026-03-03 09:00"),
              event("supplement_received", "2026-03-05 09:00"),
              event("transferred", "2026-03-10 10:00", from_unit="STP", to_unit="CENTRE",
                    method="paper"),
              event("processed", "2026-03-10 10:00"),
              event("returned", "2026-03-11 10:00", channel="counter")]
    expected = view_of(rules, events, "2026-03-31 00:00")
    shuffler = random.Random(7)
    for _ in range(20):
        arrival = events + shuffler.sample(events, 3)
        shuffler.shuffle(arrival)
        assert view_of(rules, arrival, "2026-03-31 00:00") == expected
    assert len(expected.transfers) == 2


def test_events_after_as_of_are_not_yet_known(rules):
    events = [received("2026-03-02 09:00"), event("processed", "2026-03-20 10:00")]
    view = view_of(rules, events, "2026-03-10 08:00")
    assert view.status == "open"
    assert view.overdue
    assert view.apology == "missing"


def test_withdrawn_case_has_no_verdict(rules):
    view = view_of(rules, [received("2026-03-02 09:00"), event("withdrawn", "2026-03-03 09:00")],
                   "2026-03-31 00:00")
    assert view.status == "withdrawn"
    assert view.verdict is None
    assert not view.overdue
    assert view.apology == "not_required"


def test_a_supplement_request_after_the_due_instant_gives_no_time_back(rules):
    # Due at 24:00 of Monday 9 March; the request comes on Wednesday 11, the applicant
    # never returns: the case stays late, for the service index too.
    events = [received("2026-03-02 09:00"), event("supplement_requested", "2026-03-11 09:00")]
    for as_of in ("2026-03-11 08:00", "2026-03-25 12:00"):
        view = view_of(rules, events, as_of)
        assert local(rules, view.due_at) == "2026-03-10 00:00"
        assert view.overdue and view.service_index_verdict == "late"
        assert view.apology == "missing"


def test_a_pause_before_acceptance_only_counts_from_acceptance(rules):
    # Requested before the case was received; supplied one working hour after acceptance.
    events = [event("supplement_requested", "2026-02-27 09:00"),
              received("2026-03-02 09:00"),
              event("supplement_received", "2026-03-02 10:00")]
    view = view_of(rules, events, "2026-03-03 00:00")
    # 24:00 of Monday 9 + 1 h is 08:30 on Tuesday 10: an end-of-day due stays one (§11.9).
    assert local(rules, view.due_at) == "2026-03-11 00:00"


def test_an_early_case_is_not_late_after_re_scheduling(rules):
    events = [received("2026-03-02 09:00"),
              event("apology_issued", "2026-03-03 09:00", agency="STP",
                    new_due_at=iso_of("2026-03-04 17:00"), reason="Dự kiến chậm"),
              event("processed", "2026-03-05 10:00")]
    view = view_of(rules, events, "2026-03-31 00:00")
    assert view.verdict == "early"
    assert not view.late_after_reschedule


def test_a_supplement_request_after_processing_does_not_count(rules):
    events = [received("2026-03-02 09:00"),
              event("supplement_requested", "2026-03-03 09:00"),
              event("supplement_received", "2026-03-03 10:00"),
              event("processed", "2026-03-05 10:00"),
              event("supplement_requested", "2026-03-06 09:00")]
    view = view_of(rules, events, "2026-03-31 00:00")
    assert view.supplement_requests == 1
    assert view.service_index_verdict == "on_time"


def test_judging_only_at_next_check_gives_what_hourly_ticks_give(rules):
    """The live pipeline judges a quiet case only at `next_check`; that must miss nothing
    that judging it every hour would find, and find it at the same instants."""
    events = [received("2026-03-02 09:00"),
              event("transferred", "2026-03-03 10:00", from_unit="STP", to_unit="UBND",
                    method="electronic"),
              event("processed", "2026-03-12 10:00"),
              event("returned", "2026-03-13 08:00", channel="counter")]
    state, _ = story(rules, events)

    hourly_state, hourly = state, []
    for hour in range(0, 24 * 16):
        hourly_state, outputs = rules.on_tick(hourly_state, at("2026-03-02 00:00") + 3600 * hour)
        hourly += outputs

    sparse_state, sparse, now, checks = state, [], at("2026-03-02 00:00"), 0
    while now < at("2026-03-18 00:00"):
        sparse_state, outputs = rules.on_tick(sparse_state, now)
        sparse += outputs
        now = rules.next_check(sparse_state, rules.evaluate(sparse_state, now), now)
        checks += 1

    def kinds(outputs):
        return sorted((output.type, output.occurred_at) for output in outputs)

    assert [kind for kind, _ in kinds(sparse)] == sorted(
        ["case_at_risk", "overdue_detected", "apology_required", "apology_missing",
         "case_closed"])
    assert kinds(sparse) == kinds(hourly)
    assert checks < 12  # a handful of instants, not every hour
