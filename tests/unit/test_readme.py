"""The README's lists must not drift from the code."""

import re
from pathlib import Path

import typer

from onestop.models.reference import TARGET_METRICS
from onestop.streams.cli import app

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def commands():
    return dict(typer.main.get_command(app).commands)


def test_every_command_and_option_is_documented():
    table = re.findall(r"^\| `onestop ([\w-]+)(.*?)` \|", README, re.M)
    documented = {name: usage for name, usage in table}
    assert set(documented) == set(commands())
    for name, command in commands().items():
        for parameter in command.params:
            if parameter.param_type_name == "option":
                assert any(option in documented[name] for option in parameter.opts), (
                    f"onestop {name}: {parameter.opts[0]} is not in the README's table"
                )


def test_the_readme_has_exactly_two_set_up_commands_and_ci_runs_the_test_one():
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    assert blocks[:2] == ["make demo\n", "make test\n"]
    ci = (Path(__file__).parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci


def test_target_metrics_are_documented_in_the_sample_province():
    sample = (Path(__file__).parents[2] / "models" / "sample_province" / "README.md").read_text()
    assert all(f"`{metric}`" in sample for metric in TARGET_METRICS)


def test_every_setting_is_documented_with_its_default():
    from onestop.common.settings import Settings

    rows = dict(re.findall(r"^\| `(ONESTOP_\w+)` \| (.*?) \|", README, re.M))
    names = {"ONESTOP_" + name.upper() for name in Settings.model_fields}
    assert set(rows) == names
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        if isinstance(default, (int, float, str)):
            assert f"`{shown}`" in rows["ONESTOP_" + name.upper()], name


def test_every_topic_is_documented():
    from onestop.common.settings import Settings
    from onestop.common.topics import topics_for

    documented = set(re.findall(r"^\| `(onestop[.-][\w.-]+)` \|", README, re.M))
    assert documented == {spec.name for spec in topics_for(Settings()).all()}


def test_every_metric_is_documented():
    from onestop.streams.metrics import ALL_SERIES, PREFIX

    documented = set(re.findall(r"`(onestop_\w+)`", README))
    for series in ALL_SERIES:
        name = PREFIX + series.name + ("_total" if series.kind == "counter" else "")
        assert name in documented, name
