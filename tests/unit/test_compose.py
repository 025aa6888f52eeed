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
REQUIRED = {"ONESTOP_SMTP_HOST": "mail.songxanh.gov.vn"}
OURS = ("topics", "worker", "sink", "notifier")
# Which secret (file) each service gets, under which name in /run/secrets.
SECRETS_OF = {
    "topics": {"onestop_kafka_password"},
    "worker": {"onestop_kafka_password"},
    "sink": {"onestop_kafka_password", "onestop_database_password"},
    "notifier": {"onestop_kafka_password", "onestop_database_password",
                 "onestop_smtp_password", "onestop_webhook_token"},
    "postgres": {"postgres_password", "grafana_database_password"},
    "grafana": {"grafana_admin_password", "grafana_database_password"},
    "alertmanager": {"onestop_webhook_token"},
}


def compose_config(environment: dict[str, str], *overrides: Path,
                   ) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is missing: apt-get install docker-compose (.ci/run does)")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ONESTOP_", "POSTGRES_", "GRAFANA_"))}
    files = [part for path in (COMPOSE, *overrides) for part in ("-f", str(path))]
    return subprocess.run(  # noqa: S603 - a fixed command
        [binary, *files, "config"], capture_output=True, text=True,
        env={**env, **environment}, check=False, cwd=ROOT,
    )


def configured(environment: dict[str, str], *overrides: Path) -> dict[str, Any]:
    done = compose_config(environment, *overrides)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return configured(REQUIRED)


def test_each_service_gets_only_its_secrets_and_only_as_files(config: dict[str, Any]) -> None:
    services = config["services"]
    given = {name: {secret.get("target", secret["source"]) for secret in service["secrets"]}
             for name, service in services.items() if "secrets" in service}
    assert given == SECRETS_OF
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            assert not re.search(r"PASSWORD$|TOKEN$", key), (name, key)
            assert "@postgres" not in str(value) or "onestop@postgres" in str(value), (name, key)
    for name, secret in config["secrets"].items():
        assert secret["file"] == str(ROOT / "secrets" / name)
    assert "/secrets/" in (ROOT / ".gitignore").read_text().splitlines()
    # The names the services read: our settings, PostgreSQL's and Grafana's *_FILE.
    known = set(Settings.model_fields)
    for name in OURS:
        assert {secret.removeprefix("onestop_") for secret in given[name]} <= known, name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/postgres_password")
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == (
        "/run/secrets/grafana_admin_password")
    routes = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    [hook] = [hook for receiver in routes["receivers"]
              for hook in receiver.get("webhook_configs", [])]
    assert hook["http_config"]["authorization"] == {
        "type": "Bearer", "credentials_file": "/run/secrets/onestop_webhook_token"}


def test_nothing_is_published_beyond_this_host_unless_asked(config: dict[str, Any]) -> None:
    """Only Grafana (which has its own login) is published, and on 127.0.0.1; the operators'
    override adds Prometheus and Alertmanager on 127.0.0.1."""
    def published(services: dict[str, Any]) -> dict[str, list[str]]:
        return {name: [str(port) for port in service["ports"]]
                for name, service in services.items() if service.get("ports")}

    assert published(config["services"]) == {"grafana": ["127.0.0.1:3000:3000/tcp"]}
    operators = configured(REQUIRED, ROOT / "deploy" / "compose.operators.yml")
    assert published(operators["services"]) == {
        "grafana": ["127.0.0.1:3000:3000/tcp"],
        "prometheus": ["127.0.0.1:9090:9090/tcp"],
        "alertmanager": ["127.0.0.1:9093:9093/tcp"]}
    # Wider only when the operator says so, for the reverse proxy on another host.
    wider = configured({**REQUIRED, "GRAFANA_ADDRESS": "10.0.0.5"})
    assert published(wider["services"]) == {"grafana": ["10.0.0.5:3000:3000/tcp"]}


def test_the_secrets_script_makes_private_files_once(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    script = ROOT / "deploy" / "make-secrets"
    env = {**os.environ, "ONESTOP_SECRETS_DIR": str(folder)}
    subprocess.run([str(script)], env=env, stdin=subprocess.DEVNULL, check=True,  # noqa: S603
                   capture_output=True)
    made = {path.name: path.read_text() for path in folder.iterdir()}
    assert set(made) == {name for names in SECRETS_OF.values() for name in names} - {
        "onestop_database_password"} | {"postgres_password"}
    assert folder.stat().st_mode & 0o777 == 0o700
    for name in ("postgres_password", "grafana_admin_password", "grafana_database_password",
                 "onestop_webhook_token"):
        assert len(made[name].strip()) >= 40 and re.fullmatch(r"[\w-]+\n", made[name]), name
    assert made["onestop_smtp_password"] == "" and made["onestop_kafka_password"] == ""
    (folder / "onestop_smtp_password").write_text("set-by-hand")
    subprocess.run([str(script)], env=env, stdin=subprocess.DEVNULL, check=True,  # noqa: S603
                   capture_output=True)
    assert {path.name: path.read_text() for path in folder.iterdir()} == {
        **made, "onestop_smtp_password": "set-by-hand"}


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
    scrapes = {scrape["job_name"]: scrape for scrape in prometheus["scrape_configs"]}
    [discovery] = scrapes["onestop-worker"]["dns_sd_configs"]
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
    assert services["notifier"]["expose"] == [str(notifier.notifier_port)]
    assert scrapes["onestop-notifier"]["static_configs"] == [
        {"targets": [f"notifier:{notifier.notifier_port}"]}]

    source = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    [database] = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/postgres.yml").read_text())["datasources"]
    assert database["url"] == "postgres:5432" and "postgres" in services
    assert database["jsonData"]["database"] == services["postgres"]["environment"]["POSTGRES_DB"]
    assert database["secureJsonData"]["password"] == (
        "$__file{/run/secrets/grafana_database_password}")
    assert database["user"] == "grafana_reader" and "grafana_reader" in (
        ROOT / "deploy/postgres/grafana-reader.sh").read_text()
    kafka = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for name in OURS:
        broker = Settings(broker_url=environment[name]["ONESTOP_BROKER_URL"])
        assert f"PLAINTEXT://{broker.bootstrap_servers[0]}" == kafka
    for name in ("sink", "notifier"):
        store = Settings(database_url=environment[name]["ONESTOP_DATABASE_URL"],
                         database_password="pg-secret")  # its secret file's content
        assert store.database_url == "postgresql+psycopg://onestop:pg-secret@postgres:5432/onestop"
    assert "ONESTOP_DATABASE_URL" not in environment["worker"]
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
    assert mounts[("postgres", "/docker-entrypoint-initdb.d")] == str(ROOT / "deploy/postgres")
    for name in OURS:
        assert mounts[(name, "/reference")] == str(ROOT / "models/sample_province")
        assert services[name]["environment"]["ONESTOP_REFERENCE"] == "/reference"
    assert set(config["volumes"]) == {source for source in mounts.values()
                                      if not source.startswith("/")}
