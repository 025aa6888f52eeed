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
from onestop.consumers.deploy_files import SQL_DATASOURCE, dashboards, generated_files
from onestop.models.reference import SAMPLE_PROVINCE, load_reference
from onestop.streams.metrics import ALL_SERIES, PREFIX
from tests.prometheus import DEPLOY, binary

RULE_FILES = [DEPLOY / "prometheus" / name
              for name in ("onestop.rules.yml", "targets.rules.yml", "names.rules.yml")]
REFERENCE = load_reference(SAMPLE_PROVINCE)
GOALS = REFERENCE.targets
# Grafana's template variables, given a value as Grafana would before a query runs.
GRAFANA_VALUES = {"$agency": "SX-STP", "$centre": "SX-TTPVHCC", "$__range": "3600s"}


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
        for board in dashboards(REFERENCE).values() for panel in board["panels"]
        for target in panel["targets"] if "expr" in target
    ]
    assert len(queries) > 40
    for board, panel, expr in queries:
        assert named_series(expr) <= known, f"{board} / {panel}: {expr}"
    # promtool parses every query as the expression of a recording rule; template
    # variables get a value first, as Grafana does.
    checked = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:query_{index}",
         "expr": with_values(expr)}
        for index, (_board, _panel, expr) in enumerate(queries)
    ]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(checked, allow_unicode=True))
    run(binary("promtool"), "check", "rules", path)


def with_values(query: str) -> str:
    for name, value in GRAFANA_VALUES.items():
        query = query.replace(name, value)
    assert "$" not in query, query
    return query


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
    sources = {path.stem: yaml.safe_load(path.read_text())["datasources"][0]
               for path in (DEPLOY / "grafana/provisioning/datasources").glob("*.yml")}
    uids = {(panel["datasource"]["type"], panel["datasource"]["uid"])
            for board in dashboards(REFERENCE).values() for panel in board["panels"]}
    assert uids == {(source["type"], source["uid"]) for source in sources.values()}
    titles = {board["title"] for board in dashboards(REFERENCE).values()}
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


# The SDK has no schema of the SQL data sources' queries (it keeps them whole): the keys
# of Grafana's SQLQuery (public/app/features/plugins/sql/types.ts, Grafana 11.2).
SQL_QUERY_KEYS = {"refId", "datasource", "hide", "format", "rawSql", "rawQuery", "editorMode",
                  "dataset", "table", "sql"}


def test_every_board_and_panel_option_is_one_grafana_knows() -> None:
    """Read with the schema of the Grafana that docker-compose pins (11.2, through
    grafana-foundation-sdk): nothing of ours may be dropped, at the board's level or in
    any panel's options (an option nested one level too deep is silently ignored)."""
    from grafana_foundation_sdk.models import dashboard

    for name, board in dashboards(REFERENCE).items():
        assert _unknown(board, _plain(dashboard.Dashboard.from_json(board))) == [], name
        for panel in board["panels"]:
            kind = importlib.import_module(f"grafana_foundation_sdk.models.{panel['type']}")
            options = panel.get("options", {})
            read = _plain(kind.Options.from_json(options))
            assert _unknown(options, read) == [], (name, panel["title"])
            for target in panel["targets"]:
                if target["datasource"]["type"] == SQL_DATASOURCE["type"]:
                    assert set(target) <= SQL_QUERY_KEYS, (name, panel["title"])
                    assert target["format"] == "table" and target["rawQuery"]


def _query(board: str, title_start: str) -> str:
    [panel] = [panel for panel in dashboards(REFERENCE)[board]["panels"]
               if panel["title"].startswith(title_start)]
    return with_values(panel["targets"][0]["expr"])


def test_period_panels_count_what_happened_in_the_range_by_name_across_a_rebalance(
    tmp_path: Path,
) -> None:
    """The province board's on-time rate by agency, run by promtool on the rules: over the
    last hour (the board's range) SX-STP ended 20 cases, 10 of them in time, while one of
    its partitions moved from worker w1 to w2 (w1's totals fell, w2's rose by as much). The
    rate is that hour's 50 %, not the all-time 83 % nor what increase() would make of w1's
    fall, and the series carries the agency's name for the legend."""
    ended = 'onestop_cases_ended_total{{job="onestop-worker",instance="{}",agency="SX-STP",' \
            'field="f",verdict="{}"}}'
    tests = {
        "rule_files": [str(path) for path in RULE_FILES],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                # Until 60 min; 5 more each to 90 min; then w1's partition moves to w2.
                {"series": ended.format("w1", "on_time"), "values": "50x60 55x29 15x31"},
                {"series": ended.format("w2", "on_time"), "values": "40x60 40x29 85x31"},
                {"series": ended.format("w1", "late"), "values": "10x60 15x29 5x31"},
                {"series": ended.format("w2", "late"), "values": "0x60 0x29 15x31"},
            ],
            "promql_expr_test": [
                {"expr": _query("province-overview.json", "Tỷ lệ trước và đúng hạn theo cơ quan"),
                 "eval_time": "2h",
                 "exp_samples": [{"labels": '{agency="SX-STP", name="Sở Tư pháp tỉnh Sông Xanh"}',
                                  "value": 0.5}]},
                {"expr": _query("province-overview.json", "Tỷ lệ trước và đúng hạn trong kỳ"),
                 "eval_time": "2h", "exp_samples": [{"labels": "{}", "value": 0.5}]},
                {"expr": "province:onestop_on_time_rate:ratio", "eval_time": "2h",
                 "exp_samples": [{"labels": "province:onestop_on_time_rate:ratio",
                                  "value": 100 / 120}]},
            ],
        }],
    }
    path = tmp_path / "boards.yaml"
    path.write_text(yaml.safe_dump(tests, allow_unicode=True))
    assert "SUCCESS" in run(binary("promtool"), "test", "rules", path)


def test_pickers_show_names_and_pass_codes() -> None:
    """The agency picker's regex (JavaScript's named groups) on a line of Grafana's
    query_result(): the text is the agency's name, the value its code."""
    [variable] = dashboards(REFERENCE)["agency.json"]["templating"]["list"]
    line = ('onestop_agency_info{agency="SX-STP", level="province", '
            'name="Sở Tư pháp tỉnh Sông Xanh"} 1 1764547200000')
    found = re.search(variable["regex"].strip("/").replace("(?<", "(?P<"), line)
    assert found and found["value"] == "SX-STP" and found["text"] == "Sở Tư pháp tỉnh Sông Xanh"
    names = yaml.safe_load((DEPLOY / "prometheus" / "names.rules.yml").read_text())
    labels = [rule["labels"] for group in names["groups"] for rule in group["rules"]
              if rule["record"] == "onestop_agency_info"]
    assert {"agency": "SX-STP", "name": "Sở Tư pháp tỉnh Sông Xanh", "level": "province"} in labels
    assert len(labels) == len(load_reference(SAMPLE_PROVINCE).agencies)


def test_rates_are_coloured_against_the_provinces_targets_and_agencies_link_to_their_board(
) -> None:
    board = dashboards(REFERENCE)["province-overview.json"]
    by_title = {panel["title"].split(" / ")[0]: panel for panel in board["panels"]}
    on_time = by_title["Tỷ lệ trước và đúng hạn theo cơ quan trong kỳ"]["fieldConfig"]["defaults"]
    assert on_time["thresholds"]["steps"] == [{"color": "red", "value": None},
                                              {"color": "green", "value": GOALS[
                                                  "completed_on_time_rate"]}]
    assert "agency=${__field.labels.agency}" in on_time["links"][0]["url"]
    assert on_time["links"][0]["url"].startswith("/d/onestop-agency/")
    coloured = [panel["title"] for panel in board["panels"]
                if "thresholds" in panel["fieldConfig"]["defaults"]]
    assert len(coloured) >= 8
    # The agency's shares: each bar against its own target.
    [shares] = [panel for panel in dashboards(REFERENCE)["agency.json"]["panels"]
                if panel["title"].startswith("Tỷ lệ trong kỳ")]
    goal_of = {override["matcher"]["options"]: override["properties"][0]["value"]["steps"][1][
        "value"] for override in shares["fieldConfig"]["overrides"]}
    assert goal_of == {
        "Luân chuyển hồ sơ điện tử / Electronic hand-offs": GOALS["e_transfer_share"],
        "Thanh toán trực tuyến / Paid online": GOALS["online_payment_share"],
        "Trả kết quả điện tử / Electronic results": GOALS["electronic_result_share"],
        "Xin lỗi đúng hạn / Apologies in time": GOALS["apology_compliance"]}
    assert {target["legendFormat"] for target in shares["targets"]} >= set(goal_of)


def test_the_case_list_names_the_unit_holding_each_case() -> None:
    [table] = [panel for panel in dashboards(REFERENCE)["agency.json"]["panels"]
               if panel["datasource"]["type"] == SQL_DATASOURCE["type"]]
    [override] = table["fieldConfig"]["overrides"]
    assert f'AS "{override["matcher"]["options"]}"' in table["targets"][0]["rawSql"]
    [mapping] = override["properties"][0]["value"]
    assert mapping["options"]["SX-STP"]["text"] == "Sở Tư pháp tỉnh Sông Xanh"
    assert set(mapping["options"]) == set(REFERENCE.agencies)
