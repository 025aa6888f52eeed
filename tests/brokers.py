"""Which brokers and which PostgreSQL the integration tests run against.

The integration tier runs once per broker kind in `ONESTOP_TEST_BROKERS` (default
`tansu,kafka`): the embedded Tansu of the demo, and Apache Kafka, the production broker.
Apache Kafka comes from, in this order: the cluster `KAFKA_BOOTSTRAP_SERVERS` names
(then it is the only broker tested); a container of the image docker-compose.yml pins,
when a Docker engine answers (testcontainers); else Kafka's jars fetched with Maven and
run as local processes (tests/apache_kafka.py). PostgreSQL likewise: a container of the
compose file's image when Docker answers, else the machine's own binaries."""

from __future__ import annotations

import functools
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from onestop.streams.broker import EmbeddedBroker, free_port
from tests.apache_kafka import ApacheKafka

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def compose_service(name: str) -> dict[str, Any]:
    """A service of docker-compose.yml, as the file says it."""
    return dict(yaml.safe_load(COMPOSE.read_text())["services"][name])


def compose_image(service: str) -> str:
    """The image docker-compose.yml pins for a service."""
    return str(compose_service(service)["image"])


@functools.cache
def docker_engine_answers() -> bool:
    """True when a Docker engine answers a ping on `DOCKER_HOST` (default: the local
    socket). A Docker client alone, as on the project's machines, is not enough."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            link = socket.socket(socket.AF_UNIX)
            address: Any = host.removeprefix("unix://")
        elif host.startswith("tcp://"):
            name, _, port = host.removeprefix("tcp://").rstrip("/").rpartition(":")
            link, address = socket.socket(), (name, int(port))
        else:
            return False
        with link:
            link.settimeout(3)
            link.connect(address)
            link.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return link.recv(64).split(b"\r\n", 1)[0].endswith(b" 200 OK")
    except (OSError, ValueError):
        return False


def broker_kinds(environ: Mapping[str, str]) -> list[str]:
    """The brokers the integration tier runs on, in order."""
    if environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return ["external"]
    kinds = [kind.strip() for kind in environ.get("ONESTOP_TEST_BROKERS", "tansu,kafka")
             .split(",") if kind.strip()]
    unknown = set(kinds) - {"tansu", "kafka"}
    if unknown or not kinds:
        raise ValueError(f"ONESTOP_TEST_BROKERS={environ['ONESTOP_TEST_BROKERS']!r}: "
                         "give tansu, kafka or both, comma-separated")
    return kinds


def kafka_source(docker_answers: Callable[[], bool] = docker_engine_answers) -> str:
    """Where the `kafka` kind's broker comes from: `container` or `maven`."""
    return "container" if docker_answers() else "maven"


def postgres_source(docker_answers: Callable[[], bool] = docker_engine_answers) -> str:
    """Where the store tests' PostgreSQL comes from: `container` or `binaries`."""
    return "container" if docker_answers() else "binaries"


def kafka_container_environment(port: int) -> dict[str, str]:
    """The compose file's Kafka settings, for a container whose broker is reached at
    `127.0.0.1:port` from the tests (and starts consumer groups without delay)."""
    environment = {key: str(value)
                   for key, value in compose_service("kafka")["environment"].items()}
    environment.update({
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        # No volume here: the image's own default, which its user may write.
        "KAFKA_LOG_DIRS": "/tmp/kraft-combined-logs",
    })
    return environment


@contextmanager
def kafka_container() -> Iterator[str]:
    """Apache Kafka in a container of the compose file's image; yields its bootstrap.

    The host port is fixed before the start, so that the broker can advertise it."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    port = free_port()
    container = DockerContainer(compose_image("kafka")).with_bind_ports(9092, port)
    for key, value in kafka_container_environment(port).items():
        container = container.with_env(key, value)
    with container:
        wait_for_logs(container, "Kafka Server started", timeout=120)
        yield f"127.0.0.1:{port}"


@contextmanager
def broker_of(kind: str, advertised_port: int | None = None) -> Iterator[str]:
    """A broker of its own for a test, of a kind; yields its bootstrap servers.

    `advertised_port`: clients are sent there after bootstrapping (a proxy the test
    cuts or that terminates TLS), so the broker runs as a local process."""
    if kind == "tansu":
        with EmbeddedBroker(advertised_port=advertised_port) as broker:
            yield broker.bootstrap
    elif kind == "kafka" and advertised_port is None and kafka_source() == "container":
        with kafka_container() as bootstrap:
            yield bootstrap
    elif kind == "kafka":
        ports = None if advertised_port is None else [advertised_port]
        with ApacheKafka(advertised_ports=ports) as kafka:
            yield kafka.bootstrap
    else:
        raise ValueError(f"no broker of kind {kind!r} can be started by the tests")


def port_of(bootstrap: str) -> int:
    """The port of a one-broker bootstrap on loopback (`127.0.0.1:port`)."""
    host, _, port = bootstrap.rpartition(":")
    assert host == "127.0.0.1" and "," not in bootstrap, bootstrap
    return int(port)


class PostgresContainer:
    """PostgreSQL in a container of the compose file's image, with PostgresServer's
    `port`, `new_database` and `stop` (user `postgres`, trusted, as PostgresServer)."""

    def __init__(self) -> None:
        from testcontainers.community.postgres import PostgresContainer as Container

        self.container: Any = Container(
            compose_image("postgres"), username="postgres", password="unused",
            dbname="postgres", driver="psycopg",
        ).with_env("POSTGRES_HOST_AUTH_METHOD", "trust")
        self.container.start()
        self.port = int(self.container.get_exposed_port(5432))

    def new_database(self) -> str:
        import psycopg

        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres",
                             autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.container.stop()
