"""The pipeline's clock: the only place in the monitor that reads the wall clock."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Clock:
    """Pipeline time as POSIX seconds. `start` None means wall time; otherwise time runs
    from `start` at `factor` times the wall clock's pace, counted from `anchor` (the wall
    instant the clock was made); a factor of 0 stops it (a fixed clock)."""

    start: float | None = None
    factor: float = 1.0
    anchor: float = field(default_factory=time.time)

    def now(self) -> float:
        return self.at(time.time())

    def at(self, wall: float) -> float:
        """The pipeline instant of a wall instant (e.g. when a record reached the broker)."""
        if self.start is None:
            return wall
        return self.start + (wall - self.anchor) * self.factor

    @property
    def fixed(self) -> bool:
        """Whether time stands still: then no wall instant maps to an earlier one."""
        return self.start is not None and self.factor == 0


def _instant(text: str) -> float:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"'{text}' has no time-zone offset, e.g. 2026-03-31T17:00:00+07:00")
    return value.timestamp()


def parse_clock(text: str) -> Clock:
    """`wall`, `fixed:<instant>` or `accelerated:<start instant>:<factor>[@<anchor>]`.

    The anchor (POSIX seconds of the wall clock at which simulated time was `start`)
    lets several processes share one accelerated clock; without it, each process starts
    its own at `start`."""
    kind, _, rest = text.partition(":")
    try:
        if kind == "wall" and not rest:
            return Clock()
        if kind == "fixed":
            return Clock(_instant(rest), 0.0)
        if kind == "accelerated":
            rest, _, anchor = rest.partition("@")
            start, _, factor = rest.rpartition(":")
            if float(factor) <= 0:
                raise ValueError("the factor must be above 0")
            if anchor:
                return Clock(_instant(start), float(factor), float(anchor))
            return Clock(_instant(start), float(factor))
    except ValueError as error:
        raise ValueError(f"clock '{text}': {error}") from None
    raise ValueError(
        f"clock '{text}' is none of wall, fixed:<instant>, "
        "accelerated:<start instant>:<factor>[@<anchor>]"
    )
