"""The event bus numbers events and delivers them in that order; the wire form decodes back."""

from __future__ import annotations

from app.core.events import (
    Event,
    EventBus,
    ModelDeleted,
    ModelProgressed,
    ModelRegistered,
    NodeChanged,
    decode,
)
from app.core.types import ModelState


def test_every_subscriber_sees_events_in_seq_order_even_when_one_publishes() -> None:
    bus = EventBus()
    first: list[Event] = []
    second: list[Event] = []

    def reacting(event: Event) -> None:
        first.append(event)
        if isinstance(event, ModelDeleted):  # a subscriber that publishes in turn
            bus.publish(NodeChanged("n1", "registering"))

    bus.subscribe(reacting)
    bus.subscribe(second.append)
    bus.publish(ModelRegistered("m"))
    bus.publish(ModelDeleted("m"))
    for seen in (first, second):
        assert [e.seq for e in seen] == [1, 2, 3]
        assert seen == [ModelRegistered("m"), ModelDeleted("m"), NodeChanged("n1", "registering")]


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    assert bus.publish(NodeChanged("n1", "offline")).seq == 1
    assert seen == [NodeChanged("n1", "offline")]


def test_wire_messages_decode_to_their_events() -> None:
    event = ModelProgressed("m", "n1", ModelState.DOWNLOADING, 5, 10)
    message = {"type": event.topic, "seq": 7, "data": event.payload()}
    decoded = decode(message)
    assert decoded == event and decoded is not None and decoded.seq == 7
    assert decode({"type": "models.changed", "seq": 8, "data": {"name": "m", "change": "deleted"}})
    assert decode({"type": "models.changed", "seq": 8, "data": {"name": "m"}}) is None
    # Kinds this side does not know, missing or mistyped fields: not an event.
    assert decode({"type": "metrics", "seq": 9, "data": {}}) is None
    assert decode({"type": "node.changed", "seq": 9, "data": {"node_id": "n1"}}) is None
    changed = {"node_id": "n1", "status": "online"}
    assert decode({"type": "node.changed", "seq": "9", "data": changed}) is None
    older = decode({"type": "node.changed", "data": changed})  # a balancer before seq
    assert older == NodeChanged("n1", "online") and older.seq == 0
    for bad in ({"downloaded_bytes": "5"}, {"state": "melting"}, {"error": 3}):
        data = {**event.payload(), **bad}
        assert decode({"type": event.topic, "seq": 10, "data": data}) is None
