"""A kafka-python client closed while a connection is still busy leaves no open socket
behind in the tests (tests/conftest.py closes it; kafka-python 3.0.12 does not)."""

from __future__ import annotations

import gc
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from kafka import KafkaProducer
from kafka.net.selector import NetworkSelector
from kafka.net.transport import KafkaTCPTransport


@contextmanager
def unclosed_sockets() -> Iterator[list[str]]:
    """The ResourceWarnings of sockets collected inside the block, collected at its end."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield found
        gc.collect()
    found.extend(str(warning.message) for warning in caught
                 if issubclass(warning.category, ResourceWarning))


def test_a_client_closed_during_its_tls_handshake_leaves_no_socket_open() -> None:
    # A server that accepts the connection and never answers the client's hello.
    with socket.create_server(("127.0.0.1", 0)) as silent, unclosed_sockets() as leaked:
        silent.settimeout(10)
        producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{silent.getsockname()[1]}",
                                 security_protocol="SSL", api_version=(3, 9))
        peer, _ = silent.accept()
        with peer:
            peer.settimeout(10)
            assert peer.recv(1)  # the hello: the client's handshake is under way
            producer.close()
    assert leaked == []


def test_a_connection_closed_with_bytes_unsent_leaves_no_socket_open() -> None:
    # A consumer closed while a request it queued is not yet sent: the transport's close()
    # leaves the bytes to its write task, then the client closes its loop, which cancels
    # that task.
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with theirs, unclosed_sockets() as leaked:
        loop = NetworkSelector()
        transport = KafkaTCPTransport(loop, ours)
        transport.write(b"a request")
        transport.close()
        loop.close()
        del transport, ours
    assert leaked == []
