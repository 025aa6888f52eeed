import orjson

from onestop.models.events import decode_event
from onestop.models.queue import QueueRules
from tests.conftest import at, iso


def ticket(kind, when, ticket_id="T1", event_id=None, **fields):
    return decode_event(orjson.dumps({
        "event_id": event_id or f"{ticket_id}-{kind}-{when}", "type": kind, "ticket_id": ticket_id,
        "centre": "CENTRE", "occurred_at": iso(when), **fields,
    }))


def run(events, as_of="2026-03-02 17:00"):
    rules = QueueRules(900)
    state, outputs = None, []
    for item in events:
        state, new = rules.apply(state, item)
        outputs += new
    return rules.evaluate(state, at(as_of)), state, outputs


def test_wait_is_first_call_minus_issue_and_re_calls_are_counted_apart():
    visit, _, outputs = run([
        ticket("ticket_issued", "2026-03-02 08:00"),
        ticket("ticket_called", "2026-03-02 08:12", counter="Quầy 1"),
        ticket("ticket_called", "2026-03-02 08:20", counter="Quầy 1"),
        ticket("service_completed", "2026-03-02 08:31", counter="Quầy 1"),
    ])
    assert visit.wait_seconds == 12 * 60
    assert visit.recalls == 1
    assert visit.service_seconds == 19 * 60
    assert visit.counter == "Quầy 1"
    assert outputs == []


def test_a_wait_over_the_target_is_reported_once():
    visit, state, outputs = run([
        ticket("ticket_issued", "2026-03-02 08:00"),
        ticket("ticket_called", "2026-03-02 08:16", counter="Quầy 2"),
    ])
    assert visit.wait_seconds == 16 * 60
    assert outputs == []  # events alone bring no output
    rules = QueueRules(900)
    state, outputs = rules.on_tick(state, at("2026-03-02 08:20"))
    assert [o.type for o in outputs] == ["wait_exceeded"]
    assert outputs[0].agency == "CENTRE"
    assert outputs[0].occurred_at == at("2026-03-02 08:15")
    _, again = rules.on_tick(state, at("2026-03-02 09:00"))
    assert again == []


def test_the_order_calls_arrive_in_does_not_change_the_outputs():
    issued = ticket("ticket_issued", "2026-03-02 09:00")
    early = ticket("ticket_called", "2026-03-02 09:10", counter="Quầy 1")
    late = ticket("ticket_called", "2026-03-02 09:20", counter="Quầy 1")
    rules = QueueRules(900)
    for arrival in ([issued, early, late], [issued, late, early]):
        _, state, outputs = run(arrival)
        assert outputs == [] and rules.on_tick(state, at("2026-03-02 10:00"))[1] == []


def test_a_ticket_still_waiting_is_reported_by_the_tick():
    _, state, _ = run([ticket("ticket_issued", "2026-03-02 08:00")])
    rules = QueueRules(900)
    assert rules.on_tick(state, at("2026-03-02 08:14"))[1] == []
    state, outputs = rules.on_tick(state, at("2026-03-02 08:16"))
    assert [o.type for o in outputs] == ["wait_exceeded"]


def test_no_show_is_not_a_wait_even_after_a_call():
    visit, _, _ = run([
        ticket("ticket_issued", "2026-03-02 08:00"),
        ticket("ticket_called", "2026-03-02 08:05", counter="Quầy 1"),
        ticket("ticket_abandoned", "2026-03-02 08:10"),
    ])
    assert visit.no_show and visit.wait_seconds is None


def test_order_and_duplicates_do_not_matter():
    events = [
        ticket("ticket_issued", "2026-03-02 08:00"),
        ticket("ticket_called", "2026-03-02 08:09", counter="Quầy 1"),
        ticket("ticket_called", "2026-03-02 08:11", counter="Quầy 3"),
    ]
    forward, _, _ = run(events)
    backward, _, _ = run(events[::-1] + events)
    assert forward == backward
    assert backward.wait_seconds == 9 * 60 and backward.recalls == 1
