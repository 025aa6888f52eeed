"""Every topic of the pipeline, declared once, and their explicit creation at start-up.

Topics are created before any client touches them: a broker that auto-creates unknown
topics (Tansu makes 4 partitions) would break the co-partitioning of the case topic
and the case table's changelog."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from onestop.common.settings import Settings

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str  # what the record key is, for the README's topic table
    compacted: bool = False
    # The input topics are the record of every case: kept forever, so that history can be
    # judged again after a rule change (README: Operations).
    kept_forever: bool = False
    retention_days: int | None = None  # None: the broker's default
    # Records that matter only for the moment (the ticks): deleted within two hours.
    short_lived: bool = False

    def configs(self) -> dict[str, str]:
        if self.compacted:
            # A replaced record (the state before an applicant was erased) is compacted
            # away within a week, not whenever its segment happens to roll.
            return {"cleanup.policy": "compact", "max.compaction.lag.ms": str(WEEK_MS)}
        if self.kept_forever:
            return {"retention.ms": "-1"}
        if self.short_lived:
            return {"retention.ms": str(HOUR_MS), "segment.ms": str(HOUR_MS)}
        if self.retention_days is not None:
            return {"retention.ms": str(self.retention_days * DAY_MS)}
        return {}


@dataclass(frozen=True)
class Topics:
    case_events: TopicSpec
    queue_events: TopicSpec
    portal_status: TopicSpec
    derived_events: TopicSpec
    aggregates: TopicSpec
    alerts: TopicSpec
    dead_letters: TopicSpec
    case_changelog: TopicSpec
    ticket_changelog: TopicSpec
    archive_changelog: TopicSpec
    ticks: TopicSpec

    def all(self) -> list[TopicSpec]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


# Faust names a table's changelog `<app id>-<table>-changelog`.
CASE_TABLE = "cases"
TICKET_TABLE = "tickets"
# What the workers keep of the cases and tickets they archived: their metric contributions.
ARCHIVE_TABLE = "archived"


def topics_for(settings: Settings) -> Topics:
    prefix, partitions = settings.topic_prefix, settings.partitions
    return Topics(
        case_events=TopicSpec(f"{prefix}.case-events", partitions, "case_id", kept_forever=True),
        queue_events=TopicSpec(
            f"{prefix}.queue-events", partitions, "ticket_id", kept_forever=True),
        portal_status=TopicSpec(
            f"{prefix}.portal-status", partitions, "MaHoSo", kept_forever=True),
        derived_events=TopicSpec(f"{prefix}.derived-events", partitions, "case_id or ticket_id"),
        aggregates=TopicSpec(
            f"{prefix}.aggregates", partitions, "scope:code:day:partition", compacted=True
        ),
        alerts=TopicSpec(f"{prefix}.alerts", partitions, "agency"),
        # Dead letters keep the original record, personal data included, for repair: for
        # a limited time.
        dead_letters=TopicSpec(f"{prefix}.dead-letters", 1, "the rejected record's key",
                               retention_days=settings.dead_letter_retention_days),
        case_changelog=TopicSpec(
            f"{settings.app_id}-{CASE_TABLE}-changelog", partitions, "case_id", compacted=True
        ),
        ticket_changelog=TopicSpec(
            f"{settings.app_id}-{TICKET_TABLE}-changelog", partitions, "ticket_id", compacted=True
        ),
        archive_changelog=TopicSpec(
            f"{settings.app_id}-{ARCHIVE_TABLE}-changelog", partitions, "scope:partition:series",
            compacted=True,
        ),
        # The leader's clock, one record per partition a second, so that the worker that
        # applies a partition's events also judges its cases on time; not in the input
        # topics, which are kept forever.
        ticks=TopicSpec(f"{prefix}.ticks", partitions, "empty", short_lived=True),
    )


class TopicMismatch(RuntimeError):
    pass


def create_topics(settings: Settings) -> list[str]:
    """Create the missing topics; return the names created. A topic that exists with
    another partition count is an error: the pipeline's co-partitioning depends on it."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id="onestop-admin",
        **settings.kafka_options(),
    )
    try:
        specs = topics_for(settings).all()
        existing = set(admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        created = []
        for spec in missing:
            try:
                new = NewTopic(spec.name, spec.partitions, settings.replication_factor,
                               topic_configs=spec.configs())
                admin.create_topics([new])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another process created it meanwhile; checked below
        counts = partition_counts(admin, [spec.name for spec in specs])
        for spec in specs:
            if counts.get(spec.name) != spec.partitions:
                raise TopicMismatch(
                    f"topic {spec.name} has {counts.get(spec.name)} partitions where the "
                    f"settings ask for {spec.partitions} (ONESTOP_PARTITIONS); delete it or "
                    "change the setting"
                )
        return created
    finally:
        admin.close()


def partition_counts(admin: KafkaAdminClient, names: list[str],
                     settle_seconds: float = 15.0) -> dict[str, int]:
    """Each topic's partition count. A topic just created may show no partitions yet on
    a cluster of several brokers (its metadata reaches them one by one): such answers
    are asked again for up to `settle_seconds`."""
    deadline = time.monotonic() + settle_seconds
    while True:
        described = admin.describe_topics(names)
        counts = {topic["name"]: len(topic["partitions"]) for topic in described}
        if all(counts.get(name) for name in names) or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)
