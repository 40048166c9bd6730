"""Typed events on one bus: the events socket, the GUI and the nodes all subscribe here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base of every event; `topic` is the name subscribers see on the wire."""

    topic: ClassVar[str] = "event"

    def payload(self) -> dict[str, Any]:
        """The event as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class ModelRegistered(Event):
    """A model's metadata was stored; nodes should sync."""

    topic: ClassVar[str] = "models.changed"
    name: str
    change: str = "registered"


@dataclass(frozen=True)
class ModelDeleted(Event):
    """A model's metadata was removed; nodes should delete its files."""

    topic: ClassVar[str] = "models.changed"
    name: str
    change: str = "deleted"


@dataclass(frozen=True)
class ModelProgressed(Event):
    """A node reported download progress or a state change for a model."""

    topic: ClassVar[str] = "model.progress"
    name: str
    node_id: str
    state: str
    downloaded_bytes: int
    total_bytes: int
    error: str | None = None


@dataclass(frozen=True)
class NodeChanged(Event):
    """A node was added, approved, removed, or changed state."""

    topic: ClassVar[str] = "node.changed"
    node_id: str
    status: str


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out on the event loop; subscribers must not block."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Deliver to every subscriber; one failing subscriber does not stop the others."""
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", callback, event.topic)
