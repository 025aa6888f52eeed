import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from onestop.models.calendar import WorkingCalendar
from tests.conftest import at

D = dt.date


def test_tet_2026_is_five_days_off(calendar):
    assert not any(calendar.is_working_day(D(2026, 2, day)) for day in range(16, 21))
    assert calendar.is_working_day(D(2026, 2, 13))
    assert calendar.is_working_day(D(2026, 2, 23))
    # The working day after the last one before Tết is the Monday after it.
    assert calendar.add_working_days(D(2026, 2, 13), 1) == D(2026, 2, 23)


def test_substitute_day_for_a_holiday_on_a_weekend(calendar):
    # Hùng Kings' day 2026 falls on Sunday 26 April; Monday 27 April is off instead.
    assert not calendar.is_working_day(D(2026, 4, 27))
    assert calendar.add_working_days(D(2026, 4, 24), 1) == D(2026, 4, 28)


def test_make_up_saturdays_are_working_days(calendar):
    # 2025: Friday 2 May off, paid back on Saturday 26 April; 2026: Monday 31 August off,
    # paid back on Saturday 22 August.
    assert calendar.is_working_day(D(2025, 4, 26))
    assert not calendar.is_working_day(D(2025, 5, 2))
    assert calendar.is_working_day(D(2026, 8, 22))
    assert not calendar.is_working_day(D(2026, 8, 31))
    assert not calendar.is_working_day(D(2026, 8, 29))  # an ordinary Saturday


def test_overrides_beat_the_statutory_calendar():
    calendar = WorkingCalendar(days_off=[D(2026, 3, 4)], working_days=[D(2026, 2, 18)])
    assert not calendar.is_working_day(D(2026, 3, 4))
    assert calendar.is_working_day(D(2026, 2, 18))
    assert calendar.add_working_days(D(2026, 3, 3), 1) == D(2026, 3, 5)


def test_acceptance_after_hours_moves_to_the_next_working_period(calendar):
    show = lambda t: calendar.to_datetime(t).strftime("%Y-%m-%d %H:%M")  # noqa: E731
    # Friday evening before Tết: accepted on the Monday after Tết at 07:30.
    assert show(calendar.acceptance(at("2026-02-13 20:15"))) == "2026-02-23 07:30"
    # Lunch break: the afternoon period.
    assert show(calendar.acceptance(at("2026-03-03 12:05"))) == "2026-03-03 13:30"
    # Early morning: the same day's first period.
    assert show(calendar.acceptance(at("2026-03-03 06:00"))) == "2026-03-03 07:30"
    # Inside working hours: unchanged.
    assert calendar.acceptance(at("2026-03-03 09:10")) == at("2026-03-03 09:10")
    # A make-up Saturday accepts cases.
    assert show(calendar.acceptance(at("2026-08-22 05:00"))) == "2026-08-22 07:30"


def test_working_hours_per_centre():
    calendar = WorkingCalendar(hours={"XA": ((7 * 3600, 11 * 3600 + 1800),)})
    assert calendar.to_datetime(calendar.acceptance(at("2026-03-03 06:50"), "XA")).hour == 7
    assert calendar.to_datetime(calendar.acceptance(at("2026-03-03 06:50"))).minute == 30
    # Afternoon is closed at XA: next morning.
    assert calendar.acceptance(at("2026-03-03 14:00"), "XA") == at("2026-03-04 07:00")
    assert calendar.working_seconds_between(at("2026-03-03 00:00"), at("2026-03-04 00:00"), "XA") == 4.5 * 3600


def test_working_seconds_skip_nights_lunch_and_holidays(calendar):
    hour = 3600
    assert calendar.working_seconds_between(at("2026-03-03 11:00"), at("2026-03-03 14:00")) == hour
    assert calendar.working_seconds_between(at("2026-02-13 16:00"), at("2026-02-23 08:30")) == 2 * hour
    assert calendar.add_working_seconds(at("2026-02-13 16:00"), 2 * hour) == at("2026-02-23 08:30")
    assert calendar.end_of_day(D(2026, 3, 3)) == at("2026-03-04 00:00")


instants = st.floats(min_value=at("2025-01-01 00:00"), max_value=at("2027-12-31 00:00"))
amounts = st.floats(min_value=1, max_value=400 * 3600)


@settings(max_examples=300, deadline=None)
@given(start=instants, amount=amounts)
def test_adding_working_time_is_undone_by_measuring_it(start, amount):
    calendar = WorkingCalendar()
    end = calendar.add_working_seconds(start, amount)
    assert end > start
    assert abs(calendar.working_seconds_between(start, end) - amount) < 1e-3


@settings(max_examples=300, deadline=None)
@given(a=instants, b=instants, c=instants)
def test_working_time_is_additive(a, b, c):
    calendar = WorkingCalendar()
    a, b, c = sorted((a, b, c))
    between = calendar.working_seconds_between
    assert abs(between(a, b) + between(b, c) - between(a, c)) < 1e-3
    assert 0 <= between(a, c) <= c - a


@settings(max_examples=300, deadline=None)
@given(instant=instants)
def test_acceptance_is_a_working_instant_and_idempotent(instant):
    calendar = WorkingCalendar()
    accepted = calendar.acceptance(instant)
    assert accepted >= instant
    assert calendar.is_working_day(calendar.local_date(accepted))
    assert calendar.acceptance(accepted) == accepted
    # No working time passes between the arrival and its acceptance.
    assert calendar.working_seconds_between(instant, accepted) == 0


@settings(max_examples=300, deadline=None)
@given(day=st.dates(D(2025, 1, 1), D(2027, 12, 31)), count=st.integers(1, 60))
def test_working_days_count_forward_and_back(day, count):
    calendar = WorkingCalendar()
    later = calendar.add_working_days(day, count)
    assert calendar.is_working_day(later)
    span = [day + dt.timedelta(days=n) for n in range(1, (later - day).days + 1)]
    assert sum(calendar.is_working_day(d) for d in span) == count
    if calendar.is_working_day(day):
        assert calendar.add_working_days(later, -count) == day


def test_lookups_far_from_the_first_table_regrow_it_and_stay_right():
    # Each on a fresh calendar, so the lookup itself must grow the table.
    assert WorkingCalendar().local_date(at("2023-06-01 10:00")) == D(2023, 6, 1)
    assert WorkingCalendar().end_of_day(D(2024, 12, 31)) == at("2025-01-01 00:00")
    assert WorkingCalendar().start_of_day(D(2030, 1, 2)) == at("2030-01-02 00:00")
    assert WorkingCalendar().next_working_day_from(D(2030, 1, 5)) == D(2030, 1, 7)
    # The last day of the table's last year still has a next working period.
    calendar = WorkingCalendar()
    # 1 January 2028 is a Saturday: Monday the 3rd is its substitute day off.
    assert calendar.acceptance(at("2027-12-31 18:00")) == at("2028-01-04 07:30")
    assert calendar.period_ends(D(2031, 3, 3))[-1] == at("2031-03-03 17:00")
    assert not WorkingCalendar().after_cutoff(at("2032-03-03 14:00"), 15 * 3600)


def test_instants_outside_the_supported_years_are_a_clear_error():
    import pytest

    calendar = WorkingCalendar()
    far = dt.datetime(9999, 1, 1, tzinfo=dt.UTC).timestamp()
    assert not calendar.supports(far)
    with pytest.raises(ValueError, match="outside the years the working calendar supports"):
        calendar.local_date(far)
    with pytest.raises(ValueError, match="outside the years"):
        calendar.end_of_day(D(2400, 1, 1))
