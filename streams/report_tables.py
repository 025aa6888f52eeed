"""A report's figures as terminal tables: per agency (cases) and per centre (waits), for
`onestop demo` both live and in one go.

They fit the terminal they are on: the province's total first, then the agencies that
need attention first (most overdue, then the lowest on-time rate), as many as the
height allows, the rest counted in one line; below 100 columns a compact set of
columns. Rates under the province's target are red. Numbers in Vietnamese form.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from rich.console import Console, Group
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from onestop.consumers import glossary
from onestop.consumers.glossary import Term
from onestop.consumers.report import centre_waits
from onestop.consumers.vietnamese import number, percent
from onestop.models.reference import Reference

# Below this width the tables keep only the columns that matter most; from WIDE_WIDTH
# they show every column.
COMPACT_WIDTH = 100
WIDE_WIDTH = 140
# A name longer than this takes its short forms in a column's heading.
HEADING_WIDTH = 18


def heading(term: Term, compact: bool) -> str:
    """A column's heading: the Vietnamese short form alone on a narrow terminal; else
    both languages, on two lines, the name or, when it is long, its short forms."""
    if compact:
        return term.short or term.vi
    if term.short and max(len(term.vi), len(term.en)) > HEADING_WIDTH:
        return f"{' '.join(term.short.split())}\n{term.short_en}"
    return f"{term.vi}\n{term.en}"



def _rate(ratio: dict[str, Any], target: float | None) -> Text:
    value = ratio["ratio"]
    below = value is not None and target is not None and value < target
    return Text(percent(value), style="bold red" if below else "")


def shown_as_of(report: dict[str, Any]) -> str:
    """The report's instant as a reader wants it: 12/03/2026 17:42."""
    text = report.get("as_of") or ""
    try:
        return f"{dt.datetime.fromisoformat(text):%d/%m/%Y %H:%M}"
    except ValueError:
        return text


def _attention(item: tuple[str, dict[str, Any]]) -> tuple[int, float, str]:
    """Most overdue first, then the lowest on-time rate."""
    code, figures = item
    rate = figures["completed_on_time_rate"]["ratio"]
    return (-figures["overdue_open"], 2.0 if rate is None else rate, code)


def figures_table(report: dict[str, Any], reference: Reference, width: int = 120,
                  rows: int | None = None) -> Table:
    """The province's total, then at most `rows` agencies, worst first."""
    compact = width < COMPACT_WIDTH
    goal = reference.targets.get("completed_on_time_rate")
    table = Table(title=f"Tình hình giải quyết hồ sơ / Case processing — {shown_as_of(report)}",
                  expand=False, pad_edge=False)
    # (the figure's name, its key)
    columns = [(glossary.RECEIVED, "received"), (glossary.ENDED, "ended"),
               (glossary.ON_TIME_RATE, "rate"), (glossary.OVERDUE, "overdue_open")]
    if not compact:
        columns += [(glossary.APOLOGIES_MISSING, "apologies_missing")]
    if width >= WIDE_WIDTH:
        columns[3:3] = [(glossary.SERVICE_INDEX_ON_TIME_RATE, "index")]
        columns += [(glossary.E_TRANSFERS, "e_transfer")]
    table.add_column("Cơ quan" if compact else "Cơ quan / Agency", ratio=1,
                     overflow="ellipsis", no_wrap=True, max_width=24 if compact else 36)
    for term, _key in columns:
        table.add_column(heading(term, compact), justify="right", no_wrap=True)

    def cells(name: str, figures: dict[str, Any]) -> list[Any]:
        values = {
            "received": number(figures["received"]), "ended": number(figures["ended"]),
            "rate": _rate(figures["completed_on_time_rate"], goal),
            "index": _rate(figures["service_index_on_time_rate"],
                           reference.targets.get("service_index_on_time_rate")),
            "overdue_open": number(figures["overdue_open"]),
            "apologies_missing": number(figures["apologies_missing"]),
            "e_transfer": percent(figures["e_transfer_share"]["ratio"]),
        }
        return [name, *(values[key] for _term, key in columns)]

    table.add_row(*cells("Toàn tỉnh / Province", report["province"]), style="bold")
    table.add_section()
    agencies = sorted(report["agencies"].items(), key=_attention)
    shown = agencies if rows is None else agencies[:max(rows, 0)]
    for code, figures in shown:
        agency = reference.agencies.get(code)
        table.add_row(*cells(agency.name if agency else code, figures))
    if len(shown) < len(agencies):
        hidden = len(agencies) - len(shown)
        table.caption = f"… và {hidden} cơ quan khác / {hidden} more"
    return _names_fit(table, width)


def waits_table(report: dict[str, Any], reference: Reference, width: int = 120,
                rows: int | None = None) -> Table:
    """Waits per centre: within 15 minutes against the target; the median and the 90th
    percentile where the figures carry them (exact in a replay's report, to the minute
    live). Below COMPACT_WIDTH the minutes are said once, in the title."""
    compact = width < COMPACT_WIDTH
    goal = reference.targets.get("wait_within_target_share")
    table = Table(title="Thời gian chờ / Waits (phút / min)" if compact else
                  "Thời gian chờ tại quầy / Waiting at the counter", pad_edge=False)
    table.add_column("Bộ phận Một cửa" if compact else "Bộ phận Một cửa / Centre", ratio=1,
                     overflow="ellipsis", no_wrap=True, max_width=24 if compact else 40)
    table.add_column(heading(glossary.VISITS, compact), justify="right", no_wrap=True)
    table.add_column(heading(glossary.WAITS_WITHIN_15, compact), justify="right",
                     no_wrap=True)
    centres = sorted(report["centres"].items())
    percentiles = any(figures.get("wait_p50_seconds") is not None for _code, figures in centres)
    if percentiles:
        table.add_column(heading(glossary.WAIT_MEDIAN, compact), justify="right",
                         no_wrap=True)
        table.add_column(heading(glossary.WAIT_P90, compact), justify="right", no_wrap=True)

    # The live view's percentiles are whole minutes (to the minute): no ",0" that would
    # claim a tenth. A replay's are exact: a tenth each, even where one is whole.
    decimals = 0 if all(float(figures[key] / 60).is_integer() for _code, figures in centres
                        for key in ("wait_p50_seconds", "wait_p90_seconds")
                        if figures.get(key) is not None) else 1

    def minutes(seconds: float | None) -> str:
        if seconds is None:
            return "–"
        shown = number(seconds / 60, decimals)
        return shown if compact else f"{shown} phút"

    shown = centres if rows is None else centres[:max(rows, 0)]
    for code, figures in shown:
        agency = reference.agencies.get(code)
        row: list[Any] = [agency.name if agency else code, number(figures["visits_waited"]),
                          _rate(figures["wait_within_target"], goal)]
        if percentiles:
            row += [minutes(figures["wait_p50_seconds"]), minutes(figures["wait_p90_seconds"])]
        table.add_row(*row)
    if len(shown) < len(centres):
        table.caption = f"… và {len(centres) - len(shown)} bộ phận khác / and more"
    return _names_fit(table, width)


def _names_fit(table: Table, width: int) -> Table:
    """The names' column (the first) narrowed until the table fits `width`: a name may be
    cut short with an ellipsis, a number never (rich would cut every column alike)."""
    console = Console(width=10_000, file=io.StringIO(), color_system=None)
    excess = Measurement.get(console, console.options, table).maximum - width
    names = table.columns[0]
    if excess > 0 and names.max_width is not None:
        names.max_width = max(8, names.max_width - excess)
    return table


def _height(renderable: Any, width: int) -> int:
    """The lines `renderable` takes on a terminal `width` columns wide, as rich lays it
    out: titles and the status line wrap at words, which no count of characters foresees."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    with console.capture() as captured:
        console.print(renderable)
    return len(captured.get().splitlines())


def live_view(report: dict[str, Any], reference: Reference, status: Text, width: int,
              height: int) -> Group:
    """The status line and the tables, cut to a terminal of `width` × `height`: the
    waits table when it leaves room for at least five agencies, otherwise one line. The
    agencies get the lines the rest leaves, measured as laid out at this width."""
    # The agencies' table with one agency, less its line (with none, rich would not draw
    # the rule under the province's total).
    frame = _height(figures_table(report, reference, width, rows=1), width) - 1
    free = height - _height(status, width) - frame
    waits: Table | Text = waits_table(report, reference, width)
    if free - _height(waits, width) < 5:
        visits, within = centre_waits(report)
        waits = Text(f"Chờ tại quầy / waits: {number(visits)} {glossary.VISITS.within.vi}, "
                     f"{percent(within)} {glossary.WAITS_WITHIN_15.short}")
    rows = free - _height(waits, width)
    return Group(status, figures_table(report, reference, width, rows), waits)
