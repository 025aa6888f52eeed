"""The report's ranking: by level, by the on-time rates, ties sharing a rank."""

from typing import Any

from onestop.consumers.report import rank
from tests.conftest import small_reference


def figures(on_time: tuple[int, int], index: tuple[int, int], ended: int) -> dict[str, Any]:
    def ratio(part: int, whole: int) -> dict[str, Any]:
        return {"numerator": part, "denominator": whole,
                "ratio": part / whole if whole else None}

    return {"completed_on_time_rate": ratio(*on_time),
            "service_index_on_time_rate": ratio(*index), "ended": ended}


def test_agencies_are_ranked_within_their_level_and_equals_share_a_rank() -> None:
    ranking = rank({
        "STP": figures((9, 10), (9, 10), 10),
        "UBND": figures((18, 20), (18, 20), 20),  # the same rates as STP: the same rank
        "CENTRE": figures((10, 10), (8, 10), 10),
        "XA": figures((5, 10), (5, 10), 10),  # a commune: ranked among communes
    }, small_reference())
    assert [(entry["agency"], entry["level"], entry["rank"]) for entry in ranking] == [
        ("CENTRE", "province", 1), ("UBND", "province", 2), ("STP", "province", 2),
        ("XA", "commune", 1)]


def test_an_agency_that_ended_no_case_is_listed_last_unranked() -> None:
    ranking = rank({"STP": figures((0, 0), (0, 0), 0), "UBND": figures((1, 2), (1, 2), 2)},
                   small_reference())
    assert [(entry["agency"], entry["rank"]) for entry in ranking] == [("UBND", 1), ("STP", None)]
