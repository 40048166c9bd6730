"""What the GUI knows of the balancer, refreshed from events (coalesced) and a slow poll."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.ui.asyncs import spawn
from app.ui.client import ApiClient

log = logging.getLogger(__name__)
POLL_MS = 10_000  # fallback refresh when events are quiet or lost
COALESCE_MS = 300  # a burst of events repaints once
BANNER_AFTER = 5.0  # seconds of lost connection before we say so


class UiState(QObject):
    """Hub, registered models and nodes, with signals when they change."""

    hubChanged = Signal()
    nodesChanged = Signal()
    connectionChanged = Signal(bool, str)  # connected, reason
    notify = Signal(str, str)  # title, text (tray notifications)
    failed = Signal(str)  # an action failed: the reason in plain words

    def __init__(
        self, client: ApiClient, parent: QObject | None = None, banner_after: float = BANNER_AFTER
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.banner_after = banner_after
        self.hub: list[dict[str, Any]] = []
        self.models: list[dict[str, Any]] = []
        self.nodes: list[dict[str, Any]] = []
        self.cluster: dict[str, Any] = {}
        self.api_keys: list[dict[str, Any]] = []
        self.serving_paused = False
        self.connected = False
        self._lost_since: float | None = None
        self._lost_reason = ""
        self._events_task: asyncio.Task[Any] | None = None
        self._refreshing = False
        self._again = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(COALESCE_MS)
        self._timer.timeout.connect(self.refresh)
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self.refresh)
        self._watch = QTimer(self)
        self._watch.setInterval(1000)
        self._watch.timeout.connect(self._check_connection)

    def start(self) -> None:
        """Follow events, poll slowly, refresh now."""
        self._events_task = spawn(self.client.events(self._on_event, self._on_connection))
        self._poll.start()
        self._watch.start()
        self.refresh()

    def stop(self) -> None:
        """Stop following the balancer."""
        self._poll.stop()
        self._watch.stop()
        self._timer.stop()
        if self._events_task is not None:
            self._events_task.cancel()

    def _on_event(self, event: dict[str, Any]) -> None:
        self._timer.start()  # restarts: many events → one refresh

    def _on_connection(self, connected: bool, reason: str) -> None:
        if connected:
            was_lost = self._lost_since is not None
            self._lost_since = None
            self.connected = True
            self.connectionChanged.emit(True, "")
            if was_lost:
                self.refresh()
        else:
            self.connected = False
            self._lost_reason = reason
            if self._lost_since is None:
                self._lost_since = time.monotonic()

    def _check_connection(self) -> None:
        if self._lost_since is not None and time.monotonic() - self._lost_since > self.banner_after:
            self.connectionChanged.emit(False, self._lost_reason)

    def refresh(self) -> None:
        """Fetch hub, models and nodes (one refresh at a time; a request during one queues)."""
        if self._refreshing:
            self._again = True
            return
        self._refreshing = True
        spawn(self._refresh(), on_error=self._refresh_failed)

    async def _refresh(self) -> None:
        try:
            hub, models, nodes, serving, cluster, keys = await asyncio.gather(
                self.client.hub(),
                self.client.models(),
                self.client.nodes(),
                self.client.request("GET", "/v0/serving"),
                self.client.request("GET", "/v0/cluster"),
                self.client.request("GET", "/v0/api-keys"),
            )
            self.cluster, self.api_keys = cluster, keys
            self._announce(models, nodes)
            self.hub, self.models, self.nodes = hub, models, nodes
            self.serving_paused = bool(serving.get("paused"))
            self.hubChanged.emit()
            self.nodesChanged.emit()
        finally:
            self._refreshing = False
            if self._again:
                self._again = False
                self.refresh()

    def _refresh_failed(self, reason: str) -> None:
        log.info("refresh failed: %s", reason)
        if self._lost_since is None:
            self._lost_since = time.monotonic()
            self._lost_reason = reason

    def _announce(self, models: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> None:
        """Tray notifications for what changed since the last refresh."""
        before = {m["id"]: m.get("lifecycle_status") for m in self.models}
        for m in models:
            old, new = before.get(m["id"]), m.get("lifecycle_status")
            if old in {"registered", "pending"} and new == "ready":
                self.notify.emit("Download finished", f"{m['name']} is ready to use")
            elif old != "error" and new == "error" and m["id"] in before:
                self.notify.emit("Download failed", f"{m['name']}: {m.get('error') or 'error'}")
        was = {n["id"]: n["status"] for n in self.nodes}
        for n in nodes:
            if was.get(n["id"]) in {"online", "registering"} and n["status"] == "offline":
                self.notify.emit("Node offline", f"{n['name']} stopped answering")

    # -- actions ----------------------------------------------------------------
    def register(self, body: dict[str, Any]) -> asyncio.Task[Any]:
        """Register; failures reach `failed` with the server's reason."""
        return spawn(
            self.client.register(body), on_error=self.failed.emit, on_done=lambda _r: self.refresh()
        )

    def delete(self, name: str) -> asyncio.Task[Any]:
        """Unregister (the caller asked for confirmation)."""
        return spawn(
            self.client.delete_model(name),
            on_error=self.failed.emit,
            on_done=lambda _r: self.refresh(),
        )

    def set_paused(self, paused: bool) -> asyncio.Task[Any]:
        """Pause or resume serving /v1."""
        return spawn(
            self.client.request("PUT", "/v0/serving", {"paused": paused}),
            on_error=self.failed.emit,
            on_done=lambda _r: self.refresh(),
        )

    def node_action(
        self, method: str, node_id: str, suffix: str = "", body: dict[str, Any] | None = None
    ) -> asyncio.Task[Any]:
        """Approve / update / delete a node; failures reach `failed`."""
        return spawn(
            self.client.request(method, f"/v0/nodes/{node_id}{suffix}", body),
            on_error=self.failed.emit,
            on_done=lambda _r: self.refresh(),
        )

    def create_key(self, name: str, on_done: Any) -> asyncio.Task[Any]:
        """Create an API key; `on_done` receives it (its secret is shown this once)."""

        def done(key: Any) -> None:
            on_done(key)
            self.refresh()

        return spawn(
            self.client.request("POST", "/v0/api-keys", {"name": name}),
            on_error=self.failed.emit,
            on_done=done,
        )

    def revoke_key(self, key_id: str) -> asyncio.Task[Any]:
        """Revoke an API key at once."""
        return spawn(
            self.client.request("DELETE", f"/v0/api-keys/{key_id}"),
            on_error=self.failed.emit,
            on_done=lambda _r: self.refresh(),
        )

    def rotate_join_token(self) -> asyncio.Task[Any]:
        """A new cluster join token."""
        return spawn(
            self.client.request("POST", "/v0/cluster/join-token/rotate"),
            on_error=self.failed.emit,
            on_done=lambda _r: self.refresh(),
        )
