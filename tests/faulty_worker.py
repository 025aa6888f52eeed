"""`onestop worker` with one fault injected, as a bug in the rules would be: applying an
event of the case named by the environment variable FAILING_CASE raises."""

from __future__ import annotations

import os
from typing import Any

from onestop.streams.app import CaseKeeper
from onestop.streams.cli import app

FAILING_CASE = os.environ["FAILING_CASE"]
apply = CaseKeeper.apply


def failing_apply(self: CaseKeeper, state: Any, event: Any) -> Any:
    if event.case_id == FAILING_CASE:
        raise RuntimeError(f"injected fault applying {event.event_id}")
    return apply(self, state, event)


CaseKeeper.apply = failing_apply  # type: ignore[method-assign]
app(prog_name="onestop")
