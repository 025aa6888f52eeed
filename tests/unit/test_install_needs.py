"""`make test` on a machine where it may not install: it stops at once and prints the
exact `apt-get install` line to run (tests/install-needs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tests" / "install-needs"


def test_without_root_or_sudo_it_stops_at_once_with_the_line_to_run(tmp_path: Path) -> None:
    # A PATH with a shell and little else (no promtool, Java, Maven…), no sudo, and an
    # `id` that says the user is not root.
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "dirname", "ls"):
        (tools / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    (tools / "id").write_text("#!/bin/sh\necho 1000\n")
    (tools / "id").chmod(0o755)
    done = subprocess.run(  # noqa: S603 - our own script
        [str(SCRIPT)], env={"PATH": str(tools), "PYTHON": str(tmp_path / "no-python")},
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 1, done
    assert "sudo apt-get update && sudo apt-get install -y -qq --no-install-recommends" in (
        done.stderr)
    assert ("prometheus prometheus-alertmanager docker-compose default-jre-headless maven "
            "openssl") in done.stderr
    assert done.stdout == ""  # nothing installed, nothing fetched
