"""`onestop reprocess`: every case judged again from the input topics, after a rule change.

What the pipeline derives is rebuilt from what it keeps forever (the input topics): the
topics the workers write (derived events, aggregates, alerts, the table changelogs) are
deleted and created again empty, the worker's and the sink's consumer groups lose their
offsets, so that both read from the start, and the SQL store starts a new generation, so
that the sink's rows of the new rules replace the old whatever their offsets (see
`consumers.store`). Nothing runs while a worker or the sink is up: their offsets and
state would be written back over the reset.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient

from onestop.common.settings import Settings
from onestop.common.topics import create_topics, topics_for
from onestop.consumers.sink import Sink
from onestop.consumers.store import Store


class Refused(RuntimeError):
    """Reprocessing would be unsafe now; nothing was changed."""


class GroupAdmin(KafkaAdminClient):  # type: ignore[misc]
    """kafka-python's admin client, for consumer groups on both brokers: Tansu 0.6
    answers DescribeGroups with authorized-operation bits kafka-python cannot read (it
    raises on them), and reprocessing never needs them."""

    def _process_acl_operations(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.pop("authorized_operations", None)
        return obj


@dataclass(frozen=True)
class Plan:
    """What a reprocess deletes and resets."""

    topics: list[str]
    groups: dict[str, str]  # group id -> what reads with it

    def lines(self) -> list[str]:
        return [
            "Xoá và tạo lại / deletes and creates again, empty: " + ", ".join(self.topics),
            "Đặt lại về đầu / resets to the start: " + ", ".join(
                f"consumer group {group} ({what})" for group, what in self.groups.items()),
            "Kho SQL / the SQL store: a new generation; the rows of the new rules replace "
            "the old ones as the sink writes them",
        ]


def plan_for(settings: Settings) -> Plan:
    topics = topics_for(settings)
    derived = [topics.derived_events, topics.aggregates, topics.alerts,
               topics.case_changelog, topics.ticket_changelog, topics.archive_changelog]
    return Plan([spec.name for spec in derived],
                {settings.app_id: "the workers", Sink.group_id(settings): "the SQL sink"})


def active_members(admin: GroupAdmin, groups: dict[str, str]) -> list[str]:
    """Each group with members now, in words: `the workers (group onestop): 2 members,
    on host-a, host-b`."""
    busy = []
    for group, description in admin.describe_groups(list(groups)).items():
        members = description.get("members") or []
        if members:
            # Tansu names neither the client nor its host.
            where = sorted({member.get("client_host") or member.get("client_id") or ""
                            for member in members} - {""})
            busy.append(f"{groups[group]} (group {group}): {len(members)} member"
                        f"{'s' if len(members) > 1 else ''}"
                        + (f", on {', '.join(where)}" if where else ""))
    return busy


def keeps_stopped_members(settings: Settings) -> bool:
    """Whether the broker is Tansu, which never drops a member that stopped without
    leaving its group (a Faust worker does not leave): its member lists cannot tell a
    running worker from one stopped long ago."""
    from onestop.streams.tansu_compat import is_tansu

    flavour = settings.broker_flavour
    return flavour == "tansu" or (flavour == "auto" and is_tansu(
        settings.bootstrap_servers, **settings.kafka_options()))


def check_idle(settings: Settings, plan: Plan, say: Callable[[str], None]) -> None:
    """Refuse while a worker or the sink is up, saying which. A member that stopped
    without leaving its group (killed) stays listed until its session times out, so the
    groups are asked again until then. On Tansu the workers' group is only warned about
    (`keeps_stopped_members`); the sink leaves its group when it stops, so its members
    are a sign of life there too."""
    admin = GroupAdmin(bootstrap_servers=settings.bootstrap_servers,
                       client_id="onestop-reprocess", **settings.kafka_options())
    groups = dict(plan.groups)
    try:
        if keeps_stopped_members(settings):
            workers = {settings.app_id: groups.pop(settings.app_id)}
            for listed in active_members(admin, workers):
                say(f"Cảnh báo / warning: {listed} is listed, but the embedded broker keeps "
                    "stopped workers listed, so whether they run cannot be told: make sure "
                    "no worker runs")
        busy = active_members(admin, groups)
        if busy:
            wait = settings.session_timeout_seconds + 5
            say(f"Chờ / waiting up to {wait:.0f} s for the consumers still listed to time "
                "out: " + "; ".join(busy))
            deadline = time.monotonic() + wait
            while busy and time.monotonic() < deadline:
                time.sleep(1)
                busy = active_members(admin, groups)
    finally:
        admin.close()
    if busy:
        raise Refused("đang chạy / still running: " + "; ".join(busy)
                      + ". Stop them first (docker compose stop worker sink), then run "
                      "`onestop reprocess --yes` again; nothing was changed")


def reprocess(settings: Settings, store: Store, plan: Plan, say: Callable[[str], None],
              settle_seconds: float = 60.0) -> int:
    """Delete and recreate the derived topics, reset both groups, and start a new
    generation of the store; the generation's number. The store goes last: if anything
    before fails, the sink (which checks its offsets against the store) stops rather
    than write over rows of the same generation, and running this again finishes."""
    check_idle(settings, plan, say)
    admin = GroupAdmin(bootstrap_servers=settings.bootstrap_servers,
                       client_id="onestop-reprocess", **settings.kafka_options())
    try:
        present = [name for name in plan.topics if name in set(admin.list_topics())]
        say(f"1/4 Xoá / deleting {len(present)} topics: {', '.join(present) or 'none'}")
        if present:
            admin.delete_topics(present)
        # Apache Kafka deletes in the background: a topic created again before it is gone
        # would keep its old records.
        deadline = time.monotonic() + settle_seconds
        while set(present) & set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise Refused(f"the broker had not deleted {', '.join(present)} after "
                              f"{settle_seconds:.0f} s; run `onestop reprocess --yes` again")
            time.sleep(0.5)
        say("2/4 Tạo lại / creating them again, empty")
        create_topics(settings)
        say("3/4 Đặt lại / resetting the consumer groups: " + ", ".join(plan.groups))
        for group, result in admin.delete_groups(list(plan.groups)).items():
            # A group that never committed has nothing to reset.
            if result != "OK" and "GroupIdNotFound" not in str(result):
                raise Refused(f"the broker did not reset consumer group {group}: {result}")
    finally:
        admin.close()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    generation = store.start_generation(started, "onestop reprocess")
    say(f"4/4 Kho SQL / the SQL store: generation {generation} started")
    return generation
