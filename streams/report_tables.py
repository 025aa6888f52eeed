"""A report's figures as terminal tables: per agency (cases) and per centre (waits), for
`onestop demo` both live and in one go."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from onestop.models.reference import Reference


def _percent(ratio: dict[str, Any]) -> str:
    value = ratio["ratio"]
    return "–" if value is None else f"{100 * value:.1f}%"


def figures_table(report: dict[str, Any], reference: Reference) -> Table:
    table = Table(title=f"Tình hình giải quyết hồ sơ / Case processing — {report['as_of']}")
    for heading in (
        "Cơ quan / Agency",
        "Tiếp nhận\nReceived",
        "Đã giải quyết\nEnded",
        "Đúng hạn\nOn time",
        "Chỉ số 766\nService index",
        "Quá hạn tồn\nOverdue open",
        "Xin lỗi thiếu\nApologies missing",
        "Liên thông điện tử\nE-transfer",
    ):
        if heading.startswith("Cơ"):
            table.add_column(heading, min_width=30)
        else:
            table.add_column(heading, justify="right", no_wrap=True)
    rows = list(report["agencies"].items()) + [("Toàn tỉnh / Province", report["province"])]
    for code, figures in rows:
        if figures is report["province"]:
            table.add_section()
        agency = reference.agencies.get(code)
        table.add_row(
            agency.name if agency else code,
            str(figures["received"]),
            str(figures["ended"]),
            _percent(figures["completed_on_time_rate"]),
            _percent(figures["service_index_on_time_rate"]),
            str(figures["overdue_open"]),
            str(figures["apologies_missing"]),
            _percent(figures["e_transfer_share"]),
        )
    return table


def waits_table(report: dict[str, Any], reference: Reference) -> Table:
    table = Table(title="Thời gian chờ tại quầy / Waiting at the counter (≤ 15 phút / min)")
    for heading in (
        "Trung tâm / Centre",
        "Lượt chờ\nVisits",
        "Trong 15 phút\nWithin target",
        "Trung vị\nMedian",
        "P90",
    ):
        if heading.startswith("Trung tâm"):
            table.add_column(heading, min_width=30)
        else:
            table.add_column(heading, justify="right", no_wrap=True)
    for code, figures in report["centres"].items():
        agency = reference.agencies.get(code)

        def minutes(seconds: float | None) -> str:
            return "–" if seconds is None else f"{seconds / 60:.1f} min"

        table.add_row(
            agency.name if agency else code,
            str(figures["visits_waited"]),
            _percent(figures["wait_within_target"]),
            minutes(figures["wait_p50_seconds"]),
            minutes(figures["wait_p90_seconds"]),
        )
    return table
