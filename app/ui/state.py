"""What the GUI knows of the balancer, kept current from typed events and a slow poll.

Each event says what changed, and only that is fetched: a model registered or deleted
refetches the models (hub and registered list), a node change refetches the nodes (and the
models when that node holds some, as their readiness follows it), and a download's progress
is patched in place from the event without any fetch. Notifications (download finished or
failed, node offline) come from the events themselves. Bursts coalesce: events mark what is
dirty and one timer fetches and repaints once. After the events socket was down, one full
refresh (events were missed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from enum import Flag, auto
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.events import (
    Event,
    ModelDeleted,
    ModelProgressed,
    ModelRegistered,
    ModelUpdated,
    NodeChanged,
    TrafficRecorded,
)
from app.core.types import Lifecycle, NodeStatus
from app.core.wire import ApiKey, Cluster, HubEntry, NewApiKey, NodeJson, RegisteredModel
from app.ui.asyncs import spawn
from app.ui.client import ApiClient
from app.ui.i18n import tr
from app.ui.progress import apply_progress

log = logging.getLogger(__name__)
# Node metrics, LAN discovery, keys and pausing have no events: polled (models are evented,
# so they are polled rarely); while the events socket is down, everything is polled.
POLL_MS = 10_000
HUB_EVERY = 6  # polls
COALESCE_MS = 300  # a burst of events repaints once
BANNER_AFTER = 5.0  # seconds of lost connection before we say so
LIVE = {NodeStatus.ONLINE, NodeStatus.REGISTERING}


class Part(Flag):
    """What a refresh fetches."""

    NONE = 0
    MODELS = auto()  # hub + registered models
    NODES = auto()
    CLUSTER = auto()
    KEYS = auto()
    SERVING = auto()
    ALL = MODELS | NODES | CLUSTER | KEYS | SERVING


class UiState(QObject):
    """Hub, registered models and nodes, with signals when they change."""

    hubChanged = Signal()
    nodesChanged = Signal()
    # Requests finished (the TrafficRecorded event, at most once a second while there is
    # traffic): the dashboard pages refetch what they show from it.
    trafficRecorded = Signal(object)
    connectionChanged = Signal(bool, str)  # connected, reason
    notify = Signal(str, str)  # title, text (tray notifications)
    failed = Signal(str)  # an action failed: the reason in plain words

    def __init__(
        self, client: ApiClient, parent: QObject | None = None, banner_after: float = BANNER_AFTER
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.banner_after = banner_after
        self.hub: list[HubEntry] = []
        self.models: list[RegisteredModel] = []
        self.nodes: list[NodeJson] = []
        self.cluster: Cluster | None = None
        self.api_keys: list[ApiKey] = []
        self.serving_paused = False
        self.connected = False
        self._lost_since: float | None = None
        self._lost_reason = ""
        self._events_task: asyncio.Task[None] | None = None
        self._fetching = False
        self._dirty = Part.NONE  # what the next refresh fetches
        self._repaint = False  # models were patched in place: repaint without a fetch
        self._replay: list[ModelProgressed] = []  # progress that arrived during a fetch
        # The last progress of models registered since the last fetch (their registration
        # event came first and fetches them): applied, and announced, once they are known.
        self._unknown: dict[str, ModelProgressed] = {}
        self._polls = 0
        self._retry = Part.NONE  # what a failed fetch did not get
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(COALESCE_MS)
        self._timer.timeout.connect(self._flush)
        self.poll_timer = QTimer(self)  # public: tests stop it to count what events fetch
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self._poll_now)
        self._watch = QTimer(self)
        self._watch.setInterval(1000)
        self._watch.timeout.connect(self._check_connection)

    def start(self) -> None:
        """Follow events, poll slowly, refresh now."""
        self._events_task = spawn(self.client.events(self._on_event, self._on_connection))
        self.poll_timer.start()
        self._watch.start()
        self.refresh()

    def stop(self) -> None:
        """Stop following the balancer."""
        self.poll_timer.stop()
        self._watch.stop()
        self._timer.stop()
        if self._events_task is not None:
            self._events_task.cancel()

    # -- events ---------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if isinstance(event, ModelProgressed):
            self._progress(event)
        elif isinstance(event, ModelRegistered | ModelDeleted | ModelUpdated):
            self._mark(Part.MODELS)
        elif isinstance(event, NodeChanged):
            self._node_changed(event)
        elif isinstance(event, TrafficRecorded):
            self.trafficRecorded.emit(event)

    def _progress(self, event: ModelProgressed) -> None:
        if self._fetching:
            self._replay.append(event)
        change = apply_progress(event, self.models, self.hub, self._live())
        if change is None:
            self._unknown[event.name] = event
            self._mark(Part.MODELS)
            return
        self._announce(event, *change)
        self._repaint = True
        self._coalesce()

    def _announce(self, event: ModelProgressed, before: Lifecycle | None, after: Lifecycle) -> None:
        name = next((m["name"] for m in self.models if m["id"] == event.name), event.name)
        if after == Lifecycle.READY and before != Lifecycle.READY:
            self.notify.emit(
                tr("Download finished"), tr("{name} is ready to use").format(name=name)
            )
        elif after == Lifecycle.ERROR and before != Lifecycle.ERROR:
            reason = event.error or tr("error")
            self.notify.emit(tr("Download failed"), f"{name}: {reason}")

    def _node_changed(self, event: NodeChanged) -> None:
        node = next((n for n in self.nodes if n["id"] == event.node_id), None)
        was_live = node is not None and node["status"] in LIVE
        if was_live and node is not None and event.status == NodeStatus.OFFLINE:
            self.notify.emit(
                tr("Node offline"), tr("{name} stopped answering").format(name=node["name"])
            )
        # A node's models are servable only while it is live: when that changes, so does
        # their status (online ⇄ registering changes nothing for them).
        liveness_changed = was_live != (event.status in LIVE)
        models_follow = node is None or (bool(node["models"]) and liveness_changed)
        self._mark(Part.NODES | (Part.MODELS if models_follow else Part.NONE))

    def _mark(self, parts: Part) -> None:
        self._dirty |= parts
        self._coalesce()

    def _coalesce(self) -> None:
        # Started once, not restarted: a burst gives one refresh, a steady stream one per
        # interval (restarting would starve it).
        if not self._timer.isActive():
            self._timer.start()

    def _flush(self) -> None:
        if self._repaint:
            self._repaint = False
            self.hubChanged.emit()
        if self._dirty:
            self.refresh(Part.NONE)

    # -- connection -----------------------------------------------------------------
    def _on_connection(self, connected: bool, reason: str) -> None:
        if connected:
            was_lost = self._lost_since is not None
            self._lost_since = None
            self.connected = True
            self.connectionChanged.emit(True, "")
            if was_lost:
                self.refresh()  # events were missed while the socket was down
        else:
            self.connected = False
            self._lost_reason = reason
            if self._lost_since is None:
                self._lost_since = time.monotonic()

    def _check_connection(self) -> None:
        if self._lost_since is not None and time.monotonic() - self._lost_since > self.banner_after:
            self.connectionChanged.emit(False, self._lost_reason)

    def _poll_now(self) -> None:
        self._polls += 1
        retry, self._retry = self._retry, Part.NONE
        if not self.connected:
            self.refresh()
        elif self._polls % HUB_EVERY == 0:
            self.refresh()  # the hub's Hugging Face popularity changes without an event
        else:
            self.refresh((Part.ALL & ~Part.MODELS) | retry)

    def _live(self) -> set[str]:
        return {n["id"] for n in self.nodes if n["status"] in LIVE}

    # -- fetching -------------------------------------------------------------------
    def refresh(self, parts: Part = Part.ALL) -> None:
        """Fetch `parts` (everything by default); one fetch at a time, later asks join the next."""
        self._dirty |= parts
        if self._fetching or not self._dirty:
            return
        parts, self._dirty = self._dirty, Part.NONE
        self._fetching = True
        spawn(self._fetch(parts), on_error=self._refresh_failed)

    async def _fetch(self, parts: Part) -> None:
        try:
            c = self.client
            asked = set(self._unknown)  # a fetch that does not find them: they are gone
            try:
                hub, models, nodes, cluster, keys, serving = await asyncio.gather(
                    c.hub() if Part.MODELS in parts else _none(),
                    c.models() if Part.MODELS in parts else _none(),
                    c.nodes() if Part.NODES in parts else _none(),
                    c.cluster() if Part.CLUSTER in parts else _none(),
                    c.api_keys() if Part.KEYS in parts else _none(),
                    c.serving() if Part.SERVING in parts else _none(),
                )
            except BaseException:
                self._retry |= parts  # with the next poll (now would spin while it is down)
                raise
            # Taken together, then announced: pages never see half a refresh.
            self.nodes = self.nodes if nodes is None else nodes
            if hub is not None and models is not None:
                self.hub, self.models = hub, models
                for event in self._replay:  # as new as the answer, or newer: apply again
                    apply_progress(event, self.models, self.hub, self._live())
                for name, event in list(self._unknown.items()):
                    change = apply_progress(event, self.models, self.hub, self._live())
                    if change is not None:
                        self._announce(event, None, change[1])
                    if change is not None or name in asked:
                        del self._unknown[name]
                self._repaint = False
            self.cluster = self.cluster if cluster is None else cluster
            self.api_keys = self.api_keys if keys is None else keys
            self.serving_paused = self.serving_paused if serving is None else serving["paused"]
            if parts & (Part.MODELS | Part.SERVING):
                self.hubChanged.emit()
            if parts & (Part.NODES | Part.CLUSTER | Part.KEYS):
                self.nodesChanged.emit()
        finally:
            self._fetching = False
            self._replay = []
            if self._dirty:
                self.refresh(Part.NONE)

    def _refresh_failed(self, reason: str) -> None:
        log.info("refresh failed: %s", reason)
        if self._lost_since is None:
            self._lost_since = time.monotonic()
            self._lost_reason = reason

    # -- actions ----------------------------------------------------------------------
    def _act(self, coro: Coroutine[Any, Any, object], parts: Part) -> asyncio.Task[Any]:
        """Run an action; failures reach `failed` with the server's reason, success refetches
        what it changed (events may say so too: the two coalesce)."""
        return spawn(coro, on_error=self.failed.emit, on_done=lambda _r: self._mark(parts))

    def register(self, model_id: str | None = None, repo: str | None = None) -> asyncio.Task[Any]:
        """Register a catalog model (`model_id`) or a Hugging Face repo."""
        return self._act(self.client.register(model_id=model_id, repo=repo), Part.MODELS)

    def delete(self, name: str) -> asyncio.Task[Any]:
        """Unregister (the caller asked for confirmation)."""
        return self._act(self.client.delete_model(name), Part.MODELS)

    def set_paused(self, paused: bool) -> asyncio.Task[Any]:
        """Pause or resume serving /v1."""
        return self._act(self.client.set_paused(paused), Part.SERVING)

    def approve_node(self, node_id: str) -> asyncio.Task[Any]:
        """Let a pending node in."""
        return self._act(self.client.approve_node(node_id), Part.NODES)

    def update_node(self, node_id: str, name: str, tags: list[str]) -> asyncio.Task[Any]:
        """Rename a node and set its tags."""
        return self._act(self.client.update_node(node_id, name, tags), Part.NODES)

    def delete_node(self, node_id: str) -> asyncio.Task[Any]:
        """Remove a node."""
        return self._act(self.client.delete_node(node_id), Part.NODES | Part.MODELS)

    def create_key(self, name: str, on_done: Callable[[NewApiKey], None]) -> asyncio.Task[Any]:
        """Create an API key; `on_done` receives it (its secret is shown this once)."""

        def done(key: NewApiKey) -> None:
            on_done(key)
            self._mark(Part.KEYS)

        return spawn(self.client.create_api_key(name), on_error=self.failed.emit, on_done=done)

    def revoke_key(self, key_id: str) -> asyncio.Task[Any]:
        """Revoke an API key at once."""
        return self._act(self.client.revoke_api_key(key_id), Part.KEYS)

    def rotate_join_token(self) -> asyncio.Task[Any]:
        """A new cluster join token."""
        return self._act(self.client.rotate_join_token(), Part.CLUSTER)


async def _none() -> None:
    """What a part not asked for answers."""
    return None
