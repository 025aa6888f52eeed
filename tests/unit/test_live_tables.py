"""The demo's live view fits the terminal it is on (120×40, 80×24): the status line and
the province's total always show, the agencies that need attention first."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from rich.console import Console
from rich.text import Text

from onestop.common.replay import Replay
from onestop.models.case import CaseRules
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.report_tables import figures_table, live_view, waits_table
from onestop.streams.simulate import SimulationSettings, simulate

REFERENCE = load_reference(SAMPLE_PROVINCE)
STATUS = Text("Giờ mô phỏng / simulated time 12/03/2026 17:42 (×2000) · đã gửi hết / feed "
              "finished (9,000 events) · Phải xin lỗi / Apologies required 12 · quá hạn phát "
              "hiện / overdue found 7 · Ctrl-C dừng / stops")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    replay = Replay.for_rules(CaseRules(REFERENCE))
    list(replay.feed_lines(orjson.dumps(event) for event in simulate(
        REFERENCE, SimulationSettings(cases=1500, seed=5, days=20))))
    return replay.report(replay.latest)


def shown(renderable: Any, width: int, height: int) -> list[str]:
    console = Console(width=width, height=height, color_system=None)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get().splitlines()


@pytest.mark.parametrize(("width", "height"), [
    (120, 40), (80, 24), (200, 60),
    # Below 70 columns the tables' titles wrap onto a second line, and the status line
    # wraps at words: each took a line the layout had not counted.
    (60, 24), (60, 40), (66, 30), (69, 33), (99, 24),
])
def test_the_live_view_fits_its_terminal(report: dict[str, Any], width: int,
                                         height: int) -> None:
    lines = shown(live_view(report, REFERENCE, STATUS, width, height), width, height)
    assert len(lines) <= height and max(len(line) for line in lines) <= width, (
        len(lines), max(len(line) for line in lines))
    # and it uses the height it was given, unless every agency is listed
    text = " ".join(lines)
    assert len(lines) == height or "cơ quan khác" not in text, len(lines)
    text = " ".join(" ".join(lines).split())
    assert "đã gửi hết / feed finished" in text and "Toàn tỉnh / Province" in text
    assert "15 phút" in text  # the waits: a table, or one line on a small screen
    received = report["province"]["received"]
    assert received >= 1000 and f"{received // 1000}.{received % 1000:03d}" in text  # 1.234
    assert all("…" not in cell for line in lines for cell in line.split("│")[2:]), (
        "a number cut short")  # names may be


def test_the_agencies_that_need_attention_come_first(report: dict[str, Any]) -> None:
    lines = shown(figures_table(report, REFERENCE, 160, rows=3), 160, 60)
    worst = max(report["agencies"].items(), key=lambda item: item[1]["overdue_open"])
    first_row = next(line for line in lines if "│" in line and "Toàn tỉnh" not in line
                     and "Cơ quan" not in line)
    assert REFERENCE.agencies[worst[0]].name[:20] in first_row
    assert any(f"và {len(report['agencies']) - 3} cơ quan khác" in line for line in lines)


@pytest.mark.parametrize("width", [60, 66, 80, 120])
def test_the_waits_median_and_p90_keep_their_numbers_on_a_narrow_terminal(
    report: dict[str, Any], width: int,
) -> None:
    """The live view now has percentiles too: at 60 columns they were cut to '8,1…'."""
    lines = shown(waits_table(report, REFERENCE, width), width, 40)
    rows = [line.split("│") for line in lines if line.startswith("│")]
    assert len(rows) == len(report["centres"]) and max(len(line) for line in lines) <= width
    assert all("…" not in cell for row in rows for cell in row[2:]), lines
    median = report["centres"][min(report["centres"])]["wait_p50_seconds"] / 60
    assert f"{median:.1f}".replace(".", ",") in rows[0][4]


def test_percentiles_show_tenths_when_exact_and_whole_minutes_when_live() -> None:
    def centre(p50: float, p90: float) -> dict[str, Any]:
        return {"visits_waited": 9, "wait_within_target": {"numerator": 8, "denominator": 9,
                                                           "ratio": 8 / 9},
                "wait_p50_seconds": p50, "wait_p90_seconds": p90}

    def cells(p50: float, p90: float) -> list[str]:
        report = {"centres": {"SX-TTPVHCC": centre(p50, p90)}}
        [row] = [line for line in shown(waits_table(report, REFERENCE, 80), 80, 20)
                 if line.startswith("│")]
        return [cell.strip() for cell in row.split("│")[4:6]]

    assert cells(600.0, 1020.0) == ["10", "17"]  # live: to the minute
    assert cells(500.0, 1080.0) == ["8,3", "18,0"]  # a replay: exact, 18 minutes too
