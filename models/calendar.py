"""Vietnamese working calendar and working-time arithmetic (rulebook §3).

Instants are POSIX seconds (float); the rules compare and add them many times per event,
and floats are cheaper to hold and compare than aware datetimes. Days are local dates in
the calendar's time zone.

Working time is measured as a running total: W(t) = working seconds from the start of the
table to t. Then "working seconds between a and b" is W(b) − W(a), and "t plus x working
seconds" is the first instant whose running total reaches W(t) + x — both a binary search.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import holidays

from models.reference import DEFAULT_PERIODS, Periods, Reference

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


class _Table:
    """Day starts and running working totals for one set of working periods."""

    __slots__ = ("first", "starts", "totals", "working", "periods", "working_counts")

    def __init__(
        self, first: dt.date, starts: list[float], working: list[bool], periods: Periods
    ) -> None:
        self.first = first
        self.starts = starts
        self.working = working
        self.periods = periods
        per_day = sum(end - start for start, end in periods)
        totals = [0.0]
        for is_working in working:
            totals.append(totals[-1] + (per_day if is_working else 0))
        # totals[i] is the running total at the start of day i; totals[i + 1] at its end.
        self.totals = totals
        counts = [0]
        for is_working in working:
            counts.append(counts[-1] + is_working)
        # working_counts[i] is the number of working days before day i.
        self.working_counts = counts


def _within(periods: Periods, offset: float) -> float:
    """Working seconds of a working day between local midnight and `offset`."""
    total = 0.0
    for start, end in periods:
        if offset <= start:
            break
        total += min(offset, end) - start
    return total


class WorkingCalendar:
    """Working days from the `holidays` package (VN) plus the province's overrides."""

    def __init__(
        self,
        timezone: str = DEFAULT_TIMEZONE,
        days_off: Iterable[dt.date] = (),
        working_days: Iterable[dt.date] = (),
        hours: dict[str, Periods] | None = None,
    ) -> None:
        self.zone = ZoneInfo(timezone)
        self._days_off = frozenset(days_off)
        self._working_days = frozenset(working_days)
        self._hours = dict(hours or {})
        self._years = (0, -1)
        self._span = (0.0, 0.0)  # the instants the tables cover
        self._tables: dict[Periods, _Table] = {}
        self._statutory = holidays.country_holidays("VN")

    @classmethod
    def from_reference(cls, reference: Reference, timezone: str = DEFAULT_TIMEZONE) -> WorkingCalendar:
        return cls(timezone, reference.days_off, reference.working_days, reference.working_hours)

    # ---- days -------------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        if day in self._days_off:
            return False
        if day in self._working_days:
            return True
        return bool(self._statutory.is_working_day(day))

    def local_date(self, instant: float) -> dt.date:
        table = self._table_for_instant(instant, DEFAULT_PERIODS)
        return table.first + dt.timedelta(days=self._index(table, instant))

    def start_of_day(self, day: dt.date) -> float:
        table = self._table_for_day(day, DEFAULT_PERIODS)
        return table.starts[(day - table.first).days]

    def end_of_day(self, day: dt.date) -> float:
        """24:00 of `day`, the instant a period counted in days ends (Civil Code Art. 148)."""
        return self.start_of_day(day + dt.timedelta(days=1))

    def add_working_days(self, day: dt.date, count: int) -> dt.date:
        """The `count`-th working day after `day` (before it when negative); 0 gives `day`."""
        if count == 0:
            return day
        margin = dt.timedelta(days=2 * abs(count) + 30)  # weekends and Tết included
        self._cover_days(day - margin, day + margin)
        table = self._tables[DEFAULT_PERIODS]
        index = (day - table.first).days
        counts = table.working_counts
        if count > 0:
            found = bisect_left(counts, counts[index + 1] + count) - 1
        else:
            found = bisect_left(counts, counts[index] + count + 1) - 1
        return table.first + dt.timedelta(days=found)

    def next_working_day_from(self, day: dt.date) -> dt.date:
        """`day` itself if it is a working day, else the next working day."""
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day

    # ---- working time -----------------------------------------------------------------

    def periods(self, centre: str | None) -> Periods:
        return self._hours.get(centre, DEFAULT_PERIODS) if centre else DEFAULT_PERIODS

    def acceptance(self, instant: float, centre: str | None = None) -> float:
        """When a case received at `instant` counts as received: the instant itself inside
        working hours, else the start of the next working period."""
        periods = self.periods(centre)
        table = self._table_for_instant(instant, periods)
        index = self._index(table, instant)
        offset = instant - table.starts[index]
        # The table reaches at least a year past `instant`, far beyond any run of days off.
        while True:
            if table.working[index]:
                for start, end in periods:
                    if offset < end:
                        return table.starts[index] + max(offset, start)
            index += 1
            offset = 0.0

    def working_total(self, instant: float, centre: str | None = None) -> float:
        periods = self.periods(centre)
        table = self._table_for_instant(instant, periods)
        index = self._index(table, instant)
        total = table.totals[index]
        if table.working[index]:
            total += _within(periods, instant - table.starts[index])
        return total

    def working_seconds_between(self, start: float, end: float, centre: str | None = None) -> float:
        if end <= start:
            return 0.0
        self._cover_instants(start, end)  # both totals must come from the same table
        return self.working_total(end, centre) - self.working_total(start, centre)

    def add_working_seconds(self, instant: float, seconds: float, centre: str | None = None) -> float:
        """The first instant at or after `instant` by which `seconds` of working time have
        passed. Adding zero returns `instant` unchanged."""
        if seconds <= 0:
            return instant
        periods = self.periods(centre)
        per_day = sum(end - start for start, end in periods)
        # Make sure the table reaches far enough: at most seconds/per_day working days,
        # plus weekends and holidays (Tết is the longest run, about 9 days).
        self._cover_instants(instant, instant + (seconds / per_day * 2 + 30) * 86400)
        target = self.working_total(instant, centre) + seconds
        table = self._tables[periods]
        # The first day whose end-of-day total reaches the target.
        index = bisect_left(table.totals, target, lo=1) - 1
        remaining = target - table.totals[index]
        for start, end in periods:
            if remaining <= end - start:
                return table.starts[index] + start + remaining
            remaining -= end - start
        raise AssertionError("working-time table is inconsistent")  # pragma: no cover

    def is_close_of_day(self, instant: float, centre: str | None = None) -> bool:
        """True when `instant` is the end of the day's last working period."""
        table = self._table_for_instant(instant, self.periods(centre))
        index = self._index(table, instant)
        return abs(instant - table.starts[index] - self.periods(centre)[-1][1]) < 1e-6

    def after_cutoff(self, instant: float, cutoff: int) -> bool:
        table = self._table_for_instant(instant, DEFAULT_PERIODS)
        return instant - table.starts[self._index(table, instant)] > cutoff

    # ---- conversions ------------------------------------------------------------------

    def to_datetime(self, instant: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(instant, self.zone)

    def instant(self, day: dt.date, seconds_after_midnight: float = 0) -> float:
        return self.start_of_day(day) + seconds_after_midnight

    # ---- tables -----------------------------------------------------------------------

    @staticmethod
    def _index(table: _Table, instant: float) -> int:
        return bisect_right(table.starts, instant) - 1

    def _table_for_instant(self, instant: float, periods: Periods) -> _Table:
        table = self._tables.get(periods)
        if table is not None and table.starts[0] <= instant < table.starts[-1]:
            return table
        # A rough local date is enough to choose the years; the table is exact.
        year = dt.datetime.fromtimestamp(instant, self.zone).year
        self._cover(year)
        return self._tables[periods] if periods in self._tables else self._build(periods)

    def _cover_days(self, *days: dt.date) -> None:
        for day in days:
            self._table_for_day(day, DEFAULT_PERIODS)

    def _cover_instants(self, *instants: float) -> None:
        for instant in instants:
            if not self._span[0] <= instant < self._span[1]:
                self._cover(dt.datetime.fromtimestamp(instant, self.zone).year)

    def _table_for_day(self, day: dt.date, periods: Periods) -> _Table:
        table = self._tables.get(periods)
        if table is not None and 0 <= (day - table.first).days < len(table.starts) - 1:
            return table
        self._cover(day.year)
        return self._tables[periods] if periods in self._tables else self._build(periods)

    def _cover(self, year: int) -> None:
        """Grow the tables to whole years around `year`, rebuilding every profile."""
        low, high = self._years
        if low <= year - 1 and year + 1 <= high:
            return
        if high < low:
            low, high = year - 1, year + 1
        low, high = min(low, year - 1), max(high, year + 1)
        self._years = (low, high)
        profiles = list(self._tables) or [DEFAULT_PERIODS]
        self._tables.clear()
        for periods in profiles:
            table = self._build(periods)
        self._span = (table.starts[0], table.starts[-1])

    def _build(self, periods: Periods) -> _Table:
        low, high = self._years
        first = dt.date(low, 1, 1)
        days = (dt.date(high + 1, 1, 1) - first).days
        starts = []
        working = []
        for number in range(days + 1):
            day = first + dt.timedelta(days=number)
            starts.append(dt.datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp())
            if number < days:
                working.append(self.is_working_day(day))
        table = _Table(first, starts, working, periods)
        self._tables[periods] = table
        return table

