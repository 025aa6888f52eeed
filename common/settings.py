"""Settings of the live pipeline, read from the environment (prefix `ONESTOP_`)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from onestop.common.clock import parse_clock
from onestop.models.reference import SAMPLE_PROVINCE

# Where an orchestrator mounts secrets as files.
SECRETS_DIR = "/run/secrets"

class Settings(BaseSettings):
    """Every setting of the live pipeline. Each is also an environment variable:
    `ONESTOP_` + the name in capitals, e.g. `ONESTOP_BROKER_URL`."""

    model_config = SettingsConfigDict(
        env_prefix="ONESTOP_", extra="ignore", frozen=True, populate_by_name=True,
        # Docker and Kubernetes mount secrets as files named after the variable
        # (`/run/secrets/onestop_smtp_password`); read only where that folder exists.
        secrets_dir=SECRETS_DIR if Path(SECRETS_DIR).is_dir() else None,
    )

    # `KAFKA_BOOTSTRAP_SERVERS` is the name Kafka tooling uses; ours wins when both are set.
    broker_url: str = Field(
        default="kafka://127.0.0.1:9092",
        validation_alias=AliasChoices("ONESTOP_BROKER_URL", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers, `kafka://host:port[;host:port]`.",
    )
    # A cluster shared by several provinces authenticates and encrypts; the secrets come
    # only from the environment (or a secrets file the orchestrator mounts into it).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512",
        description="With `SASL_*`: `SCRAM-SHA-512`, `SCRAM-SHA-256` or `PLAIN`.",
    )
    kafka_username: str = Field(default="", description="SASL user name.")
    kafka_password: SecretStr = Field(
        default=SecretStr(""), description="SASL password (environment or secrets file only)."
    )
    kafka_ca_file: str = Field(
        default="", description="With `SSL`/`SASL_SSL`: CA bundle (PEM); empty for the "
        "system's CAs.",
    )
    kafka_cert_file: str = Field(
        default="", description="Client certificate (PEM) for mutual TLS; optional."
    )
    kafka_key_file: str = Field(default="", description="The client certificate's key (PEM).")
    reference: Path = Field(
        default=SAMPLE_PROVINCE, description="Reference data directory (contract §4)."
    )
    database_url: str = Field(
        default="sqlite:///onestop.db", repr=False,
        description="SQLAlchemy URL of the report store (shown with its password hidden).",
    )
    database_password: SecretStr = Field(
        default=SecretStr(""), description="The store's password, when the URL has none: "
        "it is put into the URL (from a secrets file in containers, so that the URL itself "
        "holds no secret).",
    )
    clock: str = Field(
        default="wall",
        description="`wall`, `fixed:<instant>` or `accelerated:<start instant>:<factor>`.",
    )
    app_id: str = Field(default="onestop", description="Faust app id and consumer group.")
    topic_prefix: str = Field(default="onestop", description="Prefix of every topic name.")
    partitions: int = Field(default=4, ge=1, description="Partitions of the keyed topics.")
    tick_seconds: float = Field(
        default=1.0, gt=0, description="Wall seconds between two ticks into every partition."
    )
    batch_size: int = Field(
        default=2000, ge=1,
        description="Most records the portal or ticks agent handles as one batch (the input "
                    "topics' batches are one fetch each).")
    batch_seconds: float = Field(
        default=0.05, gt=0, description="Longest wait to fill a batch, in seconds."
    )
    commit_seconds: float = Field(
        default=2.8, gt=0, description="Seconds between two commits of consumed offsets."
    )
    session_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Kafka consumer session timeout."
    )
    broker_flavour: str = Field(
        default="auto",
        description="`kafka`, `tansu` (apply the end-offset fix) or `auto` (ask the broker).",
    )
    data_dir: Path = Field(default=Path(".onestop"), description="Faust's data directory.")
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the worker serves `/metrics` on (`0.0.0.0` in a container).",
    )
    metrics_port: int = Field(
        default=9464, ge=0, le=65535,
        description="Port of the worker's Prometheus endpoint; 0 serves none.",
    )
    max_event_bytes: int = Field(
        default=65536, ge=1024, le=200_000,
        description="The largest input record accepted, in bytes; a larger one goes to the "
        "dead-letter topic (ingest: to the dead-letter file).",
    )
    archive_after_days: int = Field(
        default=60, ge=1, le=3650,
        description="Days after its last event (counted from the newest receipt or ticket "
        "issued the worker applied) that a closed case or ticket leaves the worker's live "
        "state; its final state stays in the SQL store, marked archived. Long enough for "
        "late ratings and apologies: a later event still reaches the stored case, but no "
        "longer the live figures.",
    )
    max_case_events: int = Field(
        default=1000, ge=10,
        description="The most events one case or ticket may hold; a further one goes to the "
        "dead-letter topic.",
    )
    delivery_timeout_seconds: float = Field(
        default=40, gt=0,
        description="How long the worker waits for the broker to acknowledge a batch's "
        "outputs before it sends them again.",
    )
    unhealthy_after_seconds: float = Field(
        default=120, gt=0,
        description="The worker's `/healthz` answers 503 once a batch's outputs have waited "
        "this long for the broker (the batch stays unacknowledged meanwhile).",
    )

    # -- the notifier (`onestop notify`) ----------------------------------------------
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server of the notifier.")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port.")
    smtp_user: str = Field(default="", description="SMTP login; empty for none.")
    smtp_password: SecretStr = Field(
        default=SecretStr(""), description="SMTP password (environment or secrets file only)."
    )
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP link with STARTTLS.")
    smtp_implicit_tls: bool = Field(
        default=False, description="SMTP over TLS from the first byte (port 465)."
    )
    smtp_ca_file: str = Field(
        default="", description="CA bundle (PEM) that signs the SMTP server's certificate; "
        "empty for the system's CAs.",
    )
    mail_from: str = Field(
        default="Một cửa <onestop@localhost>", description="Sender of the notifier's e-mails."
    )
    operations_email: str = Field(
        default="", description="Who hears about the pipeline's own alerts; empty for nobody."
    )
    province_office_email: str = Field(
        default="",
        description="The province office, told when a head leaves a missing apology; empty "
        "for nobody.",
    )
    escalate_after_days: int = Field(
        default=2, ge=0,
        description="Working days an apology may stay missing before the province office hears.",
    )
    digest_hour: int = Field(
        default=8, ge=0, le=23, description="Local hour of each head's daily digest."
    )
    apology_extension_days: int = Field(
        default=5, ge=1, description="Working days the apology draft proposes to extend by."
    )
    notify_webhook_url: str = Field(
        default="", description="Also post each notice to this URL (a chat system); optional."
    )
    notifier_host: str = Field(
        default="127.0.0.1",
        description="Address of the notifier's Alertmanager webhook, health check and metrics "
        "(`0.0.0.0` in a container).",
    )
    notifier_port: int = Field(
        default=9095, ge=0, le=65535, description="Port of the notifier's webhook, health "
        "check and metrics.",
    )
    webhook_token: SecretStr = Field(
        default=SecretStr(""), description="The bearer token Alertmanager must send to the "
        "notifier's webhook (environment or secrets file only); while empty, the webhook "
        "refuses every call.",
    )
    mails_per_recipient_per_hour: int = Field(
        default=30, ge=1, description="At most this many e-mails to one address in any hour; "
        "the notifier holds back the rest (counted, logged) and sends them later.",
    )
    sink_heartbeat_file: str = Field(
        default="",
        description="The sink touches this file after each stored batch (a container's "
        "health check); empty for none.",
    )
    dead_letter_retention_days: int = Field(
        default=30, ge=1, description="Days the dead-letter topic keeps a rejected record "
        "(it may hold personal data) for repair; applies when the topic is created.",
    )
    replication_factor: int = Field(
        default=1, ge=1, description="Replicas of each topic the pipeline creates (3 on a "
        "production cluster of three brokers or more).",
    )

    @model_validator(mode="before")
    @classmethod
    def _password_into_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("database_password"):
            return data
        password = data["database_password"]
        if isinstance(password, SecretStr):
            password = password.get_secret_value()
        from sqlalchemy.engine import make_url  # only where a password is to be put in

        url = make_url(data.get("database_url") or "sqlite:///onestop.db")
        if url.password is None:
            url = url.set(password=password)
        return {**data, "database_url": url.render_as_string(hide_password=False)}

    @field_validator("broker_url")
    @classmethod
    def _kafka_scheme(cls, value: str) -> str:
        hosts = value.removeprefix("kafka://")
        if not hosts or "://" in hosts:
            raise ValueError(f"'{value}' is not `kafka://host:port` nor `host:port`")
        return "kafka://" + hosts

    @field_validator("clock")
    @classmethod
    def _clock_parses(cls, value: str) -> str:
        parse_clock(value)
        return value

    @field_validator("broker_flavour")
    @classmethod
    def _known_flavour(cls, value: str) -> str:
        if value not in ("auto", "kafka", "tansu"):
            raise ValueError("must be auto, kafka or tansu")
        return value

    def environment(self) -> dict[str, str]:
        """This process's environment with these settings as ONESTOP_* variables, for a
        child process (a worker) to read them back."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("ONESTOP_")}
        env.update({
            "ONESTOP_" + name.upper(): str(
                getattr(self, name).get_secret_value() if isinstance(value, SecretStr) else value)
            for name, value in self.model_dump().items()
        })
        return env

    def smtp_tls_context(self) -> ssl.SSLContext:
        """The SMTP link's TLS: the server's certificate and name are checked against the
        system's CAs or `smtp_ca_file`."""
        return ssl.create_default_context(cafile=self.smtp_ca_file or None)

    @property
    def uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the Kafka link (aiokafka and Faust take a context)."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.kafka_ca_file or None)
        if self.kafka_cert_file:
            context.load_cert_chain(self.kafka_cert_file, self.kafka_key_file or None)
        return context

    def kafka_options(self) -> dict[str, Any]:
        """The security options of a kafka-python client (admin, consumer, producer)."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.uses_sasl:
            options.update(sasl_mechanism=self.kafka_sasl_mechanism,
                           sasl_plain_username=self.kafka_username,
                           sasl_plain_password=self.kafka_password.get_secret_value())
        if self.uses_tls:
            options.update(ssl_cafile=self.kafka_ca_file or None,
                           ssl_certfile=self.kafka_cert_file or None,
                           ssl_keyfile=self.kafka_key_file or None)
        return options

    def aiokafka_options(self) -> dict[str, Any]:
        """The same for an aiokafka client, which takes an SSL context."""
        options = {key: value for key, value in self.kafka_options().items()
                   if not key.startswith("ssl_")}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        return options

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker list as kafka-python and aiokafka want it."""
        return self.broker_url.removeprefix("kafka://").replace(";", ",").split(",")
