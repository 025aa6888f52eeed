"""Which brokers and PostgreSQL the integration tier uses (tests/brokers.py), and that
the Apache Kafka it runs is the version production runs. The container path itself
needs a Docker engine, which the project's machines lack: here the choice is tested."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apache_kafka import KAFKA_VERSION, POM, cluster_id
from tests.brokers import (
    broker_kinds,
    compose_image,
    docker_engine_answers,
    kafka_container_environment,
    kafka_source,
    postgres_source,
)


def test_both_brokers_by_default_or_only_the_cluster_named() -> None:
    assert broker_kinds({}) == ["tansu", "kafka"]
    assert broker_kinds({"ONESTOP_TEST_BROKERS": "kafka"}) == ["kafka"]
    assert broker_kinds({"ONESTOP_TEST_BROKERS": " tansu "}) == ["tansu"]
    assert broker_kinds({"KAFKA_BOOTSTRAP_SERVERS": "k1:9092", "ONESTOP_TEST_BROKERS": "tansu"}
                        ) == ["external"]
    with pytest.raises(ValueError, match="give tansu, kafka or both"):
        broker_kinds({"ONESTOP_TEST_BROKERS": "redpanda"})


def test_containers_when_a_docker_engine_answers_else_local_processes() -> None:
    assert kafka_source(lambda: True) == "container"
    assert kafka_source(lambda: False) == "maven"
    assert postgres_source(lambda: True) == "container"
    assert postgres_source(lambda: False) == "binaries"


@pytest.fixture
def fake_engine(tmp_path: Path) -> Iterator[tuple[Path, list[bytes]]]:
    """A Unix socket answering HTTP as a Docker engine's /_ping would, or not."""
    path, answers = tmp_path / "docker.sock", [b"HTTP/1.1 200 OK\r\n\r\nOK"]
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        while answers:
            link, _ = server.accept()
            with link:
                link.recv(1024)
                link.sendall(answers.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, answers
    server.close()


def test_a_docker_engine_is_one_that_answers_its_ping(
    fake_engine: tuple[Path, list[bytes]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, answers = fake_engine
    answers.append(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    for host, expected in [(f"unix://{path}", True), (f"unix://{path}", False),
                           (f"unix://{tmp_path / 'none.sock'}", False),
                           ("tcp://127.0.0.1:1", False), ("ssh://somewhere", False)]:
        monkeypatch.setenv("DOCKER_HOST", host)
        docker_engine_answers.cache_clear()
        assert docker_engine_answers() is expected, host
    docker_engine_answers.cache_clear()


def test_the_kafka_tested_is_the_kafka_compose_runs() -> None:
    assert compose_image("kafka") == f"apache/kafka:{KAFKA_VERSION}"
    versions = re.findall(r"<artifactId>kafka_2\.13</artifactId>\s*<version>([^<]+)<",
                          POM.read_text())
    assert versions == [KAFKA_VERSION]


def test_cluster_ids_are_what_kafka_storage_accepts() -> None:
    made = {cluster_id() for _ in range(2000)}
    assert len(made) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", one) for one in made)


def test_the_kafka_container_runs_the_compose_files_broker_reachable_from_the_tests() -> None:
    environment = kafka_container_environment(40123)
    assert environment["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://127.0.0.1:40123"
    assert environment["KAFKA_LISTENERS"] == "PLAINTEXT://:9092,CONTROLLER://:9093"
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_without_java_or_maven_the_kafka_tier_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests import apache_kafka

    monkeypatch.setattr(apache_kafka, "CLASSPATH_FILE", tmp_path / "not-fetched.classpath")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(apache_kafka.KafkaUnavailable,
                       match=r"need java and mvn.*apt-get install default-jre-headless maven"):
        apache_kafka.classpath()


def test_more_server_properties_are_added_and_replace_the_defaults() -> None:
    from tests.apache_kafka import ApacheKafka

    kafka = ApacheKafka(properties={"log.roll.ms": 21000,
                                    "group.initial.rebalance.delay.ms": 3000})
    try:
        lines = kafka.properties(kafka.nodes[0]).splitlines()
    finally:
        kafka.folder.rmdir()  # made by the constructor, empty until start
    assert "log.roll.ms=21000" in lines
    assert "group.initial.rebalance.delay.ms=3000" in lines
    assert "group.initial.rebalance.delay.ms=0" not in lines
    assert "auto.create.topics.enable=false" in lines
