"""The Kafka security settings, as each client library takes them. (TLS is tested end to
end in tests/integration/test_kafka_security.py; no SASL/SCRAM broker runs here.)"""

from __future__ import annotations

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from onestop.common.settings import Settings
from onestop.streams.app import broker_credentials

SCRAM = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
                 kafka_username="songxanh", kafka_password="s3cret")


def test_plaintext_is_the_default_and_needs_nothing() -> None:
    plain = Settings()
    assert plain.kafka_options() == {"security_protocol": "PLAINTEXT"}
    assert plain.aiokafka_options() == {"security_protocol": "PLAINTEXT"}
    assert broker_credentials(plain) is None


def test_scram_over_tls_reaches_every_client_library() -> None:
    assert SCRAM.kafka_options() == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "songxanh", "sasl_plain_password": "s3cret",
        "ssl_cafile": None, "ssl_certfile": None, "ssl_keyfile": None,
    }
    aiokafka = SCRAM.aiokafka_options()
    assert aiokafka["sasl_mechanism"] == "SCRAM-SHA-256" and aiokafka["ssl_context"] is not None
    credentials = broker_credentials(SCRAM)
    assert isinstance(credentials, faust.SASLCredentials)
    faust_options = credentials_to_aiokafka_auth(credentials)
    assert {key: faust_options[key] for key in (
        "security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
    )} == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
           "sasl_plain_username": "songxanh", "sasl_plain_password": "s3cret"}


def test_scram_without_tls_sends_no_tls_options() -> None:
    settings = SCRAM.model_copy(update={"kafka_security_protocol": "SASL_PLAINTEXT"})
    assert "ssl_cafile" not in settings.kafka_options()
    assert credentials_to_aiokafka_auth(broker_credentials(settings))[
        "security_protocol"] == "SASL_PLAINTEXT"


def test_the_password_is_never_shown_and_bad_values_are_refused() -> None:
    assert "s3cret" not in repr(SCRAM) and "s3cret" not in str(SCRAM)
    with pytest.raises(ValidationError, match="SASL_SSL"):
        Settings(kafka_security_protocol="TLS")
    with pytest.raises(ValidationError, match="SCRAM-SHA-512"):
        Settings(kafka_sasl_mechanism="GSSAPI")
