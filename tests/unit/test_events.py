import orjson

from onestop.models.events import Received, Rejection, TicketCalled, decode_event

GOOD = {
    "event_id": "e1", "type": "received", "case_id": "C1",
    "occurred_at": "2026-03-02T09:00:00+07:00", "procedure": "P5",
    "handling_agency": "STP", "centre": "CENTRE", "channel": "online",
}


def decode(**changes):
    message = {**GOOD, **changes}
    return decode_event(orjson.dumps({k: v for k, v in message.items() if v is not None}))


def test_a_valid_event_decodes_and_keeps_unknown_fields():
    event = decode(tracking="abc")
    assert isinstance(event, Received)
    assert event.model_extra == {"tracking": "abc"}
    assert event.schema_version == 1


def test_reasons_are_plain_words():
    assert decode_event(b"{not json").reason.startswith("not valid JSON")
    assert decode_event(b"[1, 2]") == Rejection("the message is not a JSON object")
    assert decode(type="teleported").reason == "unknown event type 'teleported'"
    assert decode(type=None).reason == "field 'type' is missing"
    assert decode(procedure=None).reason == "field 'procedure' is missing"
    assert decode(occurred_at="2026-03-02T09:00:00").reason == (
        "field 'occurred_at' has no time-zone offset (naive times are rejected)"
    )
    assert "field 'channel'" in decode(channel="fax").reason
    assert "field 'fee'" in decode(fee=-5).reason
    assert "field 'case_id'" in decode(case_id="x" * 65).reason
    assert "field 'event_id'" in decode(event_id="").reason


def test_several_problems_are_all_named():
    reason = decode(procedure=None, channel="fax").reason
    assert "field 'procedure' is missing" in reason and "field 'channel'" in reason


def test_queue_events_need_their_centre_and_counter():
    called = decode_event(orjson.dumps({
        "event_id": "q1", "type": "ticket_called", "ticket_id": "T1", "centre": "CENTRE",
        "occurred_at": "2026-03-02T09:00:00+07:00", "counter": "Quầy 2",
    }))
    assert isinstance(called, TicketCalled) and called.counter == "Quầy 2"
    missing = decode_event(orjson.dumps({
        "event_id": "q1", "type": "ticket_called", "ticket_id": "T1",
        "occurred_at": "2026-03-02T09:00:00+07:00",
    }))
    assert missing.reason == "field 'centre' is missing; field 'counter' is missing"


def test_refusal_without_reason_is_accepted():
    refused = decode_event(orjson.dumps({
        "event_id": "e9", "type": "refused", "case_id": "C1", "stage": "reception",
        "occurred_at": "2026-03-02T09:00:00+07:00",
    }))
    assert not isinstance(refused, Rejection)
