from onestop.models.aggregates import (
    WAIT_BUCKET_SECONDS,
    AgencyFigures,
    CentreFigures,
    Period,
    Ratio,
    add_case,
    add_visit,
    add_wait_histograms,
    percentile,
    province_total,
    service_index_groups,
    wait_histogram,
    wait_histogram_percentile,
)
from onestop.models.queue import Visit
from tests.conftest import at, event, received, view_of


def test_ratio_is_summed_then_divided_never_averaged():
    small, large = Ratio(1, 1), Ratio(50, 100)
    total = Ratio()
    total += small
    total += large
    assert total.to_json() == {"numerator": 51, "denominator": 101, "ratio": round(51 / 101, 6)}
    assert Ratio().to_json()["ratio"] is None


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0.5) == 5
    assert percentile(values, 0.9) == 9
    assert percentile([7.0], 0.9) == 7
    assert percentile([], 0.5) is None


def story_views(rules, as_of):
    on_time = view_of(rules, [received("2026-03-02 09:00", case_id="A", channel="online", fee=50000),
                              event("paid", "2026-03-02 09:05", case_id="A", method="online", amount=50000),
                              event("transferred", "2026-03-02 10:00", case_id="A", from_unit="CENTRE",
                                    to_unit="STP", method="electronic"),
                              event("processed", "2026-03-05 10:00", case_id="A",
                                    electronic_result=True)], as_of)
    late = view_of(rules, [received("2026-03-02 09:00", case_id="B", fee=0),
                           event("transferred", "2026-03-02 10:00", case_id="B", from_unit="CENTRE",
                                 to_unit="STP", method="paper"),
                           event("apology_issued", "2026-03-05 10:00", case_id="B", agency="STP",
                                 new_due_at="2026-03-13T17:00:00+07:00", reason="Chờ xác minh"),
                           event("processed", "2026-03-11 10:00", case_id="B",
                                 electronic_result=False)], as_of)
    overdue = view_of(rules, [received("2026-03-02 09:00", case_id="C", channel="postal", fee=20000)],
                      as_of)
    return [on_time, late, overdue]


def test_agency_figures_follow_the_rulebook(rules):
    as_of = "2026-03-31 00:00"
    figures: dict[str, AgencyFigures] = {}
    for view in story_views(rules, as_of):
        add_case(figures, view, Period(float("-inf"), at(as_of)), frozenset())
    stp = figures["STP"].to_json()
    assert (stp["received"], stp["ended"], stp["early"], stp["on_time"], stp["late"]) == (3, 2, 1, 0, 1)
    assert stp["overdue_open"] == 1
    assert stp["completed_on_time_rate"] == {"numerator": 1, "denominator": 2, "ratio": 0.5}
    # Service index: ended early/on time (A) + open not past due (none) over 3 handled.
    assert stp["service_index_on_time_rate"]["numerator"] == 1
    assert stp["service_index_on_time_rate"]["denominator"] == 3
    assert (stp["apologies_required"], stp["apologies_in_time"], stp["apologies_missing"]) == (2, 1, 1)
    assert (stp["received_online"], stp["received_counter"], stp["received_postal"]) == (1, 1, 1)
    assert stp["online_payment_share"] == {"numerator": 1, "denominator": 2, "ratio": 0.5}
    assert stp["electronic_result_share"]["numerator"] == 1
    # Hand-offs count under their sender.
    assert figures["CENTRE"].e_transfer_share.to_json() == {"numerator": 1, "denominator": 2, "ratio": 0.5}
    assert figures["CENTRE"].received == 0
    province = province_total(figures.values())
    assert province.received == 3 and province.e_transfer_share.denominator == 2


def test_period_counts_only_what_happened_in_it(rules):
    # Judged as of the end of 4 March: nothing has ended yet, all three are open.
    as_of = "2026-03-05 00:00"
    figures: dict[str, AgencyFigures] = {}
    for view in story_views(rules, as_of):
        add_case(figures, view, Period(at("2026-03-03 00:00"), at(as_of)), frozenset())
    stp = figures["STP"]
    assert stp.received == 0  # received on 2 March, before the period
    assert stp.ended == 0
    assert stp.service_index_on_time_rate.denominator == 3  # carried over, still open
    assert stp.overdue_open == 0
    assert "CENTRE" not in figures  # the hand-offs were before the period


def test_service_index_groups_say_what_was_computed():
    figures = AgencyFigures()
    figures.service_index_on_time_rate = Ratio(9, 10)
    groups = service_index_groups(figures)
    assert groups["publicity"] == {"max": 18, "status": "not_available", "score": None, "computed_max": 0}
    assert groups["progress"] == {"max": 20, "status": "computed", "score": 18.0, "computed_max": 20}
    assert groups["online_payment"]["status"] == "not_available"  # no fee-bearing case
    figures.online_payment_share = Ratio(1, 2)
    assert service_index_groups(figures)["online_payment"] == {
        "max": 10, "status": "partial", "score": 3.0, "computed_max": 6}


def test_waits_against_the_target_by_centre():
    centres: dict[str, CentreFigures] = {}
    period = Period(float("-inf"), float("inf"))
    for number, wait in enumerate([300.0, 900.0, 901.0, None]):
        add_visit(centres, Visit(f"T{number}", "CENTRE", 0.0, None, None, wait, 0, False, None),
                  period, 900)
    add_visit(centres, Visit("T9", "CENTRE", 0.0, 5.0, "Q", None, 1, True, None), period, 900)
    figures = centres["CENTRE"].to_json()
    assert figures["visits_waited"] == 3
    assert figures["wait_within_target"] == {"numerator": 2, "denominator": 3, "ratio": round(2 / 3, 6)}
    assert (figures["wait_p50_seconds"], figures["wait_p90_seconds"]) == (900.0, 901.0)
    assert (figures["no_shows"], figures["recalls"], figures["waiting_now"]) == (1, 1, 1)
    assert figures["wait_histogram"] == [[5, 1], [15, 1], [16, 1]]
    assert "wait_histogram" not in centres["CENTRE"].replay_json()


def test_wait_percentiles_from_summed_histograms_are_exact_to_the_minute():
    """Minute n counts the waits over n − 1 and up to n minutes; a percentile of summed
    histograms is the upper end of the minute the exact (nearest-rank) percentile of all
    the waits falls in: never under it, less than a minute over."""
    assert wait_histogram([0.0, 59.0, 60.0, 61.0, 901.0]) == [[0, 1], [1, 2], [2, 1], [16, 1]]
    assert wait_histogram([10 * 86400.0])[0][0] * WAIT_BUCKET_SECONDS <= 86400  # one last minute
    assert wait_histogram_percentile([], 0.5) is None
    parts = [[12.0, 700.0, 45.5], [905.0, 899.0], [3000.0, 61.0, 62.0, 600.0, 1.0]]
    summed = add_wait_histograms(wait_histogram(part) for part in parts)
    everything = sorted(wait for part in parts for wait in part)
    for fraction in (0.1, 0.5, 0.9, 1.0):
        exact = percentile(everything, fraction)
        estimate = wait_histogram_percentile(summed, fraction)
        assert exact is not None and estimate is not None
        assert 0 <= estimate - exact < WAIT_BUCKET_SECONDS, (fraction, exact, estimate)


def test_a_source_overdue_notice_that_disagrees_is_a_finding(rules):
    as_of = "2026-03-31 00:00"
    wrong = view_of(rules, [received("2026-03-02 09:00", case_id="W"),
                            event("overdue", "2026-03-05 09:00", case_id="W"),
                            event("processed", "2026-03-06 10:00", case_id="W")], as_of)
    right = view_of(rules, [received("2026-03-02 09:00", case_id="R"),
                            event("overdue", "2026-03-10 09:00", case_id="R"),
                            event("processed", "2026-03-11 10:00", case_id="R")], as_of)
    figures: dict[str, AgencyFigures] = {}
    for view in (wrong, right):
        add_case(figures, view, Period(float("-inf"), at(as_of)), frozenset())
    assert figures["STP"].overdue_notice_mismatches == 1


def test_consecutive_periods_count_an_instant_at_midnight_once(rules):
    # Received and processed exactly at 24:00 of 31 March: March's, not April's.
    view = view_of(rules, [received("2026-04-01 00:00", case_id="M"),
                           event("processed", "2026-04-01 00:00", case_id="M")],
                   "2026-04-30 00:00")
    march: dict[str, AgencyFigures] = {}
    april: dict[str, AgencyFigures] = {}
    add_case(march, view, Period(at("2026-03-01 00:00"), at("2026-04-01 00:00")), frozenset())
    add_case(april, view, Period(at("2026-04-01 00:00"), at("2026-05-01 00:00")), frozenset())
    assert (march["STP"].received, march["STP"].ended) == (1, 1)
    assert (april["STP"].received, april["STP"].ended) == (0, 0)
    assert april["STP"].service_index_on_time_rate.denominator == 0


def test_electronic_result_counts_paper_result_procedures_and_postal_counts_returns(rules):
    as_of = "2026-05-31 00:00"
    paper = view_of(rules, [received("2026-03-02 09:00", case_id="P", channel="counter"),
                            event("processed", "2026-03-05 10:00", case_id="P",
                                  electronic_result=True),
                            event("returned", "2026-03-06 10:00", case_id="P",
                                  channel="postal")], as_of)
    no_paper = view_of(rules, [received("2026-03-02 09:00", "P30C", case_id="N"),
                               event("processed", "2026-03-05 10:00", case_id="N",
                                     electronic_result=True)], as_of)
    figures: dict[str, AgencyFigures] = {}
    for view in (paper, no_paper):
        add_case(figures, view, Period(float("-inf"), at(as_of)), frozenset())
    stp = figures["STP"]
    assert stp.electronic_result_share.to_json()["denominator"] == 1
    assert stp.postal_share.to_json() == {"numerator": 1, "denominator": 2, "ratio": 0.5}
