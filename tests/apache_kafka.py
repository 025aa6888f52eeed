"""Apache Kafka for the tests: its jars fetched from Maven Central with Maven, and KRaft
nodes (broker and controller in one JVM each) started on loopback ports with their own
data directories, then stopped. No Docker needed.

`python -m tests.apache_kafka fetch` fetches the jars once (`make test` runs it); the
classpath Maven resolves is kept in `.cache/`, the jars in the user's Maven repository."""

from __future__ import annotations

import base64
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient

from onestop.streams.broker import free_port, port_open, stop_process

# The version docker-compose.yml runs; tests/kafka/pom.xml names it too.
KAFKA_VERSION = "3.9.1"
ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "tests" / "kafka" / "pom.xml"
CLASSPATH_FILE = ROOT / ".cache" / f"apache-kafka-{KAFKA_VERSION}.classpath"


class KafkaUnavailable(RuntimeError):
    """Apache Kafka cannot be run here; the message says what to install."""


def classpath() -> str:
    """The jars of Apache Kafka's server, fetched with Maven on first use."""
    if CLASSPATH_FILE.exists():
        jars = CLASSPATH_FILE.read_text().strip()
        if jars and all(Path(jar).exists() for jar in jars.split(os.pathsep)):
            return jars
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise KafkaUnavailable(
            f"the Apache Kafka tests need {' and '.join(missing)}, which this machine lacks: "
            "`apt-get install default-jre-headless maven` (`make test` does it as root or "
            "with sudo), or run only the embedded broker with ONESTOP_TEST_BROKERS=tansu")
    print(f"resolving Apache Kafka {KAFKA_VERSION}'s jars with Maven (fetched from Maven "
          "Central into ~/.m2 the first time, about 60 MB)", file=sys.stderr, flush=True)
    CLASSPATH_FILE.parent.mkdir(exist_ok=True)
    result = subprocess.run(  # noqa: S603 - fixed arguments
        ["mvn", "--batch-mode", "--quiet", "--file", str(POM),  # noqa: S607
         "dependency:build-classpath", "-Dmdep.includeScope=runtime",
         f"-Dmdep.outputFile={CLASSPATH_FILE}"],
        capture_output=True, text=True,
    )
    if result.returncode != 0 or not CLASSPATH_FILE.exists():
        raise KafkaUnavailable(
            f"Maven could not fetch Apache Kafka {KAFKA_VERSION}'s jars:\n"
            f"{(result.stdout + result.stderr)[-3000:]}")
    return CLASSPATH_FILE.read_text().strip()


def cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as
    `kafka-storage random-uuid` prints; like Kafka's own, never starting with '-', which
    the storage tool's command line would take for an option."""
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not made.startswith("-"):
            return made


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, even by SIGKILL,
    so that no broker outlives its tests (Linux's PR_SET_PDEATHSIG)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Node:
    node_id: int
    folder: Path
    client_port: int  # what clients use: PLAINTEXT, or SASL_PLAINTEXT with SCRAM users
    internal_port: int  # between brokers, and the tests' readiness probe: PLAINTEXT
    controller_port: int
    advertised_port: int  # what clients are told after bootstrapping (a proxy's port)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.folder / "server.log"


LOG4J = """\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""

# Small heaps, a serial collector and the client compiler: a test broker starts in a few
# seconds and leaves the two cores to the workers under test.
JVM_OPTIONS = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-Djava.awt.headless=true"]


class ApacheKafka:
    """A KRaft cluster of `nodes` combined broker-controllers on loopback.

    With three nodes, internal topics and `min.insync.replicas` follow production's
    replication (3 copies, 2 in sync). `scram_users` ({name: password}) turns the client
    listener into SASL_PLAINTEXT with SCRAM-SHA-512; the users are created in the
    cluster's metadata when its storage is formatted. `advertised_ports` makes node i
    tell clients to come back through another port (the fault tests' proxy).
    `properties`: more lines for every node's server.properties, replacing those below
    of the same name (a benchmark's log settings)."""

    def __init__(self, nodes: int = 1, scram_users: dict[str, str] | None = None,
                 advertised_ports: list[int] | None = None,
                 properties: dict[str, object] | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="onestop-kafka-"))
        self.scram_users = scram_users or {}
        self.extra_properties = dict(properties or {})
        self.cluster_id = cluster_id()
        self.nodes = []
        for index in range(nodes):
            client = free_port()
            self.nodes.append(Node(
                node_id=index + 1, folder=self.folder / f"node-{index + 1}",
                client_port=client, internal_port=free_port(), controller_port=free_port(),
                advertised_port=advertised_ports[index] if advertised_ports else client,
            ))

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{node.client_port}" for node in self.nodes)

    @property
    def internal_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{node.internal_port}" for node in self.nodes)

    @property
    def security_protocol(self) -> str:
        return "SASL_PLAINTEXT" if self.scram_users else "PLAINTEXT"

    def properties(self, node: Node) -> str:
        replicas = min(3, len(self.nodes))
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        lines = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"CLIENT://127.0.0.1:{node.client_port},"
                         f"INTERNAL://127.0.0.1:{node.internal_port},"
                         f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{node.advertised_port},"
                                    f"INTERNAL://127.0.0.1:{node.internal_port}",
            "listener.security.protocol.map": f"CLIENT:{self.security_protocol},"
                                              "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": node.folder / "data",
            "auto.create.topics.enable": "false",  # as docker-compose.yml
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min(2, replicas),
            "min.insync.replicas": min(2, replicas),
            # Tests start consumer groups all the time; production keeps Kafka's 3 s.
            "group.initial.rebalance.delay.ms": 0,
        }
        if self.scram_users:
            lines["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
            lines["listener.name.client.scram-sha-512.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;")
        lines.update(self.extra_properties)
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def _java(self, node: Node, main: str, *args: str) -> list[str]:
        return ["java", *JVM_OPTIONS, f"-Dkafka.logs.dir={node.folder}",
                f"-Dlog4j.configuration=file:{node.folder / 'log4j.properties'}",
                "-cp", self.jars, main, *args]

    def start(self, timeout: float = 90.0) -> ApacheKafka:
        self.jars = classpath()
        formats = []
        for node in self.nodes:
            node.folder.mkdir(parents=True)
            (node.folder / "server.properties").write_text(self.properties(node))
            (node.folder / "log4j.properties").write_text(LOG4J)
            scram = [arg for name, password in self.scram_users.items() for arg in
                     ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")]
            formats.append(subprocess.Popen(  # noqa: S603 - our own arguments
                self._java(node, "kafka.tools.StorageTool", "format", "--ignore-formatted",
                           "-t", self.cluster_id, "-c", str(node.folder / "server.properties"),
                           *scram),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        for node, formatting in zip(self.nodes, formats, strict=True):
            output, _ = formatting.communicate(timeout=120)
            if formatting.returncode != 0:
                raise KafkaUnavailable(f"formatting node {node.node_id} failed:\n{output.decode()}")
        for node in self.nodes:
            self.start_node(node)
        self.wait_ready(timeout)
        return self

    def start_node(self, node: Node) -> None:
        """Start (or restart after `kill`) one node with the data it has."""
        with (node.folder / "stdout.log").open("ab") as log:  # the child keeps its own
            node.process = subprocess.Popen(  # noqa: S603 - our own arguments
                self._java(node, "kafka.Kafka", str(node.folder / "server.properties")),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent,  # noqa: PLW1509
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until every running node's broker is registered and listening."""
        running = [node for node in self.nodes if node.process and node.process.poll() is None]
        deadline = time.monotonic() + timeout
        while True:
            for node in running:
                if node.process is None or node.process.poll() is not None:
                    raise KafkaUnavailable(
                        f"Kafka node {node.node_id} exited at start:\n{self.tail(node)}")
            if all(port_open(node.client_port) for node in running):
                try:
                    admin = KafkaAdminClient(
                        bootstrap_servers=self.internal_bootstrap, request_timeout_ms=5000)
                    try:
                        brokers = admin.describe_cluster()["brokers"]
                    finally:
                        admin.close()
                    if len(brokers) >= len(running):
                        return
                except Exception:  # noqa: BLE001, S110 - not ready yet: try again
                    pass
            if time.monotonic() > deadline:
                raise KafkaUnavailable(
                    f"Kafka did not become ready in {timeout} s:\n{self.tail(self.nodes[0])}")
            time.sleep(0.3)

    def tail(self, node: Node, size: int = 3000) -> str:
        text = ""
        for log in (node.folder / "stdout.log", node.log):
            if log.exists():
                text += log.read_text(errors="replace")[-size:]
        return text

    def kill(self, node: Node) -> None:
        """SIGKILL: a broker that dies without a word."""
        if node.process is not None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()

    def stop(self) -> None:
        """SIGTERM to every node at once (a controlled shutdown), SIGKILL to any still up
        after 20 s; then the data are deleted."""
        stopping = []
        for node in self.nodes:
            process, node.process = node.process, None
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                stopping.append(process)
        for process in stopping:
            stop_process(process, grace=20)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ApacheKafka:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


if __name__ == "__main__":
    if sys.argv[1:] != ["fetch"]:
        sys.exit("usage: python -m tests.apache_kafka fetch")
    try:
        classpath()
    except KafkaUnavailable as error:
        sys.exit(str(error))
