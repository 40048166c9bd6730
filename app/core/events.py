"""Typed events on one bus: the events socket, the GUI and the nodes all subscribe here.

The bus numbers every event (`seq`, from 1, one more per event) and delivers them to every
subscriber in that order, also when a subscriber publishes while being told of another event.
The same classes are the wire format of /v0/events, `{"type", "seq", "data"}`, and `decode`
turns such a message back into its event (the GUI's client does).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar

from app.core.types import ModelState
from app.core.wire import JsonObject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base of every event; `topic` is the name subscribers see on the wire."""

    topic: ClassVar[str] = "event"
    # Given by the bus at publish time; not part of an event's identity (tests compare events).
    seq: int = field(default=0, kw_only=True, compare=False)

    def payload(self) -> JsonObject:
        """The event as JSON-ready data (its `seq` travels beside it)."""
        data: JsonObject = asdict(self)
        del data["seq"]
        return data


@dataclass(frozen=True)
class ModelRegistered(Event):
    """A model's metadata was stored; nodes should sync."""

    topic: ClassVar[str] = "models.changed"
    name: str
    change: str = "registered"


@dataclass(frozen=True)
class ModelDeleted(Event):
    """A model's metadata was removed; nodes should delete its files.

    Nothing about the model follows this event on the bus until a ModelRegistered names it
    again (the node table drops reports of models deleted since their node last synced)."""

    topic: ClassVar[str] = "models.changed"
    name: str
    change: str = "deleted"


@dataclass(frozen=True)
class ModelUpdated(Event):
    """A registered model's settings changed (e.g. its GPU layers); nodes should sync."""

    topic: ClassVar[str] = "models.changed"
    name: str
    change: str = "updated"


@dataclass(frozen=True)
class ModelRetried(ModelUpdated):
    """An admin asked the nodes holding a model in error to try it again (its Retry)."""

    change: str = "retried"


@dataclass(frozen=True)
class ModelProgressed(Event):
    """A node reported download progress or a state change for a model."""

    topic: ClassVar[str] = "model.progress"
    name: str
    node_id: str
    state: ModelState
    downloaded_bytes: int
    total_bytes: int
    error: str | None = None
    path: str | None = None  # where the node keeps the file, once it has it
    bytes_per_second: int = 0  # while downloading (the node's moving average)
    retry_at: float | None = None  # when a download waiting to retry tries again (time.time())


@dataclass(frozen=True)
class NodeChanged(Event):
    """A node was added, approved, removed, or changed state."""

    topic: ClassVar[str] = "node.changed"
    node_id: str
    status: str


@dataclass(frozen=True)
class TrafficRecorded(Event):
    """Requests finished since the last one of these (published at most once a second, and
    only while there is traffic): dashboards redraw from it instead of polling."""

    topic: ClassVar[str] = "stats.updated"
    at: float  # when the batch was recorded
    requests: int  # finished in the batch
    errors: int
    waiting: int  # requests queued for a slot, over every model, now


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out on the event loop, in publish order; subscribers must not block."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.seq = 0  # the last number given
        self._queue: deque[Event] = deque()
        self._delivering = False

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: Event) -> Event:
        """Number the event and deliver it to every subscriber; returns it with its `seq`.

        One failing subscriber does not stop the others. An event published by a subscriber
        waits until every subscriber has the current one: delivered at once, it would reach
        the subscribers after that one before the event that caused it."""
        self.seq += 1
        stamped = replace(event, seq=self.seq)
        self._queue.append(stamped)
        if self._delivering:
            return stamped
        self._delivering = True
        try:
            while self._queue:
                current = self._queue.popleft()
                for callback in list(self._subscribers):
                    try:
                        callback(current)
                    except Exception:
                        log.exception("event subscriber %r failed on %s", callback, current.topic)
        finally:
            self._delivering = False
        return stamped


# Field annotations (strings, as annotations are postponed) and what JSON may hold for them.
_WIRE_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "str | None": (str, type(None)),
    "float | None": (int, float, type(None)),
    "float": (int, float),
    "ModelState": str,
}
_ENUMS: dict[str, type[ModelState]] = {"ModelState": ModelState}
_MODEL_CHANGES: dict[str, type[Event]] = {
    "registered": ModelRegistered,
    "deleted": ModelDeleted,
    "updated": ModelUpdated,
    "retried": ModelRetried,
}
_BY_TOPIC: dict[str, type[Event]] = {
    ModelProgressed.topic: ModelProgressed,
    NodeChanged.topic: NodeChanged,
    TrafficRecorded.topic: TrafficRecorded,
}


def decode(message: Mapping[str, Any]) -> Event | None:
    """A /v0/events message as its event; None for kinds this side does not know (a newer
    balancer may send more) or for a message whose fields do not fit its kind. A message
    without `seq` (a balancer older than it) decodes with seq 0."""
    data = message.get("data")
    seq = message.get("seq", 0)
    if not isinstance(data, Mapping) or not isinstance(seq, int) or isinstance(seq, bool):
        return None
    topic = message.get("type")
    kind = (
        _MODEL_CHANGES.get(str(data.get("change")))
        if topic == ModelRegistered.topic
        else _BY_TOPIC.get(str(topic))
    )
    if kind is None:
        return None
    values: dict[str, object] = {}
    for f in fields(kind):
        if f.name == "seq" or f.name not in data:
            continue
        value: object = data[f.name]
        if not isinstance(value, _WIRE_TYPES[str(f.type)]) or isinstance(value, bool):
            return None
        enum = _ENUMS.get(str(f.type))
        if enum is not None and isinstance(value, str):
            if value not in set(enum):
                return None
            value = enum(value)
        values[f.name] = value
    try:
        return kind(**values, seq=seq)
    except TypeError:  # a field missing
        return None
