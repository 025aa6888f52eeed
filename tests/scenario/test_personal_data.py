"""The applicant's personal data in a case's state (contract §2; Decree 13/2023/NĐ-CP):
kept only while the case may still need an apology letter, and erased on request.

The small reference's five-working-day case received on Monday 2 March 2026 is due at
24:00 of Monday 9 March."""

from onestop.models.case import CaseRules, CaseState, holds_applicant
from onestop.models.judge import first_instant, judge_case
from tests.conftest import at, event, received, story

APPLICANT = {"name": "Nguyễn Văn An", "address": "5 Trần Phú, Sông Xanh",
             "phone": "0912345678"}
LATER = "2026-03-31 00:00"


def judged(rules: CaseRules, events: list, when: str = LATER) -> CaseState:
    state, _ = story(rules, events)
    return judge_case(rules, state, first_instant(state), at(when)).state


def test_an_open_case_keeps_its_applicant(rules):
    state = judged(rules, [received("2026-03-02 09:00", applicant=APPLICANT)], "2026-03-04 10:00")
    assert holds_applicant(state)


def test_a_case_ended_on_time_drops_its_applicant(rules):
    state = judged(rules, [received("2026-03-02 09:00", applicant=APPLICANT),
                           event("processed", "2026-03-05 10:00")])
    assert not holds_applicant(state)
    # Nothing else of the case changes.
    assert [fact.kind for fact in state.facts] == ["received", "processed"]


def test_a_late_case_without_an_apology_keeps_its_applicant_until_the_apology(rules):
    late = [received("2026-03-02 09:00", applicant=APPLICANT),
            event("processed", "2026-03-12 10:00")]
    assert holds_applicant(judged(rules, late))
    apologised = [*late, event("apology_issued", "2026-03-13 09:00", agency="STP",
                               new_due_at="2026-03-20T17:00:00+07:00", reason="Chậm thẩm định")]
    assert not holds_applicant(judged(rules, apologised))


def test_a_withdrawn_case_drops_its_applicant(rules):
    state = judged(rules, [received("2026-03-02 09:00", applicant=APPLICANT),
                           event("withdrawn", "2026-03-03 09:00")])
    assert not holds_applicant(state)


def test_an_erased_applicant_is_gone_at_once_and_for_good(rules):
    state, _ = story(rules, [received("2026-03-02 09:00", applicant=APPLICANT),
                             event("applicant_erased", "2026-03-03 09:00")])
    assert not holds_applicant(state)
    # A copy of the receipt that arrives after the request (a re-sent event, a replay in
    # another order) does not bring it back.
    state, _ = story(rules, [event("applicant_erased", "2026-03-03 09:00"),
                             received("2026-03-02 09:00", applicant=APPLICANT)])
    assert not holds_applicant(state)
    # The case is judged as before: the rules never read the applicant.
    kept, _ = story(rules, [received("2026-03-02 09:00", applicant=APPLICANT)])
    erased, _ = story(rules, [received("2026-03-02 09:00", applicant=APPLICANT),
                              event("applicant_erased", "2026-03-03 09:00")])
    before, after = rules.evaluate(kept, at(LATER)), rules.evaluate(erased, at(LATER))
    assert before is not None and after is not None
    assert (before.status, before.due_at, before.overdue) == (
        after.status, after.due_at, after.overdue)
    assert before.applicant is not None and after.applicant is None


def test_the_applicant_stays_while_stragglers_may_still_make_the_case_late() -> None:
    """With an allowed lateness, a case ended on time keeps its applicant until it is
    closed for good: a late event within that time could still make it late."""
    from onestop.models.case import RuleSettings
    from tests.conftest import small_reference

    patient = CaseRules(small_reference(), settings=RuleSettings(allowed_lateness_seconds=3600))
    events = [received("2026-03-02 09:00", applicant=APPLICANT),
              event("processed", "2026-03-05 10:00")]
    assert holds_applicant(judged(patient, events, "2026-03-05 10:30"))
    assert not holds_applicant(judged(patient, events, "2026-03-05 11:00"))
