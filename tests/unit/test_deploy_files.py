"""deploy/: generated files are up to date, rules and configs pass Prometheus's and
Alertmanager's own checkers, every alert rule has promtool tests that pass, and every
dashboard query parses and names only series that exist."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from onestop.alerts.notifier import NotifierMetrics
from onestop.consumers.deploy_files import dashboards, generated_files
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.metrics import ALL_SERIES, PREFIX
from tests.prometheus import DEPLOY, binary

RULE_FILES = [DEPLOY / "prometheus" / "onestop.rules.yml", DEPLOY / "prometheus" / "targets.rules.yml"]


def run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          cwd=cwd, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def test_generated_files_are_committed_as_generated() -> None:
    for name, content in generated_files(load_reference(SAMPLE_PROVINCE)).items():
        assert (DEPLOY / name).read_text(encoding="utf-8") == content, (
            f"deploy/{name} is stale: run `onestop deploy-files`")


def test_every_alert_rule_has_a_passing_promtool_test() -> None:
    tests = (DEPLOY / "prometheus" / "tests.yaml").read_text()
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    tested = set(re.findall(r"alertname: (\w+)", tests))
    assert alerts and alerts == tested
    output = run(binary("promtool"), "test", "rules", "tests.yaml", cwd=DEPLOY / "prometheus")
    assert "SUCCESS" in output


def test_prometheus_and_alertmanager_configs_are_valid() -> None:
    run(binary("promtool"), "check", "config", DEPLOY / "prometheus" / "prometheus.yml")
    output = run(binary("amtool"), "check-config", DEPLOY / "alertmanager" / "alertmanager.yml")
    assert "SUCCESS" in output


def notifier_series() -> set[str]:
    """The notifier's counters (all of its series), as they are named when scraped."""
    return {family.name + "_total" for family in NotifierMetrics().registry.collect()}


def known_series() -> set[str]:
    names = {"up"} | notifier_series()
    for series in ALL_SERIES:
        name = PREFIX + series.name
        if series.kind == "counter":
            names.add(name + "_total")
        elif series.kind == "histogram":
            names |= {name + "_bucket", name + "_count", name + "_sum"}
        else:
            names.add(name)
    return names | {rule["record"] for rule in rules() if "record" in rule}


def named_series(expr: str) -> set[str]:
    without_matchers = re.sub(r"\{[^}]*\}|\"[^\"]*\"", "", expr)
    return set(re.findall(r"[a-z_:]*onestop[a-z0-9_:]*|\bup\b", without_matchers))


def test_rules_and_dashboards_name_only_series_that_exist(tmp_path: Path) -> None:
    known = known_series()
    for rule in rules():
        assert named_series(rule["expr"]) <= known, rule
    queries = [
        (board["title"], panel["title"], target["expr"])
        for board in dashboards().values() for panel in board["panels"]
        for target in panel["targets"]
    ]
    assert len(queries) > 40
    for board, panel, expr in queries:
        assert named_series(expr) <= known, f"{board} / {panel}: {expr}"
    # promtool parses every query as the expression of a recording rule; template
    # variables get a value first, as Grafana does.
    checked = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:query_{index}",
         "expr": re.sub(r"\$(agency|centre)", "SX-X", expr)}
        for index, (_board, _panel, expr) in enumerate(queries)
    ]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(checked, allow_unicode=True))
    run(binary("promtool"), "check", "rules", path)


def test_the_checks_above_catch_a_wrong_query(tmp_path: Path) -> None:
    assert named_series('sum(onestop_cases_endded_total{agency="x"})') - known_series()
    path = tmp_path / "bad.yml"
    path.write_text("groups: [{name: x, rules: [{record: 'a:b', expr: 'sum(onestop_up'}]}]\n")
    done = subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True,
                          check=False)
    assert done.returncode != 0


def test_dashboards_are_provisioned_from_their_folder() -> None:
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/onestop.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {panel["datasource"]["uid"] for board in dashboards().values()
            for panel in board["panels"]}
    assert uids == {source["datasources"][0]["uid"]}
    titles = {board["title"] for board in dashboards().values()}
    assert len(titles) == 4 and all(" / " in title for title in titles)


def _plain(value: Any) -> Any:
    """A schema object of the Grafana SDK back to JSON, all the way down."""
    if hasattr(value, "to_json"):
        return _plain(value.to_json())
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _unknown(ours: Any, schema: Any, path: str = "") -> list[str]:
    """The paths of `ours` that the schema's reading of it dropped: keys Grafana ignores."""
    if isinstance(ours, dict):
        if not isinstance(schema, dict):
            return [path]
        return [found for key, item in ours.items() for found in (
            [f"{path}.{key}"] if key not in schema else _unknown(item, schema[key],
                                                              f"{path}.{key}"))]
    if isinstance(ours, list) and isinstance(schema, list):
        return [found for index, (item, read) in enumerate(zip(ours, schema, strict=True))
                for found in _unknown(item, read, f"{path}[{index}]")]
    return []


def test_every_board_and_panel_option_is_one_grafana_knows() -> None:
    """Read with the schema of the Grafana that docker-compose pins (11.2, through
    grafana-foundation-sdk): nothing of ours may be dropped, at the board's level or in
    any panel's options (an option nested one level too deep is silently ignored)."""
    from grafana_foundation_sdk.models import dashboard

    for name, board in dashboards().items():
        assert _unknown(board, _plain(dashboard.Dashboard.from_json(board))) == [], name
        for panel in board["panels"]:
            kind = importlib.import_module(f"grafana_foundation_sdk.models.{panel['type']}")
            options = panel.get("options", {})
            read = _plain(kind.Options.from_json(options))
            assert _unknown(options, read) == [], (name, panel["title"])
