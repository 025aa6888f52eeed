"""models/ holds the rules only: no infrastructure, no wall clock (architecture guide)."""

import ast
from pathlib import Path

MODELS = Path(__file__).parents[2] / "models"
INFRASTRUCTURE = {"faust", "kafka", "aiokafka", "sqlalchemy", "prometheus_client", "typer",
                  "rich", "requests", "socket"}
OURS = {"onestop", "models", "common", "consumers", "alerts", "streams"}
WALL_CLOCK = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def test_models_import_no_infrastructure_and_read_no_clock():
    for path in MODELS.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                names = []
            for name in names:
                assert name.split(".")[0] not in INFRASTRUCTURE, f"{path.name} imports {name}"
                # Of our own packages, only models itself, imported relatively: mypy checks
                # models/ on its own, and the bare name would load it twice (README: Layout).
                assert name.split(".")[0] not in OURS, f"{path.name} imports {name}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in WALL_CLOCK, f"{path.name}:{node.lineno} reads a clock"
