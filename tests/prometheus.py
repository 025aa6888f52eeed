"""A throw-away Prometheus or Alertmanager server (Debian packages `prometheus` and
`prometheus-alertmanager`) on a loopback port, for tests."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from onestop.streams.broker import free_port, stop_process

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed: `apt-get install prometheus "
                    "prometheus-alertmanager` (.ci/run does)")
    return found


def get_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return orjson.loads(response.read())


class Server:
    """A child process answering on `http://127.0.0.1:<port>`, ready when `ready_path`
    answers."""

    def __init__(self, command: list[str], port: int, ready_path: str, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("ab") as handle:
            self.process = subprocess.Popen(  # noqa: S603
                command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + ready_path, timeout=2).close()  # noqa: S310
                return
            except (urllib.error.URLError, ConnectionError) as error:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(
                        f"{command[0]} did not start:\n{log.read_text()}") from error
                time.sleep(0.2)

    def stop(self) -> None:
        stop_process(self.process)


def start_prometheus(folder: Path, scrape_targets: list[str], interval: str = "1s") -> Server:
    """Prometheus with the repository's rules, scraping `scrape_targets` as the worker
    job."""
    for name in ("onestop.rules.yml", "targets.rules.yml", "names.rules.yml"):
        shutil.copy(DEPLOY / "prometheus" / name, folder / name)
    targets = ", ".join(f'"{target}"' for target in scrape_targets)
    config = folder / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: {interval}, evaluation_interval: {interval}}}\n"
        "rule_files: [onestop.rules.yml, targets.rules.yml, names.rules.yml]\n"
        f"scrape_configs:\n  - job_name: onestop-worker\n    static_configs:\n"
        f"      - targets: [{targets}]\n"
    )
    port = free_port()
    return Server(
        [binary("prometheus"), f"--config.file={config}",
         f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        port, "/-/ready", folder / "prometheus.log",
    )


def query(server: Server, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    """An instant query's result as {sorted labels: value}."""
    answer = get_json(f"{server.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", answer
    return {
        tuple(sorted(item["metric"].items())): float(item["value"][1])
        for item in answer["data"]["result"]
    }
