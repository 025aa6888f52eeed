"""Every command with the mistakes people make: bad output paths, reversed or empty
periods, another province's events, a mistyped database, a downgrade without a target.
Each ends in one plain line and a non-zero exit, never a traceback and never a silent
success (issue 19's list: seven tracebacks and six silent successes)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from onestop.models.reference import SAMPLE_PROVINCE
from onestop.streams import cli
from onestop.streams.cli import app

RUNNER = CliRunner()


def run(*arguments: str) -> tuple[int, str]:
    result = RUNNER.invoke(app, list(arguments), env={"ONESTOP_DATABASE_URL": "sqlite:///"
                                                      "/nonexistent/onestop.db"})
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    return result.exit_code, " ".join(output.split())


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "province.jsonl"
    code, said = run("simulate", "--cases", "60", "--days", "10", "--out", str(path))
    assert code == 0, said
    return path


@pytest.fixture(scope="module")
def database(events: Path) -> str:
    url = f"sqlite:///{events.parent / 'store.db'}"
    code, said = run("replay", str(events), "--db", url, "--out", str(events.parent / "r.json"))
    assert code == 0, said
    return url


@pytest.mark.parametrize("command", [
    ["report", "--period", "2026-03", "--out", "{missing}/report.md"],
    ["replay", "{events}", "--out", "{missing}/figures.json"],
    ["replay", "{events}", "--derived", "{missing}/derived.jsonl"],
    ["replay", "{events}", "--dead-letters", "{missing}/dead.jsonl"],
    ["simulate", "--cases", "5", "--out", "{missing}/province.jsonl"],
    ["snapshot", "--out", "{missing}/live.json"],
    ["ingest", "{events}", "--dead-letters", "{missing}/dead.jsonl"],
])
def test_an_output_in_a_folder_that_does_not_exist_is_one_line(
    command: list[str], events: Path, database: str, tmp_path: Path,
) -> None:
    arguments = [part.format(missing=tmp_path / "no-such-folder", events=events)
                 for part in command]
    if command[0] == "report":
        arguments += ["--db", database]
    code, said = run(*arguments)
    assert code == 2 and "no-such-folder does not exist" in said, said
    assert not (tmp_path / "no-such-folder").exists()


@pytest.mark.parametrize("command", [
    ["report", "--period", "2026-03", "--out", "{folder}"],
    ["replay", "{events}", "--out", "{folder}"],
    ["simulate", "--cases", "5", "--out", "{folder}"],
])
def test_a_folder_given_as_an_output_file_is_one_line(
    command: list[str], events: Path, database: str, tmp_path: Path,
) -> None:
    arguments = [part.format(folder=tmp_path, events=events) for part in command]
    if command[0] == "report":
        arguments += ["--db", database]
    code, said = run(*arguments)
    assert code == 2 and "is a folder" in said, said


def test_a_reversed_period_is_an_error_and_an_empty_one_a_warning(events: Path) -> None:
    code, said = run("replay", str(events), "--from", "2026-03-10", "--to", "2026-03-01")
    assert code == 2 and "--from 2026-03-10 is after --to 2026-03-01" in said
    code, said = run("replay", str(events), "--from", "2025-01-01", "--to", "2025-01-31")
    assert code == 1 and "no case was received, ended or open in the period" in said


def test_a_report_for_a_period_without_data_is_an_error(database: str) -> None:
    code, said = run("report", "--period", "2025-01", "--db", database)
    assert code == 2 and "no case was received, ended or late in 2025-01" in said, said


def test_events_of_another_reference_point_at_reference(tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_bytes(b"".join(orjson.dumps({
        "event_id": f"X-{n}", "type": "received", "case_id": f"X-{n}",
        "occurred_at": "2026-03-02T09:00:00+07:00", "procedure": "9.999999",
        "handling_agency": "OTHER-AGENCY", "centre": "OTHER-CENTRE", "channel": "counter",
    }) + b"\n" for n in range(20)))
    code, said = run("replay", str(path))
    assert code == 2 and "20 of the 20 rejected lines name procedures or agencies" in said
    assert "is --reference the province's?" in said


def test_a_report_names_procedures_its_reference_lacks(database: str, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(SAMPLE_PROVINCE, reference)
    procedures = (reference / "procedures.csv").read_text().splitlines()
    (reference / "procedures.csv").write_text("\n".join(
        line for line in procedures if not line.startswith("1.001193,")) + "\n")
    code, said = run("report", "--period", "2026-03", "--db", database, "--reference",
                     str(reference))
    assert code == 2 and "procedures the reference data lacks (1.001193)" in said, said


def test_a_mistyped_database_is_not_created(tmp_path: Path) -> None:
    typo = tmp_path / "onestpo.db"
    code, said = run("report", "--period", "2026-03", "--db", f"sqlite:///{typo}")
    assert code == 2 and f"no database file at {typo}" in said
    assert not typo.exists()


def test_a_downgrade_needs_its_target_and_a_yes(database: str) -> None:
    code, said = run("db", "downgrade", "--db", database)
    assert code == 2 and "--revision" in said and "--yes" in said
    code, said = run("db", "downgrade", "--db", database, "--revision", "base")
    assert code == 2
    code, said = run("db", "current", "--db", database)
    assert code == 0 and "revision 0005" in said  # nothing was dropped


def test_version_and_log_levels() -> None:
    code, said = run("--version")
    assert code == 0 and said.startswith("onestop 0.")
    for command in (["sink"], ["notify"], ["worker"]):
        code, said = run(*command, "--loglevel", "bogus")
        assert code == 2 and "--loglevel 'bogus'" in said, said


def test_an_unexpected_failure_is_one_line_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(**_options: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "app", broken)
    monkeypatch.delenv("ONESTOP_DEBUG", raising=False)
    with pytest.raises(SystemExit) as ended:
        cli.main()
    assert ended.value.code == 1
    said = " ".join(capsys.readouterr().err.split())
    assert "unexpected RuntimeError: a bug (ONESTOP_DEBUG=1 shows where" in said
    assert "Traceback" not in said


def test_the_document_in_english_and_only_the_document(database: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, said = run("report", "--period", "2026-03", "--db", database, "--lang", "en",
                     "--out", str(out))
    assert code == 0, said
    page = out.read_text(encoding="utf-8")
    assert '<html lang="en">' in page and "<h1>REPORT</h1>" in page
    code, said = run("report", "--period", "2026-03", "--db", database, "--lang", "en",
                     "--format", "md")
    assert code == 2 and "--lang en: only the document (pdf, html)" in said, said
    code, said = run("report", "--period", "2026-03", "--db", database, "--lang", "fr")
    assert code == 2 and "--lang 'fr': give vi or en" in said, said


def test_erase_of_a_code_no_worker_holds_says_what_became_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker answered with a state of the request alone: the code was mistyped, or
    the case was settled and archived."""
    from onestop.streams import erase

    monkeypatch.setattr(erase, "erase_case", lambda *_args: erase.Erased(0, 7, False))
    code, said = run("erase", "--case", "HS-404")
    assert code == 2
    for words in ("no worker holds a live case HS-404", "archived, the SQL sink records the "
                  "erasure", "mistyped, nothing was erased", "không có hồ sơ HS-404"):
        assert words in said, said


def test_a_snapshot_says_which_cases_it_covers(monkeypatch: pytest.MonkeyPatch,
                                               events: Path) -> None:
    from onestop.common.replay import Replay
    from onestop.models.case import CaseRules
    from onestop.models.reference import load_reference
    from onestop.streams import snapshot

    held = Replay.for_rules(CaseRules(load_reference(SAMPLE_PROVINCE)))
    list(held.feed_lines(events.read_bytes().splitlines()))
    monkeypatch.setattr(snapshot, "live_replay", lambda _settings: held)
    monkeypatch.setattr(snapshot, "pipeline_clock", lambda _settings: held.latest)
    result = RUNNER.invoke(app, ["snapshot"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == orjson.loads(orjson.dumps(held.report(held.latest)))
    said = " ".join(result.stderr.split())
    assert "only the cases the workers hold" in said and "`onestop report`" in said, said
    assert said.startswith("Số liệu này chỉ gồm hồ sơ các worker đang giữ")
