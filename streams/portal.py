"""The portal-status agent: national-portal dossier-status records in, contract events
out, onto the case-events topic (the mapping itself is `models.portal`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from faust.types import Message

from onestop.models.portal import PortalRecordError, portal_event

if TYPE_CHECKING:
    from onestop.streams.app import Outbox, Pipeline


class PortalBridge:
    stream = "portal"  # the `stream` label of its pipeline metrics

    def __init__(self, pipeline: Pipeline, outbox: Outbox) -> None:
        self.pipeline = pipeline
        self.outbox = outbox
        agencies = pipeline.rules.reference.agencies

        def centre_of(code: str) -> str | None:
            agency = agencies.get(code)
            return None if agency is None else agency.centre

        self.centre_of = centre_of

    def convert(self, raw: bytes | None) -> tuple[bytes, bytes] | None:
        """(case id, contract event JSON) of one record; None for a status with no
        event. Raises PortalRecordError."""
        try:
            record: Any = orjson.loads(raw or b"")
        except orjson.JSONDecodeError as error:
            raise PortalRecordError(f"not valid JSON ({error.msg})") from None
        event = portal_event(record, self.centre_of)
        return None if event is None else (event["case_id"].encode(), orjson.dumps(event))

    async def handle(self, messages: Sequence[Message]) -> None:
        """One batch: each event goes to the case-events topic keyed by its case id, each
        bad record to the dead-letter topic; both are delivered before Faust commits."""
        topics, metrics = self.pipeline.topics, self.pipeline.metrics
        for message in messages:
            try:
                converted = self.convert(message.value)
            except PortalRecordError as error:
                self.pipeline.dead_letter(self.outbox, self.stream, message,
                                          f"portal status record: {error}", "undecodable")
                continue
            if converted is not None:
                self.outbox.add(topics.case_events.name, *converted)
        await self.outbox.flush()
        metrics.count("events_processed", (self.stream,), len(messages))
        metrics.publish()
