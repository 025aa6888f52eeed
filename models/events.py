"""Event models of the event contract, version 1 (shared/domain/event-contract.md §1–3).

`decode_event` turns one message (bytes or text) into an event or a `Rejection` whose
reason is written for the person who has to fix the producer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

EventId = Annotated[str, Field(min_length=1, max_length=128)]
CaseId = Annotated[str, Field(min_length=1, max_length=64)]
Code = Annotated[str, Field(min_length=1, max_length=64)]
Channel = Literal["counter", "online", "postal"]
# Amounts of money: JSON's 1e400 and the strings "Infinity" or "NaN" are not amounts.
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Event(BaseModel):
    # Unknown extra fields are kept (contract §1) but never used by the rules.
    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: EventId
    occurred_at: AwareDatetime
    schema_version: int = 1
    source: str | None = None


class _CaseEvent(_Event):
    case_id: CaseId


class Applicant(BaseModel):
    """Personal data: may fill an apology letter, must never reach aggregates or logs."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None


class Received(_CaseEvent):
    type: Literal["received"]
    procedure: Code
    handling_agency: Code
    centre: Code
    channel: Channel
    due_at: AwareDatetime | None = None
    fee: Amount | None = None
    full_online: bool | None = None
    applicant: Applicant | None = None


class Transferred(_CaseEvent):
    type: Literal["transferred"]
    from_unit: Code
    to_unit: Code
    method: Literal["electronic", "paper"]


class SupplementRequested(_CaseEvent):
    type: Literal["supplement_requested"]
    reason: str | None = None


class SupplementReceived(_CaseEvent):
    type: Literal["supplement_received"]


class Paid(_CaseEvent):
    type: Literal["paid"]
    method: Literal["online", "counter"]
    amount: Amount


class ApologyIssued(_CaseEvent):
    type: Literal["apology_issued"]
    agency: Code
    new_due_at: AwareDatetime
    reason: Annotated[str, Field(min_length=1)]
    signed_by: str | None = None


class Overdue(_CaseEvent):
    type: Literal["overdue"]
    due_at: AwareDatetime | None = None


class Processed(_CaseEvent):
    type: Literal["processed"]
    outcome: Literal["approved", "refused"] = "approved"
    reason: str | None = None
    electronic_result: bool | None = None


class Returned(_CaseEvent):
    type: Literal["returned"]
    channel: Channel


class Refused(_CaseEvent):
    type: Literal["refused"]
    stage: Literal["reception", "processing"]
    # A refusal without a reason is accepted and reported as a finding, not dead-lettered.
    reason: str | None = None


class Withdrawn(_CaseEvent):
    type: Literal["withdrawn"]


class Stopped(_CaseEvent):
    type: Literal["stopped"]
    reason: str | None = None


class Rated(_CaseEvent):
    type: Literal["rated"]
    rating: Literal["very_satisfied", "satisfied", "unsatisfied"]


class ApplicantErased(_CaseEvent):
    """The monitor's own event (`onestop erase`), not a producer's: the applicant asked
    for their personal data to be erased (Decree 13/2023/NĐ-CP); the case stays."""

    type: Literal["applicant_erased"]


class _QueueEvent(_Event):
    ticket_id: Annotated[str, Field(min_length=1, max_length=64)]
    centre: Code


class TicketIssued(_QueueEvent):
    type: Literal["ticket_issued"]
    service: str | None = None


class TicketCalled(_QueueEvent):
    type: Literal["ticket_called"]
    counter: Code


class ServiceCompleted(_QueueEvent):
    type: Literal["service_completed"]
    counter: Code
    case_id: CaseId | None = None


class TicketAbandoned(_QueueEvent):
    type: Literal["ticket_abandoned"]


CaseEvent = (
    Received
    | Transferred
    | SupplementRequested
    | SupplementReceived
    | Paid
    | ApologyIssued
    | Overdue
    | Processed
    | Returned
    | Refused
    | Withdrawn
    | Stopped
    | Rated
    | ApplicantErased
)
QueueEvent = TicketIssued | TicketCalled | ServiceCompleted | TicketAbandoned
Event = CaseEvent | QueueEvent

CASE_EVENT_TYPES = frozenset(
    m.model_fields["type"].annotation.__args__[0]
    for m in CaseEvent.__args__
)
QUEUE_EVENT_TYPES = frozenset(
    m.model_fields["type"].annotation.__args__[0]
    for m in QueueEvent.__args__
)

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(
    Annotated[Event, Field(discriminator="type")]
)
# The core validator itself: TypeAdapter.validate_json adds a Python-level call per event,
# a measurable share of the replay's time.
_validate_json = _EVENT_ADAPTER.validator.validate_json


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that breaks the contract, with the reason in plain words."""

    reason: str


def oversized(size: int, limit: int) -> str | None:
    """Why a record of `size` bytes is refused when events may have `limit` bytes at
    most; None when it fits."""
    if size <= limit:
        return None
    return f"the record is {size:,} bytes; an event may have {limit:,} at most"


def decode_event(raw: bytes | str) -> Event | Rejection:
    try:
        return _validate_json(raw)  # type: ignore[no-any-return]
    except ValidationError as error:
        return Rejection(explain(error))


# An unknown type is repeated in the reason only when it looks like an event type: a
# reason is logged and kept, and must never carry a value that may be personal data sent
# in the wrong field (contract §2). No other clause repeats a value of the message.
_TYPE_LIKE = re.compile(r"[A-Za-z_]{1,40}")


def explain(error: ValidationError) -> str:
    """Plain-words reason for a validation error, one clause per problem; it names fields
    and what is wrong with them, never their values."""
    clauses = []
    for problem in error.errors(include_url=False):
        kind = problem["type"]
        # The first element of a location inside a tagged union is the tag itself.
        location = [str(part) for part in problem["loc"]]
        if location and location[0] in CASE_EVENT_TYPES | QUEUE_EVENT_TYPES:
            location = location[1:]
        field = ".".join(location)
        if kind == "json_invalid":
            clauses.append(f"not valid JSON ({problem['ctx']['error']})")
        elif kind in ("model_attributes_type", "model_type", "dict_type") and not field:
            clauses.append("the message is not a JSON object")
        elif kind == "union_tag_not_found":
            clauses.append("field 'type' is missing")
        elif kind == "union_tag_invalid":
            given = problem["input"]
            tag = given.get("type") if isinstance(given, dict) else None
            if not isinstance(tag, str):
                clauses.append("field 'type' is not a string")
            elif _TYPE_LIKE.fullmatch(tag):
                clauses.append(f"unknown event type '{tag}'")
            else:
                clauses.append("unknown event type (not repeated: it is not a word like "
                               "'received')")
        elif kind == "string_unicode" and not field:
            clauses.append("the message is not valid Unicode text")
        elif kind == "missing":
            clauses.append(f"field '{field}' is missing")
        elif kind == "timezone_aware":
            clauses.append(f"field '{field}' has no time-zone offset (naive times are rejected)")
        else:
            clauses.append(f"field '{field}': {problem['msg']}")
    return "; ".join(clauses)
