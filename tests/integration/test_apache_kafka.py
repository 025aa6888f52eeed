"""What only the production broker makes possible: topic configurations as declared, a
broker killed in a three-broker cluster, and SASL/SCRAM logins. Apache Kafka runs from
its Maven-fetched jars (tests/apache_kafka.py), a cluster of its own per module."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from onestop.common.settings import Settings
from onestop.common.topics import create_topics, topics_for
from onestop.consumers.sink import Sink
from onestop.consumers.store import Store, connect, upgrade
from onestop.streams.app import create_app
from onestop.streams.broker import free_port
from onestop.streams.ingest import ingest_lines
from onestop.streams.tansu_compat import is_tansu, read_to_end
from tests.apache_kafka import ApacheKafka
from tests.brokers import broker_kinds
from tests.conftest import suite_secret
from tests.integration.conftest import (
    Inbox,
    committed,
    drain,
    eventually,
    replay_of,
    settings_for,
    wait_processed,
)
from tests.integration.test_live_pipeline import (
    AS_OF,
    FIXED_CLOCK,
    differences,
    live_matches,
    province_file,
)
from tests.integration.test_notifier import CLOCK, EVENTS, OFFICE, run_notifier

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif("kafka" not in broker_kinds(os.environ),
                       reason="ONESTOP_TEST_BROKERS leaves Apache Kafka out"),
]

PASSWORD = suite_secret("mat-khau-" + uuid.uuid4().hex[:8])


def admin_of(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                            **settings.kafka_options())


# ---- topic configuration ------------------------------------------------------------

@pytest.fixture(scope="module")
def kafka() -> Iterator[ApacheKafka]:
    with ApacheKafka() as cluster:
        yield cluster


def test_topics_have_their_declared_partitions_compaction_and_retention(
    kafka: ApacheKafka, start_worker: Any, tmp_path: Path
) -> None:
    settings = settings_for(kafka.bootstrap, tmp_path)
    create_topics(settings)
    # A worker has run over them: Faust declares its changelogs too, and must not
    # have changed what `onestop topics` made.
    start_worker(settings, clock=FIXED_CLOCK).wait_ready()
    specs = topics_for(settings).all()
    admin = admin_of(settings)
    try:
        described = {topic["name"]: topic for topic in
                     admin.describe_topics([spec.name for spec in specs])}
        answer = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in specs],
            config_filter="all")
    finally:
        admin.close()
    configs = {name: {key: entry["value"] for key, entry in config.items()}
               for name, config in answer["topic"].items()}
    for spec in specs:
        assert len(described[spec.name]["partitions"]) == spec.partitions, spec.name
        config = configs[spec.name]
        assert config["cleanup.policy"] == ("compact" if spec.compacted else "delete"), spec.name
        # Kafka's default is a week; the dead letters keep their own retention, the
        # ticks an hour.
        retention = "-1" if spec.kept_forever else "3600000" if spec.short_lived else str(
            (spec.retention_days or 7) * 24 * 3600 * 1000)
        assert config["retention.ms"] == retention, spec.name
        if spec.compacted:  # an erased applicant's older records go within a week
            assert config["max.compaction.lag.ms"] == str(7 * 24 * 3600 * 1000), spec.name
    assert {spec.name for spec in specs if spec.compacted} == {
        f"{settings.topic_prefix}.aggregates", f"{settings.app_id}-cases-changelog",
        f"{settings.app_id}-tickets-changelog", f"{settings.app_id}-archived-changelog"}
    assert [spec.name for spec in specs if spec.retention_days] == [
        f"{settings.topic_prefix}.dead-letters"]
    assert [spec.name for spec in specs if spec.short_lived] == [
        f"{settings.topic_prefix}.ticks"]
    assert {spec.name for spec in specs if spec.kept_forever} == {
        f"{settings.topic_prefix}.{name}"
        for name in ("case-events", "queue-events", "portal-status")}


def test_the_tansu_end_offset_fix_stays_off_on_apache_kafka(
    kafka: ApacheKafka, tmp_path: Path
) -> None:
    settings = settings_for(kafka.bootstrap, tmp_path)
    assert not is_tansu(settings.bootstrap_servers)
    assert create_app(settings).tansu is False


# ---- a broker killed in a three-broker cluster -----------------------------------------

@pytest.fixture(scope="module")
def cluster() -> Iterator[ApacheKafka]:
    with ApacheKafka(nodes=3) as three:
        yield three


def leader_of_most(settings: Settings, topic: str) -> int | None:
    """The broker that leads the most partitions of `topic`; None while the client
    cannot tell (kafka-python raises when the node it asks has just died)."""
    try:
        admin = admin_of(settings)
        try:
            [described] = admin.describe_topics([topic])
        finally:
            admin.close()
    except KafkaError:
        return None
    leaders = collections.Counter(partition["leader_id"] for partition in described["partitions"])
    return leaders.most_common(1)[0][0]


def test_the_leader_of_the_input_partitions_killed_mid_stream_loses_and_doubles_nothing(
    cluster: ApacheKafka, start_worker: Any, tmp_path: Path
) -> None:
    settings = settings_for(cluster.bootstrap, tmp_path, replication_factor=3)
    create_topics(settings)
    path = province_file(tmp_path, cases=300, seed=61, duplicate_rate=0.05)
    lines = path.read_bytes().splitlines()
    expected, expected_ids = replay_of(path, AS_OF)
    start_worker(settings, clock=FIXED_CLOCK).wait_ready(timeout=90)
    half = len(lines) // 2
    first = ingest_lines(settings, lines[:half])
    topic = topics_for(settings).case_events.name
    # Killed while the worker is busy with the first half.
    assert eventually(lambda: sum(committed(settings).values()) > 0, timeout=60, every=0.2)
    [victim] = [node for node in cluster.nodes if node.node_id == leader_of_most(settings, topic)]
    cluster.kill(victim)
    # The controller fences it once its heartbeats stop (9 s) and elects new leaders.
    assert eventually(lambda: leader_of_most(settings, topic) not in (None, victim.node_id),
                      timeout=30)
    # The rest is produced with one broker of three down (two replicas stay in sync).
    rest = ingest_lines(settings, lines[half:])

    wait_processed(settings, {**first.ends, **rest.ends}, timeout=180)
    assert eventually(lambda: live_matches(settings, expected), timeout=60), differences(
        settings, expected)
    ids = [orjson.loads(record.value)["event_id"] for record in read_all(
        settings, topics_for(settings).derived_events.name)]
    assert expected_ids <= set(ids), sorted(expected_ids - set(ids))[:10]
    doubled = [key for key, count in collections.Counter(ids).items() if count > 1]
    assert doubled == []


def read_all(settings: Settings, topic: str) -> list[Any]:
    return read_to_end(settings.bootstrap_servers, [topic], **settings.kafka_options())


# ---- SASL/SCRAM-SHA-512 --------------------------------------------------------------

@pytest.fixture(scope="module")
def scram_kafka() -> Iterator[ApacheKafka]:
    """The client listener takes SCRAM-SHA-512 only; the user is created in the
    cluster's metadata."""
    with ApacheKafka(scram_users={"onestop": PASSWORD}) as cluster:
        yield cluster


def onestop(settings: Settings, *arguments: str, timeout: float = 120,
            **extra: object) -> subprocess.CompletedProcess[str]:
    """An `onestop` command as a user runs it, with the settings in its environment."""
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "onestop.streams", *arguments], env=settings.model_copy(
            update=extra).environment(), capture_output=True, text=True, timeout=timeout,
    )


def test_every_client_logs_in_with_scram_and_a_wrong_password_is_refused_plainly(
    scram_kafka: ApacheKafka, start_worker: Any, tmp_path: Path
) -> None:
    settings = settings_for(
        scram_kafka.bootstrap, tmp_path, kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_username="onestop", kafka_password=PASSWORD)
    # Nothing reaches the SASL listener without logging in.
    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=3000)

    # A wrong password: each command stops at once and says why, without the password.
    path = province_file(tmp_path, cases=60, seed=71)
    for command in (["topics"], ["ingest", str(path)], ["worker"], ["snapshot"], ["sink"],
                    ["notify"]):
        started = time.monotonic()
        done = onestop(settings, *command, timeout=60, kafka_password="sai-mat-khau")
        assert done.returncode != 0, (command, done.stdout, done.stderr)
        said = " ".join(done.stderr.split())
        assert "refused the login of user 'onestop' with SCRAM-SHA-512" in said, (command, said)
        assert "sai-mat-khau" not in done.stderr + done.stdout
        assert time.monotonic() - started < 30, command

    # The right password: topics, ingest, worker, snapshot, sink and notifier.
    assert onestop(settings, "topics").returncode == 0
    ingested = onestop(settings, "ingest", str(path))
    assert ingested.returncode == 0, ingested.stderr
    expected, _ = replay_of(path, AS_OF)
    start_worker(settings, clock=FIXED_CLOCK).wait_ready()
    wait_processed(settings, end_offsets(settings), timeout=120)
    snapshot = onestop(settings, "snapshot", "--as-of", "2026-04-20T17:00:00+07:00")
    assert snapshot.returncode == 0, snapshot.stderr
    assert orjson.loads(snapshot.stdout) == orjson.loads(orjson.dumps(expected))

    store = Store(connect(f"sqlite:///{tmp_path / 'sink.db'}"))
    upgrade(store.engine)
    sink = Sink(settings, store)
    try:
        assert drain(sink) > 0
    finally:
        sink.close()

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    notifier_settings = settings.model_copy(update={
        "smtp_port": port, "clock": CLOCK,
        "province_office_email": OFFICE, "database_url": f"sqlite:///{tmp_path / 'n.db'}",
        "notifier_port": free_port(), "topic_prefix": settings.topic_prefix + "-n",
        "app_id": settings.app_id + "-n"})
    try:
        create_topics(notifier_settings)
        counts = ingest_lines(notifier_settings, [orjson.dumps(event) for event in EVENTS])
        start_worker(notifier_settings, clock=CLOCK).wait_ready()
        wait_processed(notifier_settings, counts.ends, timeout=60)
        _, close = run_notifier(notifier_settings, threading.Event())
        try:
            # At risk, late, escalation, and a digest for each of the two heads.
            assert eventually(lambda: len(inbox.messages) >= 5, timeout=40, every=0.5)
        finally:
            close()
    finally:
        controller.stop()


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    """The end of each partition of the input topics."""
    from kafka import KafkaConsumer, TopicPartition

    topics = topics_for(settings)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                             **settings.kafka_options())
    try:
        parts = [TopicPartition(spec.name, partition)
                 for spec in (topics.case_events, topics.queue_events)
                 for partition in range(spec.partitions)]
        return {(tp.topic, tp.partition): offset
                for tp, offset in consumer.end_offsets(parts).items() if offset}
    finally:
        consumer.close()
