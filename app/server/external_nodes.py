"""External servers: any OpenAI-compatible server as a node, polled for its models and health."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp

from app.core.errors import BadRequest
from app.core.events import NodeChanged
from app.core.types import ModelState, NodeModelState, NodeStatus
from app.core.wire import JsonObject
from app.server.heartbeat import check_origin, node_name
from app.server.http import read_capped
from app.server.node_rows import EXTERNAL_KEY
from app.server.node_view import NodeView
from app.server.nodes import NodeRegistry

POLL_TIMEOUT = aiohttp.ClientTimeout(total=5)  # per poll, whatever the session's default
# What a server's /v1/models may hold: its names become /v1 models and metrics labels.
MODELS_ANSWER_LIMIT = 1024 * 1024
MAX_MODELS = 256
MAX_MODEL_NAME = 200


class ExternalServers:
    """Adds external servers to the node table and polls each one's /v1/models."""

    def __init__(
        self, nodes: NodeRegistry, http: aiohttp.ClientSession, poll_interval: float = 5.0
    ) -> None:
        self.nodes = nodes
        self.http = http  # owned by the composition root, which closes it
        self.poll_interval = poll_interval

    async def add(self, body: JsonObject) -> NodeView:
        """POST /v0/nodes/external: a server polled for models, never asked to download."""
        url = check_origin(body.get("base_url"), "base_url", base_path=True)
        name = node_name(body.get("name"))
        if not name:
            raise BadRequest("'name' is required", param="name")
        key = body.get("api_key")
        if key is not None and not isinstance(key, str):
            raise BadRequest("'api_key' must be a string", param="api_key")
        slots = body.get("slots")
        if slots is not None and (
            isinstance(slots, bool) or not isinstance(slots, int) or slots < 1
        ):
            raise BadRequest(
                "'slots' must be a positive integer (requests it runs at once)", param="slots"
            )
        nodes = self.nodes
        view = NodeView(
            id=uuid.uuid4().hex[:12],
            name=name,
            url=url,
            token_hash="",  # it never calls us
            kind="external",
            status=NodeStatus.REGISTERING,
            api_key=key or None,
            info={"runtime_version": "external", "slots": slots},
            key_in_row=nodes.vault is None,
        )
        if nodes.vault is not None and view.api_key:
            nodes.vault.set(f"{EXTERNAL_KEY}{view.id}", view.api_key)
        nodes.add_view(view)
        await nodes.store.save_node(view.row())
        nodes.bus.publish(NodeChanged(view.id, view.status))
        nodes.supervisor.spawn(self.poll(view), f"poll-{view.id}")
        return view

    async def poll(self, view: NodeView) -> None:
        """Read an external node's /v1/models now and then: its models and its health."""
        while view.id in self.nodes.nodes:
            await self._poll_once(view)
            await asyncio.sleep(self.poll_interval)

    async def _poll_once(self, view: NodeView) -> None:
        try:
            async with self.http.get(
                view.url + "/v1/models",
                headers=view.auth_headers(),
                ssl=view.ssl(),
                timeout=POLL_TIMEOUT,
            ) as r:
                raw = await read_capped(r.content, MODELS_ANSWER_LIMIT) if r.status == 200 else None
                data = json.loads(raw) if raw is not None else None
        except (aiohttp.ClientError, TimeoutError, ValueError, RecursionError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            return  # the monitor marks it offline once it stays silent
        ids = [
            m["id"]
            for m in data["data"][:MAX_MODELS]
            if isinstance(m, dict)
            and isinstance(m.get("id"), str)
            and 0 < len(m["id"]) <= MAX_MODEL_NAME
            and m["id"].isprintable()
        ]
        old_status = view.status
        view.last_seen = time.time()
        view.status = NodeStatus.ONLINE
        view.models = {
            i: NodeModelState(i, ModelState.READY, node_id=view.id, node_online=True) for i in ids
        }
        if old_status != view.status:
            await self.nodes.store.save_node(view.row())
            self.nodes.bus.publish(NodeChanged(view.id, view.status))

    def start(self) -> None:
        """Resume polling the external nodes read from the store."""
        for view in self.nodes.nodes.values():
            if view.kind == "external":
                self.nodes.supervisor.spawn(self.poll(view), f"poll-{view.id}")

    def serves(self, model: str) -> bool:
        """Whether a live external node serves `model` (the request path's question: no dict
        built per request; a loop, cheaper than any() over a generator)."""
        for v in self.nodes.nodes.values():
            if model in v.models and v.kind == "external" and v.live:
                return True
        return False

    def served_elsewhere(self) -> dict[str, list[str]]:
        """Models that live external nodes serve, by name (they need no registration)."""
        out: dict[str, list[str]] = {}
        for view in self.nodes.nodes.values():
            if view.kind == "external" and view.live:
                for name in view.models:
                    out.setdefault(name, []).append(view.id)
        return out
