"""The Kafka link over TLS: every client of the monitor (kafka-python for topics, ingest
and reads; aiokafka and Faust in the worker) takes the security settings. The embedded
broker speaks plain Kafka, so a TLS-terminating proxy stands in front of it, and the
broker advertises the proxy: no client can reach it without TLS."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from onestop.common.topics import create_topics
from onestop.streams.broker import free_port
from onestop.streams.ingest import ingest_lines
from tests.brokers import broker_of, port_of
from tests.integration.conftest import eventually, replay_of, settings_for, wait_processed
from tests.integration.test_live_pipeline import AS_OF, FIXED_CLOCK, live_matches, province_file
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "broker.pem", folder / "broker.key"
    subprocess.run(  # noqa: S603 - fixed arguments
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",  # noqa: S607
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def test_the_whole_pipeline_runs_over_tls(
    broker_kind: str, start_worker: Any, tmp_path: Path
) -> None:
    if broker_kind == "external":
        pytest.skip("needs a broker of its own behind a TLS proxy")
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    proxy_port = free_port()
    with broker_of(broker_kind, advertised_port=proxy_port) as servers, \
            TcpProxy(port_of(servers), port=proxy_port, tls=tls):
        settings = settings_for(f"127.0.0.1:{proxy_port}", tmp_path,
                                kafka_security_protocol="SSL", kafka_ca_file=str(cert))
        # Plain Kafka to the TLS port gets nowhere.
        with pytest.raises(KafkaError):
            KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                             request_timeout_ms=3000, api_version_auto_timeout_ms=3000)

        create_topics(settings)
        path = province_file(tmp_path, cases=120, seed=51)
        expected, _ = replay_of(path, AS_OF)
        counts = ingest_lines(settings, path.read_bytes().splitlines())
        start_worker(settings, clock=FIXED_CLOCK).wait_ready()
        wait_processed(settings, counts.ends, timeout=120)
        assert eventually(lambda: live_matches(settings, expected), timeout=30)
