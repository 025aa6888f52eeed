"""Vietnamese working calendar and working-time arithmetic (rulebook §3).

Instants are POSIX seconds (float): the rules compare and add them many times per event,
and floats are cheaper to hold and compare than aware datetimes. Days are local dates in
the calendar's time zone, which is assumed not to change its offset in the middle of a
day (true of Asia/Ho_Chi_Minh, which has no daylight saving time).

The calendar keeps a table of whole years of days (grown on demand): each day's date,
start instant, offset and whether it is a working day, and a running count of working
days. For each set of working hours it keeps the running total of working seconds
W(t); "working seconds between a and b" is W(b) − W(a), and "t plus x working seconds" is
the first instant whose running total reaches W(t) + x — both binary searches.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import holidays

from .reference import DEFAULT_PERIODS, Periods, Reference

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
# The table starts around this year and grows to whatever years the events need; the rules
# never read the wall clock, not even to size a table.
_FIRST_TABLE_YEAR = 2026
# Years the calendar counts in; an instant outside them is a data error, not a date.
SUPPORTED_YEARS = (1950, 2200)
# Years its table may reach: deadlines reckoned from supported instants (a procedure's
# limit, a receipt's due date moved by pauses) may run past the supported years, and
# judging such a case must not fail.
_TABLE_YEARS = (SUPPORTED_YEARS[0] - 50, SUPPORTED_YEARS[1] + 200)


def _within(periods: Periods, offset: float) -> float:
    """Working seconds of a working day between local midnight and `offset`."""
    total = 0.0
    for start, end in periods:
        if offset <= start:
            break
        total += min(offset, end) - start
    return total


def _at_midnight(moment: dt.datetime) -> bool:
    return moment.hour == moment.minute == moment.second == moment.microsecond == 0


def shown_date(moment: dt.datetime) -> dt.date:
    """The date a person is told for `moment`: 24:00, the end of a day, is that day's
    date, not the next day's 00:00 (rulebook §11.13; Civil Code Art. 148)."""
    if _at_midnight(moment):
        return moment.date() - dt.timedelta(days=1)
    return moment.date()


def shown_instant(moment: dt.datetime) -> str:
    """`moment` in Vietnamese text: "09/03/2026" for the end of 9 March (a due counted in
    days), "17:00 ngày 09/03/2026" for a time of day (rulebook §11.13)."""
    day = f"{shown_date(moment):%d/%m/%Y}"
    if _at_midnight(moment):
        return day
    return f"{moment:%H:%M} ngày {day}"


def _offset_text(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


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
        self._statutory = holidays.country_holidays("VN")
        self._first_year = self._last_year = 0
        self._first_ordinal = 0
        self._days: list[dt.date] = []
        self._starts: list[float] = []  # one more than days: the start of the day after
        self._prefixes: list[str] = []  # "2026-03-10T"
        self._offsets: list[str] = []  # "+07:00"
        self._working: list[bool] = []
        self._working_counts: list[int] = []  # [i]: working days before day i
        self._totals: dict[Periods, list[float]] = {}  # [i]: working seconds before day i
        self._supported = (
            dt.datetime(SUPPORTED_YEARS[0], 1, 1, tzinfo=self.zone).timestamp(),
            dt.datetime(SUPPORTED_YEARS[1], 1, 1, tzinfo=self.zone).timestamp(),
        )
        self._countable = (
            dt.datetime(_TABLE_YEARS[0], 1, 1, tzinfo=self.zone).timestamp(),
            dt.datetime(_TABLE_YEARS[1], 1, 1, tzinfo=self.zone).timestamp(),
        )
        self._cover_year(_FIRST_TABLE_YEAR)

    @classmethod
    def from_reference(
        cls, reference: Reference, timezone: str = DEFAULT_TIMEZONE
    ) -> WorkingCalendar:
        return cls(timezone, reference.days_off, reference.working_days, reference.working_hours)

    # ---- days -------------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        if day in self._days_off:
            return False
        if day in self._working_days:
            return True
        return bool(self._statutory.is_working_day(day))

    def local_date(self, instant: float) -> dt.date:
        index = self._instant_index(instant)  # may regrow the table: index first
        return self._days[index]

    def start_of_day(self, day: dt.date) -> float:
        index = self._day_index(day)
        return self._starts[index]

    def end_of_day(self, day: dt.date) -> float:
        """24:00 of `day`, the instant a period counted in days ends (Civil Code Art. 148)."""
        index = self._day_index(day)
        return self._starts[index + 1]

    def is_end_of_day(self, instant: float) -> bool:
        """True at 24:00 of a day, where a period counted in days ends."""
        index = self._instant_index(instant)
        return instant == self._starts[index]

    def day_ending(self, instant: float) -> dt.date:
        """The day `instant` falls in, 24:00 counting as the end of the day before: a due at
        24:00 of 9 March is due on 9 March (the rules' form of `shown_date`)."""
        index = self._instant_index(instant)
        return self._days[index - 1] if instant == self._starts[index] else self._days[index]

    def add_working_days(self, day: dt.date, count: int) -> dt.date:
        """The `count`-th working day after `day` (before it when negative); 0 gives `day`."""
        if count == 0:
            return day
        margin = dt.timedelta(days=2 * abs(count) + 30)  # surely holds `count` working days
        self._day_index(day - margin)
        self._day_index(day + margin)
        index = self._day_index(day)
        counts = self._working_counts
        if count > 0:
            found = bisect_left(counts, counts[index + 1] + count) - 1
        else:
            found = bisect_left(counts, counts[index] + count + 1) - 1
        return self._days[found]

    def next_working_day_from(self, day: dt.date) -> dt.date:
        """`day` itself if it is a working day, else the next working day."""
        index = self._day_index(day)
        return day if self._working[index] else self.add_working_days(day, 1)

    # ---- working time -----------------------------------------------------------------

    def periods(self, centre: str | None) -> Periods:
        return self._hours.get(centre, DEFAULT_PERIODS) if centre else DEFAULT_PERIODS

    def acceptance(self, instant: float, centre: str | None = None) -> float:
        """When a case received at `instant` counts as received: the instant itself inside
        working hours, else the start of the next working period."""
        periods = self.periods(centre)
        index = self._instant_index(instant)
        offset = instant - self._starts[index]
        # The table reaches at least a year past `instant`, far beyond any run of days off.
        while True:
            if self._working[index]:
                for start, end in periods:
                    if offset < end:
                        return self._starts[index] + max(offset, start)
            index += 1
            offset = 0.0

    def working_total(self, instant: float, centre: str | None = None) -> float:
        """Working seconds from the start of the table to `instant`. Only differences of
        totals mean anything, and only while the table is not regrown in between."""
        periods = self.periods(centre)
        index = self._instant_index(instant)
        total = self._totals_for(periods)[index]
        if self._working[index]:
            total += _within(periods, instant - self._starts[index])
        return total

    def working_seconds_between(
        self, start: float, end: float, centre: str | None = None
    ) -> float:
        if end <= start:
            return 0.0
        self._instant_index(start)  # both totals must come from the same table
        self._instant_index(end)
        return self.working_total(end, centre) - self.working_total(start, centre)

    def add_working_seconds(
        self, instant: float, seconds: float, centre: str | None = None
    ) -> float:
        """The first instant at or after `instant` by which `seconds` of working time have
        passed. Adding zero returns `instant` unchanged."""
        if seconds <= 0:
            return instant
        periods = self.periods(centre)
        per_day = sum(end - start for start, end in periods)
        # Cover both ends first: a regrown table would shift the running totals.
        self._instant_index(instant)
        self._instant_index(instant + (seconds / per_day * 2 + 30) * 86400)
        target = self.working_total(instant, centre) + seconds
        totals = self._totals_for(periods)
        # The first day whose end-of-day total reaches the target.
        index = bisect_left(totals, target, lo=1) - 1
        remaining = target - totals[index]
        for start, end in periods:
            if remaining <= end - start:
                return self._starts[index] + start + remaining
            remaining -= end - start
        raise AssertionError("working-time table is inconsistent")  # pragma: no cover

    def period_ends(self, day: dt.date, centre: str | None = None) -> tuple[float, ...]:
        """The instants `day`'s working periods end, the close of the working day last."""
        start = self.start_of_day(day)
        return tuple(start + end for _, end in self.periods(centre))

    def after_cutoff(self, instant: float, cutoff: int) -> bool:
        index = self._instant_index(instant)
        return instant - self._starts[index] > cutoff

    # ---- conversions ------------------------------------------------------------------

    def to_datetime(self, instant: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(instant, self.zone)

    def isoformat(self, instant: float) -> str:
        """RFC 3339 local time with offset, e.g. 2026-03-10T00:00:00+07:00."""
        index = self._instant_index(instant)
        seconds = instant - self._starts[index]
        if seconds != int(seconds):
            return self.to_datetime(instant).isoformat()
        minutes, second = divmod(int(seconds), 60)
        hour, minute = divmod(minutes, 60)
        return f"{self._prefixes[index]}{hour:02d}:{minute:02d}:{second:02d}{self._offsets[index]}"

    # ---- the table --------------------------------------------------------------------

    def supports(self, instant: float) -> bool:
        """Whether `instant` falls in the years events may state (SUPPORTED_YEARS); the
        deadlines reckoned from them may run on into the table's margin."""
        return self._supported[0] <= instant < self._supported[1]

    # Every lookup keeps at least a whole year of table on either side of what it looks
    # up, so that walking forward or back from it never runs off the table. Callers take
    # the index before reading the lists: a lookup may regrow (replace) them.

    def _instant_index(self, instant: float) -> int:
        if not self._inner[0] <= instant < self._inner[1]:
            if not self._countable[0] <= instant < self._countable[1]:
                raise ValueError(
                    f"instant {instant:.0f} is outside the years the working calendar "
                    f"supports ({_TABLE_YEARS[0]}–{_TABLE_YEARS[1] - 1})"
                )
            self._cover_year(dt.datetime.fromtimestamp(instant, self.zone).year)
        return bisect_right(self._starts, instant) - 1

    def _day_index(self, day: dt.date) -> int:
        if not self._first_year < day.year < self._last_year:
            if not _TABLE_YEARS[0] <= day.year < _TABLE_YEARS[1]:
                raise ValueError(
                    f"{day} is outside the years the working calendar supports "
                    f"({_TABLE_YEARS[0]}–{_TABLE_YEARS[1] - 1})"
                )
            self._cover_year(day.year)
        return day.toordinal() - self._first_ordinal

    def _cover_year(self, year: int) -> None:
        """Grow the table to whole years including the years around `year`."""
        if self._days and self._first_year < year < self._last_year:
            return
        first = min(year - 1, self._first_year) if self._days else year - 1
        last = max(year + 1, self._last_year) if self._days else year + 1
        self._first_year, self._last_year = first, last
        first_day = dt.date(first, 1, 1)
        count = (dt.date(last + 1, 1, 1) - first_day).days
        days = [first_day + dt.timedelta(days=n) for n in range(count + 1)]
        self._first_ordinal = first_day.toordinal()
        starts = [dt.datetime(d.year, d.month, d.day, tzinfo=self.zone) for d in days]
        self._starts = [start.timestamp() for start in starts]
        self._offsets = [_offset_text(int(s.utcoffset().total_seconds())) for s in starts]  # type: ignore[union-attr]
        self._days = days[:-1]
        self._inner = (
            dt.datetime(first + 1, 1, 1, tzinfo=self.zone).timestamp(),
            dt.datetime(last, 1, 1, tzinfo=self.zone).timestamp(),
        )
        self._prefixes = [f"{day.isoformat()}T" for day in self._days]
        self._working = [self.is_working_day(day) for day in self._days]
        counts = [0]
        for working in self._working:
            counts.append(counts[-1] + working)
        self._working_counts = counts
        self._totals = {}

    def _totals_for(self, periods: Periods) -> list[float]:
        totals = self._totals.get(periods)
        if totals is None:
            per_day = sum(end - start for start, end in periods)
            totals = [0.0]
            for working in self._working:
                totals.append(totals[-1] + (per_day if working else 0))
            self._totals[periods] = totals
        return totals
