"""docker-compose.yml, checked without a Docker engine: Debian's `docker-compose config`
validates it against the Compose specification, and what it names (settings, ports,
paths, images, commands) is checked against the code and the deployment files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from onestop.common.settings import Settings
from onestop.streams.cli import app

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
           "ONESTOP_SMTP_HOST": "mail.songxanh.gov.vn"}
OURS = ("topics", "worker", "sink", "notifier")


def compose_config(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is missing: apt-get install docker-compose (.ci/run does)")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ONESTOP_", "POSTGRES_", "GRAFANA_"))}
    return subprocess.run(  # noqa: S603 - a fixed command
        [binary, "-f", str(COMPOSE), "config"], capture_output=True, text=True,
        env={**env, **environment}, check=False, cwd=ROOT,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    done = compose_config(SECRETS)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)  # type: ignore[no-any-return]


def test_secrets_come_from_the_environment_and_nowhere_else() -> None:
    for name in SECRETS:
        done = compose_config({key: value for key, value in SECRETS.items() if key != name})
        assert done.returncode != 0 and f"set {name}" in done.stderr, (name, done.stderr)
    text = COMPOSE.read_text()
    for value in SECRETS.values():
        assert value not in text


def test_every_onestop_variable_is_a_setting_and_the_settings_parse(
    config: dict[str, Any],
) -> None:
    known = {"ONESTOP_" + name.upper() for name in Settings.model_fields}
    for name in OURS:
        environment = config["services"][name]["environment"]
        ours = {key: value for key, value in environment.items() if key.startswith("ONESTOP_")}
        assert set(ours) <= known, (name, set(ours) - known)
        # Each service's settings, as the code reads them: none rejected.
        Settings(**{key.removeprefix("ONESTOP_").lower(): value for key, value in ours.items()})


def test_our_services_run_commands_the_cli_has_from_one_image(config: dict[str, Any]) -> None:
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["onestop"]' in dockerfile
    images = set()
    for name in OURS:
        service = config["services"][name]
        assert service["command"][0] in commands, service["command"]
        assert service["build"]["context"] == str(ROOT)
        images.add(service["image"])
    assert len(images) == 1


def test_images_are_pinned(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)


def test_long_running_services_have_health_checks(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        if name != "topics":
            assert "healthcheck" in service, name
    worker = config["services"]["worker"]
    assert "ports" not in worker and "container_name" not in worker, (
        "a fixed host port or name would stop `--scale worker=N`")


def test_ports_match_what_the_other_parts_expect(config: dict[str, Any]) -> None:
    services = config["services"]
    environment = {name: services[name]["environment"] for name in OURS}
    worker = Settings(metrics_port=environment["worker"]["ONESTOP_METRICS_PORT"])
    notifier = Settings(notifier_port=environment["notifier"]["ONESTOP_NOTIFIER_PORT"])

    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    [scrape] = prometheus["scrape_configs"]
    [discovery] = scrape["dns_sd_configs"]
    assert discovery["names"] == ["worker"] and discovery["port"] == worker.metrics_port
    assert f"127.0.0.1:{worker.metrics_port}/healthz" in str(services["worker"]["healthcheck"])
    [alertmanager] = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = alertmanager.split(":")
    assert host in services and f"{port}/-/healthy" in str(services[host]["healthcheck"])

    routes = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    urls = [hook["url"] for receiver in routes["receivers"]
            for hook in receiver.get("webhook_configs", [])]
    assert urls and all(url == f"http://notifier:{notifier.notifier_port}/alertmanager"
                        for url in urls)
    assert {"published": notifier.notifier_port, "target": notifier.notifier_port} in [
        {key: int(value) for key, value in port.items() if key in ("published", "target")}
        for port in services["notifier"]["ports"]]

    source = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    kafka = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for name in OURS:
        broker = Settings(broker_url=environment[name]["ONESTOP_BROKER_URL"])
        assert f"PLAINTEXT://{broker.bootstrap_servers[0]}" == kafka
    database = environment["sink"]["ONESTOP_DATABASE_URL"]
    assert re.fullmatch(r"postgresql\+psycopg://onestop:pg-secret@postgres:5432/onestop",
                        database)
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "onestop"


def test_mounted_folders_exist_and_land_where_the_configs_look(config: dict[str, Any]) -> None:
    services = config["services"]
    mounts = {(name, volume.split(":")[1]): volume.split(":")[0]
              for name, service in services.items() for volume in service.get("volumes", [])}
    for (name, _target), source in mounts.items():
        if source.startswith("/"):  # a folder of this repository, not a named volume
            assert Path(source).is_dir(), (name, source)
    assert mounts[("prometheus", "/etc/prometheus")] == str(ROOT / "deploy/prometheus")
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert mounts[("alertmanager", "/etc/alertmanager")] == str(ROOT / "deploy/alertmanager")
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in (
        services["alertmanager"]["command"])
    boards = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/onestop.yml").read_text())
    path = boards["providers"][0]["options"]["path"]
    assert mounts[("grafana", path)] == str(ROOT / "deploy/grafana/dashboards")
    assert mounts[("grafana", "/etc/grafana/provisioning")] == str(
        ROOT / "deploy/grafana/provisioning")
    for name in OURS:
        assert mounts[(name, "/reference")] == str(ROOT / "models/sample_province")
        assert services[name]["environment"]["ONESTOP_REFERENCE"] == "/reference"
    assert set(config["volumes"]) == {source for source in mounts.values()
                                      if not source.startswith("/")}
