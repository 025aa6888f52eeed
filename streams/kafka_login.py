"""Refused credentials, said plainly and at once.

With a wrong SASL password, Apache Kafka answers the login with an error and closes the
connection; kafka-python sees only the closed socket and retries until its bootstrap
timeout, then says it could not reach the broker, and aiokafka logs the broker's reason
but raises "Unable to bootstrap". So every command that talks to Kafka with SASL logs in
once first, over one connection, and a refusal becomes `LoginRefused` naming the user
and the mechanism (never the password)."""

from __future__ import annotations

import asyncio

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from onestop.common.settings import Settings


class LoginRefused(RuntimeError):
    pass


async def _log_in(settings: Settings, host: str, port: int) -> None:
    connection = await create_conn(
        host, port, client_id="onestop-login", request_timeout_ms=10_000,
        security_protocol=settings.kafka_security_protocol,
        ssl_context=settings.ssl_context(), sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_plain_username=settings.kafka_username,
        sasl_plain_password=settings.kafka_password.get_secret_value(),
    )
    connection.close()


def check_login(settings: Settings) -> None:
    """Log in to the first bootstrap server that answers; raise `LoginRefused` if Kafka
    refuses the credentials. Without SASL there is nothing to check; a broker that cannot
    be reached is left to the command's own error."""
    if not settings.uses_sasl:
        return
    for server in settings.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            asyncio.run(_log_in(settings, host, int(port)))
        except SaslAuthenticationFailed as error:
            raise LoginRefused(
                f"Kafka refused the login of user '{settings.kafka_username}' with "
                f"{settings.kafka_sasl_mechanism} at {server} ({error}); check "
                "ONESTOP_KAFKA_USERNAME, ONESTOP_KAFKA_PASSWORD and "
                "ONESTOP_KAFKA_SASL_MECHANISM") from None
        except (OSError, TimeoutError, KafkaConnectionError):
            continue  # this server is down: another may answer
        return
