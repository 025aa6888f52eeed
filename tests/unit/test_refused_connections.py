"""A refused connection of kafka-python leaves no open socket behind in the tests
(tests/conftest.py closes it; kafka-python 3.0.12 does not)."""

from __future__ import annotations

import gc
import warnings

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from onestop.streams.broker import free_port


def test_a_refused_connection_leaves_no_socket_open() -> None:
    closed_port = free_port()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(KafkaError):
            KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{closed_port}",
                             request_timeout_ms=1000)
        gc.collect()
    assert [str(warning.message) for warning in caught
            if issubclass(warning.category, ResourceWarning)] == []
