"""`onestop report`: the monthly, quarterly or yearly report from the SQL store.

Figures judged as of a period's end cannot be added up from daily aggregates: an apology
issued after the day a case ended, a rating given after the result was returned, or the
median wait of a month all change what the period's figures are. So the report loads the
case and ticket states the period can touch and judges them with the same rules and the
same code as `onestop replay --from --to`; its figures are the replay's.
"""

from __future__ import annotations

import calendar as month_calendar
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine, func, or_, select

from onestop.common.codec import decode_entry
from onestop.common.replay import Replay
from onestop.consumers.glossary import ON_TIME_RATE, SERVICE_INDEX_ON_TIME_RATE
from onestop.consumers.schema import agency_day_figures, case_states, ticket_states
from onestop.models.aggregates import AgencyFigures
from onestop.models.case import CaseRules, days_late, procedure_of
from onestop.models.reference import Reference
from onestop.models.targets import judge


class ReportError(ValueError):
    """A report that cannot be made as asked, in words for the person asking."""


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    label: str
    first: dt.date
    last: dt.date


def parse_period(text: str) -> ReportPeriod:
    """`2026-03` (a month), `2026-Q1` (a quarter) or `2026` (a year)."""
    text = text.strip()
    if match := re.fullmatch(r"(\d{4})-(\d{2})", text):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise ReportError(f"'{text}': month {month} is not 01–12")
        days = month_calendar.monthrange(year, month)[1]
        return ReportPeriod(text, dt.date(year, month, 1), dt.date(year, month, days))
    if match := re.fullmatch(r"(\d{4})-[Qq]([1-4])", text):
        year, quarter = int(match[1]), int(match[2])
        first = dt.date(year, 3 * quarter - 2, 1)
        last_month = 3 * quarter
        last = dt.date(year, last_month, month_calendar.monthrange(year, last_month)[1])
        return ReportPeriod(f"{year}-Q{quarter}", first, last)
    if re.fullmatch(r"\d{4}", text):
        year = int(text)
        return ReportPeriod(text, dt.date(year, 1, 1), dt.date(year, 12, 31))
    raise ReportError(f"'{text}' is not a period: give 2026-03, 2026-Q1 or 2026")


def store_as_of(engine: Engine) -> float | None:
    """How far the store has seen: the pipeline's newest aggregate, else the newest fact."""
    with engine.connect() as connection:
        as_of = connection.execute(select(func.max(agency_day_figures.c.as_of))).scalar()
        if as_of is not None:
            return dt.datetime.fromisoformat(as_of).timestamp()
        return connection.execute(select(func.max(case_states.c.last_at))).scalar()


def load_period(engine: Engine, rules: CaseRules, start: float, end: float) -> Replay:
    """The states whose figures the period (start, end] can touch: cases with a fact by its
    end that are still open or have a fact after its start, and tickets likewise."""
    replay = Replay.for_rules(rules)
    with engine.connect() as connection:
        cases = connection.execute(
            select(case_states.c.state).where(
                case_states.c.first_at <= end,
                or_(case_states.c.last_at > start, case_states.c.ended.is_(False)),
            )
        )
        for (text,) in cases:
            replay.hold(decode_entry(text.encode()).state)
        tickets = connection.execute(
            select(ticket_states.c.state).where(
                ticket_states.c.first_at <= end, ticket_states.c.last_at > start
            )
        )
        for (text,) in tickets:
            replay.hold(decode_entry(text.encode()).state)
    return replay


def judge_period(
    engine: Engine,
    reference: Reference,
    period: ReportPeriod,
    as_of: float | None = None,
    by_procedure: bool = False,
) -> tuple[Replay, dict[str, Any], float]:
    """The period's states loaded and judged as `onestop replay --from --to` judges them:
    the replay holding them, its figures (`Replay.report`) and the instant judged at (the
    period's end, or `as_of` if earlier; `as_of` defaults to the newest data)."""
    rules = CaseRules(reference)
    calendar = rules.calendar
    if as_of is None:
        as_of = store_as_of(engine)
        if as_of is None:
            raise ReportError("the database holds no case yet: run the sink or replay --db")
    start = calendar.start_of_day(period.first)
    end = min(as_of, calendar.end_of_day(period.last))
    if end <= start:
        raise ReportError(
            f"{period.label} starts after the newest data ({calendar.isoformat(as_of)})"
        )
    replay = load_period(engine, rules, start, end)
    unknown = sorted({code for state in replay.cases.values()
                      if (code := procedure_of(state)) is not None
                      and code not in reference.procedures})
    if unknown:
        raise ReportError(
            f"the database holds cases of {len(unknown)} procedures the reference data lacks "
            f"({', '.join(unknown[:5])}{', …' if len(unknown) > 5 else ''}): give the "
            "province's reference data (--reference)")
    return replay, replay.report(as_of, period.first, period.last, by_procedure), end


def agency_centres(centres: dict[str, Any], reference: Reference, agency: str) -> dict[str, Any]:
    """The waits of an agency's report: those at its own centre."""
    centre = reference.agencies[agency].centre
    return {code: value for code, value in centres.items() if code == centre}


def build_report(
    engine: Engine,
    reference: Reference,
    period: ReportPeriod,
    agency: str | None = None,
    as_of: float | None = None,
) -> dict[str, Any]:
    """The report as JSON: the replay's figures (contract §6 keys) under `agencies`,
    `centres` and `province`, each agency listed, plus targets, ranking, late cases and
    late paper hand-offs; and `procedures`, each procedure's figures per agency (see
    `breakdown`), which the JSON leaves out."""
    replay, figures, judged_at = judge_period(engine, reference, period, as_of,
                                              by_procedure=True)
    rules, calendar = replay.rules, replay.rules.calendar
    zeros = AgencyFigures().to_json()
    agencies = {code: figures["agencies"].get(code, zeros) for code in reference.agencies}
    agencies.update(figures["agencies"])
    centres = figures["centres"]
    goals = reference.targets
    ranking = rank(agencies, reference)
    late_cases = sorted(
        ({"case_id": case_id, **case, "days_late": days_late(
            rules.evaluate(replay.cases[case_id], judged_at), judged_at, calendar)}
         for case_id, case in figures["cases"].items()
         if case["verdict"] == "late" or case["overdue"]),
        key=lambda case: (-case["days_late"], case["case_id"]),
    )
    late_paper_transfers = figures["findings"]["late_paper_transfers"]
    procedures = figures["procedures"]
    if agency is not None:
        if agency not in agencies:
            raise ReportError(f"--agency {agency}: no such agency in the reference data")
        agencies = {agency: agencies[agency]}
        centres = agency_centres(centres, reference, agency)
        late_cases = [case for case in late_cases
                      if case["handling_agency"] == agency or agency in case["responsible"]]
        late_paper_transfers = [item for item in late_paper_transfers
                                if agency in (item["centre"], item["handling_agency"])]
        procedures = {code: {agency: per_agency[agency]}
                      for code, per_agency in procedures.items() if agency in per_agency}
    return {
        "as_of": figures["as_of"],
        "period": {"label": period.label, **figures["period"]},
        "agency": agency,
        "agencies": dict(sorted(agencies.items())),
        "centres": centres,
        "province": figures["province"],
        "targets": {
            "province": _judged(figures["province"], goals, "agency"),
            "agencies": {code: _judged(value, goals, "agency")
                         for code, value in sorted(agencies.items())},
            "centres": {code: _judged(value, goals, "centre")
                        for code, value in sorted(centres.items())},
        },
        "ranking": [entry for entry in ranking if agency is None or entry["agency"] == agency],
        "late_cases": late_cases,
        "late_paper_transfers": late_paper_transfers,
        "procedures": procedures,
    }


def _judged(figures: dict[str, Any], goals: dict[str, float], scope: str) -> list[dict[str, Any]]:
    return [
        {"metric": item.target.metric, "value": item.value, "numerator": item.numerator,
         "denominator": item.denominator, "target": item.goal, "met": item.met}
        for item in judge(figures, goals, scope)
    ]


# How the ranking breaks ties, as the report states it.
TIE_RULE = (f"Xếp theo {ON_TIME_RATE.within.vi}, rồi {SERVICE_INDEX_ON_TIME_RATE.within.vi}; "
            "cơ quan bằng nhau ở cả hai tỷ lệ cùng hạng. Cơ quan chưa giải quyết hồ sơ nào "
            f"không xếp hạng / ranked by the {ON_TIME_RATE.within.en}, then the "
            f"{SERVICE_INDEX_ON_TIME_RATE.within.en}; agencies equal on both share a rank. "
            "Agencies that ended no case are not ranked")


def rank(agencies: dict[str, dict[str, Any]], reference: Reference) -> list[dict[str, Any]]:
    """Agencies ranked within their level (provincial agencies; commune level) by
    completed-on-time rate, then service-index rate; equal on both, equal rank (1, 1, 3);
    listed within a rank by cases ended, then code. Agencies that ended no case in the
    period come last, unranked."""
    def rate(figures: dict[str, Any], name: str) -> float:
        ratio = figures[name]
        return ratio["numerator"] / ratio["denominator"] if ratio["denominator"] else -1.0

    def level(code: str) -> str:
        agency = reference.agencies.get(code)
        return agency.level if agency is not None else "province"

    def score(figures: dict[str, Any]) -> tuple[float, float]:
        return (rate(figures, "completed_on_time_rate"),
                rate(figures, "service_index_on_time_rate"))

    ordered = sorted(agencies.items(), key=lambda item: (
        level(item[0]) != "province", level(item[0]),
        tuple(-value for value in score(item[1])), -item[1]["ended"], item[0]))
    ranking: list[dict[str, Any]] = []
    for code, figures in ordered:
        ranked = figures["completed_on_time_rate"]["denominator"] > 0
        peers = [entry for entry in ranking if entry["level"] == level(code)]
        position = None
        if ranked:
            if peers and peers[-1]["rank"] is not None and score(
                    agencies[peers[-1]["agency"]]) == score(figures):
                position = peers[-1]["rank"]
            else:
                position = len(peers) + 1
        ranking.append({
            "rank": position,
            "level": level(code),
            "agency": code,
            "ended": figures["ended"],
            "completed_on_time_rate": figures["completed_on_time_rate"]["ratio"],
            "service_index_on_time_rate": figures["service_index_on_time_rate"]["ratio"],
        })
    return ranking


def pooled(ratios: Iterable[dict[str, Any]]) -> float | None:
    """The share over several ratio figures of the report JSON (`numerator`,
    `denominator`): Σ numerators / Σ denominators, not the mean of their shares."""
    numerator = denominator = 0
    for ratio in ratios:
        numerator += ratio["numerator"]
        denominator += ratio["denominator"]
    return numerator / denominator if denominator else None


def centre_waits(report: dict[str, Any]) -> tuple[int, float | None]:
    """Every centre's waits together: the visits, and the share within 15 minutes."""
    centres = report["centres"].values()
    return (sum(figures["visits_waited"] for figures in centres),
            pooled(figures["wait_within_target"] for figures in centres))


def scope_of(report: dict[str, Any]) -> dict[str, Any]:
    """The figures a report is about: the province's, or its one agency's."""
    agency = report["agency"]
    return report["province"] if agency is None else report["agencies"][agency]


@dataclass(frozen=True)
class Totals:
    """An earlier period's figures, to compare with: its scope's (the province's or the
    report's one agency's) and its centres'."""

    period: ReportPeriod
    scope: dict[str, Any]
    centres: dict[str, Any]


@dataclass
class Comparison:
    """The same figures for earlier periods, where the store holds them."""

    previous: Totals | None = None  # the period before
    last_year: Totals | None = None  # the same period a year earlier
    trend: list[Totals] = field(default_factory=list)  # the months before, oldest first


def shifted(period: ReportPeriod, months: int) -> ReportPeriod:
    """The period of the same length `months` months earlier."""
    index = period.first.year * 12 + period.first.month - 1 - months
    year, month = divmod(index, 12)
    span = (period.last.year - period.first.year) * 12 + period.last.month - period.first.month
    if span == 0:
        return parse_period(f"{year}-{month + 1:02d}")
    if span == 2:
        return parse_period(f"{year}-Q{month // 3 + 1}")
    return parse_period(str(year))


def totals_of(engine: Engine, reference: Reference, period: ReportPeriod, agency: str | None,
              as_of: float) -> Totals | None:
    """A period's totals, judged with the report's own `judge_period` but without its
    lists, ranking, targets or breakdown; None where the store holds no case received in
    it (in the scope)."""
    try:
        _replay, figures, _judged_at = judge_period(engine, reference, period, as_of)
    except ReportError:
        return None
    if agency is None:
        scope, centres = figures["province"], figures["centres"]
    else:
        scope = figures["agencies"].get(agency)
        centres = agency_centres(figures["centres"], reference, agency)
    return Totals(period, scope, centres) if scope and scope["received"] else None


def comparison_for(engine: Engine, reference: Reference, period: ReportPeriod,
                   agency: str | None, as_of: float) -> Comparison:
    """The previous period, the same period a year earlier and, for a month, the eleven
    months before it, each judged once (the month before is also the trend's last)."""
    judged: dict[str, Totals | None] = {}

    def totals(earlier: ReportPeriod) -> Totals | None:
        if earlier.label not in judged:
            judged[earlier.label] = totals_of(engine, reference, earlier, agency, as_of)
        return judged[earlier.label]

    span = (period.last.year - period.first.year) * 12 + period.last.month - period.first.month
    trend = []
    if span == 0:
        for months in range(11, 0, -1):
            if (month := totals(shifted(period, months))) is not None:
                trend.append(month)
    return Comparison(totals(shifted(period, span + 1)), totals(shifted(period, 12)), trend)


def summed(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Figures of the report JSON added up: counts summed, each ratio pooled from its
    summed numerators and denominators (the service-index groups left out)."""
    total: dict[str, Any] = {}
    for row in rows:
        for name, value in row.items():
            if isinstance(value, int):
                total[name] = total.get(name, 0) + value
            elif isinstance(value, dict) and "numerator" in value:
                ratio = total.setdefault(name, {"numerator": 0, "denominator": 0})
                ratio["numerator"] += value["numerator"]
                ratio["denominator"] += value["denominator"]
    for value in total.values():
        if isinstance(value, dict):
            value["ratio"] = pooled([value])
    return total


Breakdown = list[tuple[str, dict[str, Any]]]


def breakdown(report: dict[str, Any], reference: Reference) -> tuple[Breakdown, Breakdown]:
    """Every case of the report (not only the late ones) by field, most received first,
    and by procedure code, most often late first (late, or open and overdue at the
    period's end): the report's own figures split up, so each list adds up to the
    province's (or the one agency's)."""
    by_procedure = [(code, summed(per_agency.values()))
                    for code, per_agency in report["procedures"].items()]
    by_procedure.sort(key=lambda item: (-item[1]["late"] - item[1]["overdue_open"],
                                        -item[1]["received"], item[0]))
    fields: dict[str, list[dict[str, Any]]] = {}
    for code, figures in by_procedure:
        procedure = reference.procedures.get(code)
        fields.setdefault(procedure.field if procedure else code, []).append(figures)
    by_field = [(name, summed(rows)) for name, rows in fields.items()]
    by_field.sort(key=lambda item: (-item[1]["received"], item[0]))
    return by_field, by_procedure


def report_json(report: dict[str, Any]) -> bytes:
    """The report as JSON: the replay's keys and the report's own (the breakdown by
    procedure is for the document and the working file, written from the same figures)."""
    shown = {name: value for name, value in report.items() if name != "procedures"}
    return orjson.dumps(shown, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"

