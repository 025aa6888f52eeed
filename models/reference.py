"""Reference data: procedures, agencies, calendar overrides, working hours, targets.

Loaded from a directory of CSV files (event contract §4) that province staff edit in a
spreadsheet, so every error names the file, the line and the column.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .targets import TARGETS

SAMPLE_PROVINCE = Path(__file__).parent / "sample_province"

LimitUnit = Literal["working_days", "calendar_days", "working_hours", "same_day"]
LIMIT_UNITS: tuple[LimitUnit, ...] = ("working_days", "calendar_days", "working_hours", "same_day")
LEVELS = ("province", "district", "commune")

# Working periods of a day, as (start, end) seconds after local midnight.
Periods = tuple[tuple[int, int], ...]
DEFAULT_PERIODS: Periods = ((7 * 3600 + 1800, 11 * 3600 + 1800), (13 * 3600 + 1800, 17 * 3600))
DEFAULT_SAME_DAY_CUTOFF = 15 * 3600
# A paper case accepted by this time of day leaves the centre the same day (rulebook §11.11).
DEFAULT_HANDOFF_CUTOFF = 15 * 3600

# The metrics targets.csv may set: the targets the rules judge, named once (targets.py).
TARGET_METRICS = frozenset(target.metric for target in TARGETS)


class ReferenceError(ValueError):
    """A reference file that cannot be used; the message names file, line and column."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a procedure's internal process with its budget in working seconds."""

    unit: str
    budget_seconds: int


@dataclass(frozen=True, slots=True)
class Procedure:
    code: str
    name: str
    field: str
    level: str
    limit: float
    limit_unit: LimitUnit
    same_day_cutoff: int = DEFAULT_SAME_DAY_CUTOFF
    fee_bearing: bool | None = None
    paper_result: bool | None = None
    full_online_eligible: bool | None = None
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True, slots=True)
class Agency:
    code: str
    name: str
    level: str
    parent: str | None
    head_name: str
    head_email: str
    centre: str


@dataclass(frozen=True, slots=True)
class Reference:
    procedures: dict[str, Procedure]
    agencies: dict[str, Agency]
    days_off: frozenset[dt.date] = frozenset()
    working_days: frozenset[dt.date] = frozenset()
    working_hours: dict[str, Periods] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    # Per centre, the time of day by which an accepted paper case must leave that day.
    handoff_cutoffs: dict[str, int] = field(default_factory=dict)

    def handoff_cutoff(self, centre: str) -> int:
        return self.handoff_cutoffs.get(centre, DEFAULT_HANDOFF_CUTOFF)


class _Row:
    """A CSV row that reports its position when a value is wrong."""

    def __init__(self, path: Path, line: int, values: dict[str, str]) -> None:
        self.path, self.line, self.values = path, line, values

    def error(self, column: str, message: str) -> ReferenceError:
        return ReferenceError(f"{self.path.name}, line {self.line}, column '{column}': {message}")

    def text(self, column: str, required: bool = True) -> str:
        value = (self.values.get(column) or "").strip()
        if required and not value:
            raise self.error(column, "a value is required")
        return value

    def boolean(self, column: str) -> bool | None:
        value = self.text(column, required=False).lower()
        if value == "":
            return None
        if value in ("true", "false"):
            return value == "true"
        raise self.error(column, f"expected true, false or empty, got '{value}'")

    def number(self, column: str, minimum: float = 0, maximum: float = math.inf) -> float:
        value = self.text(column)
        try:
            number = float(value)
        except ValueError:
            raise self.error(column, f"expected a number, got '{value}'") from None
        if not math.isfinite(number):
            raise self.error(column, f"expected a number, got '{value}'")
        if number < minimum:
            raise self.error(column, f"must be at least {minimum:g}, got {value}")
        if number > maximum:
            raise self.error(column, f"must be at most {maximum:g}, got {value}")
        return number

    def choice(self, column: str, allowed: tuple[str, ...]) -> str:
        value = self.text(column)
        if value not in allowed:
            raise self.error(column, f"expected one of {', '.join(allowed)}; got '{value}'")
        return value

    def date(self, column: str) -> dt.date:
        value = self.text(column)
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise self.error(column, f"expected a date as YYYY-MM-DD, got '{value}'") from None

    def clock_time(self, column: str, default: int) -> int:
        value = self.text(column, required=False)
        if not value:
            return default
        return _parse_clock(value, lambda message: self.error(column, message))


def _parse_clock(value: str, fail: object) -> int:
    try:
        hours, minutes = value.split(":")
        seconds = int(hours) * 3600 + int(minutes) * 60
    except ValueError:
        seconds = -1
    if not 0 <= seconds <= 24 * 3600:
        raise fail(f"expected a time as HH:MM, got '{value}'")  # type: ignore[operator]
    return seconds


def _text(path: Path) -> str:
    """A reference file's text; a file that is not UTF-8 is named with its first bad line."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ReferenceError(f"{path.name}: cannot be read ({error.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        start = error.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, start) + 1
        raise ReferenceError(
            f"{path.name}, line {line}: not UTF-8 text (save the file as CSV UTF-8)"
        ) from None


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[_Row]:
    # A small file, read whole, so that an encoding fault can name its line.
    reader = csv.DictReader(io.StringIO(_text(path), newline=""))
    try:
        header = tuple(name.strip() for name in reader.fieldnames or ())
        missing = [name for name in columns if name not in header]
        if missing:
            raise ReferenceError(
                f"{path.name}, line 1: missing column(s) {', '.join(missing)}; "
                f"expected header {','.join(columns)}"
            )
        for values in reader:
            # Cells beyond the header's columns come as a list under None: empty ones
            # (a spreadsheet's trailing commas) do not matter, others are an error.
            extra = values.pop(None, None) or []
            if any(cell.strip() for cell in extra):
                raise ReferenceError(
                    f"{path.name}, line {reader.line_num}: more cells than the header has "
                    f"columns ({len(header)})"
                )
            values = {(k or "").strip(): v for k, v in values.items()}
            if not any((v or "").strip() for v in values.values()):
                continue
            yield _Row(path, reader.line_num, values)
    except csv.Error as error:
        raise ReferenceError(f"{path.name}, line {reader.line_num}: {error}") from None


def _unique(row: _Row, seen: set[str], column: str) -> str:
    code = row.text(column)
    if code in seen:
        raise row.error(column, f"duplicate code '{code}'")
    seen.add(code)
    return code


def load_reference(directory: Path | str) -> Reference:
    """Load and cross-check a reference directory; raise ReferenceError on the first fault."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ReferenceError(f"reference directory {directory} does not exist")
    agencies = _load_agencies(directory / "agencies.csv")
    procedures = _load_procedures(directory / "procedures.csv", directory / "steps.csv", agencies)
    days_off, working_days = _load_calendar(directory / "calendar.csv")
    working_hours, handoff_cutoffs = _load_working_hours(directory / "working_hours.csv", agencies)
    return Reference(
        procedures=procedures,
        agencies=agencies,
        days_off=days_off,
        working_days=working_days,
        working_hours=working_hours,
        targets=_load_targets(directory / "targets.csv"),
        handoff_cutoffs=handoff_cutoffs,
    )


def _load_agencies(path: Path) -> dict[str, Agency]:
    columns = ("code", "name", "level", "parent", "head_name", "head_email", "centre")
    seen: set[str] = set()
    agencies: dict[str, Agency] = {}
    rows = list(_rows(path, columns))
    for row in rows:
        code = _unique(row, seen, "code")
        agencies[code] = Agency(
            code=code,
            name=row.text("name"),
            level=row.choice("level", LEVELS),
            parent=row.text("parent", required=False) or None,
            head_name=row.text("head_name", required=False),
            head_email=row.text("head_email", required=False),
            centre=row.text("centre"),
        )
    for row in rows:
        for column in ("parent", "centre"):
            value = row.text(column, required=False)
            if value and value not in agencies:
                raise row.error(column, f"no agency with code '{value}' in agencies.csv")
    return agencies


def _load_procedures(
    path: Path, steps_path: Path, agencies: dict[str, Agency]
) -> dict[str, Procedure]:
    columns = (
        "code",
        "name",
        "field",
        "level",
        "limit",
        "limit_unit",
        "same_day_cutoff",
        "fee_bearing",
        "paper_result",
        "full_online_eligible",
    )
    steps = _load_steps(steps_path, agencies) if steps_path.exists() else {}
    seen: set[str] = set()
    procedures: dict[str, Procedure] = {}
    for row in _rows(path, columns):
        code = _unique(row, seen, "code")
        procedures[code] = Procedure(
            code=code,
            name=row.text("name"),
            field=row.text("field"),
            level=row.choice("level", LEVELS),
            # Ten years at most: longer is a slip of the keyboard, and the calendar
            # counts deadlines only so far beyond the events.
            limit=row.number("limit", maximum=3650),
            limit_unit=row.choice("limit_unit", LIMIT_UNITS),  # type: ignore[arg-type]
            same_day_cutoff=row.clock_time("same_day_cutoff", DEFAULT_SAME_DAY_CUTOFF),
            fee_bearing=row.boolean("fee_bearing"),
            paper_result=row.boolean("paper_result"),
            full_online_eligible=row.boolean("full_online_eligible"),
            steps=tuple(steps.pop(code, (row, []))[1]),
        )
    for code, (row, _) in steps.items():
        raise row.error("procedure", f"no procedure with code '{code}' in procedures.csv")
    return procedures


def _load_steps(path: Path, agencies: dict[str, Agency]) -> dict[str, tuple[_Row, list[Step]]]:
    """Steps by procedure code, each with the row that first named the procedure."""
    first_rows: dict[str, _Row] = {}
    numbered: dict[str, list[tuple[int, Step]]] = {}
    for row in _rows(path, ("procedure", "step", "unit", "budget_hours")):
        procedure = row.text("procedure")
        step = int(row.number("step", minimum=1))
        unit = row.text("unit")
        if unit not in agencies:
            raise row.error("unit", f"no agency with code '{unit}' in agencies.csv")
        budget = round(row.number("budget_hours", maximum=87_600) * 3600)  # ten years
        entries = numbered.setdefault(procedure, [])
        if any(number == step for number, _ in entries):
            raise row.error("step", f"step {step} of procedure '{procedure}' is given twice")
        entries.append((step, Step(unit, budget)))
        first_rows.setdefault(procedure, row)
    return {
        code: (first_rows[code], [s for _, s in sorted(entries, key=lambda e: e[0])])
        for code, entries in numbered.items()
    }


def _load_calendar(path: Path) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    days_off: set[dt.date] = set()
    working_days: set[dt.date] = set()
    if not path.exists():
        return frozenset(), frozenset()
    for row in _rows(path, ("date", "kind", "note")):
        day = row.date("date")
        kind = row.choice("kind", ("day_off", "working_day"))
        if day in days_off or day in working_days:
            raise row.error("date", f"{day} is listed twice")
        (days_off if kind == "day_off" else working_days).add(day)
    return frozenset(days_off), frozenset(working_days)


def parse_periods(text: str) -> Periods:
    """'07:30-11:30 13:30-17:00' -> ((27000, 41400), (48600, 61200)); raises ValueError."""

    def fail(message: str) -> ValueError:
        return ValueError(message)

    periods: list[tuple[int, int]] = []
    for part in text.split():
        start_text, _, end_text = part.partition("-")
        start, end = _parse_clock(start_text, fail), _parse_clock(end_text, fail)
        if end <= start:
            raise ValueError(f"period '{part}' ends before it starts")
        if periods and start < periods[-1][1]:
            raise ValueError(f"period '{part}' overlaps the one before it")
        periods.append((start, end))
    if not periods:
        raise ValueError("no working period given")
    return tuple(periods)


def _load_working_hours(
    path: Path, agencies: dict[str, Agency]
) -> tuple[dict[str, Periods], dict[str, int]]:
    """Each listed centre's working periods and, where the optional column
    `paper_handoff_cutoff` gives one, its paper hand-off cut-off (rulebook §11.11)."""
    if not path.exists():
        return {}, {}
    hours: dict[str, Periods] = {}
    cutoffs: dict[str, int] = {}
    for row in _rows(path, ("centre", "periods")):
        centre = row.text("centre")
        if centre not in agencies:
            raise row.error("centre", f"no agency with code '{centre}' in agencies.csv")
        try:
            hours[centre] = parse_periods(row.text("periods"))
        except ValueError as error:
            raise row.error(
                "periods", f"{error} (expected e.g. '07:30-11:30 13:30-17:00')"
            ) from None
        cutoffs[centre] = row.clock_time("paper_handoff_cutoff", DEFAULT_HANDOFF_CUTOFF)
    return hours, cutoffs


def _load_targets(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    targets: dict[str, float] = {}
    for row in _rows(path, ("metric", "target")):
        metric = row.text("metric")
        if metric not in TARGET_METRICS:
            raise row.error("metric", f"unknown metric '{metric}'; known: {sorted(TARGET_METRICS)}")
        targets[metric] = row.number("target")
    return targets
