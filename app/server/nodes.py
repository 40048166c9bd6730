"""The balancer's view of its nodes: registration, heartbeats, states, and who can serve what.

Kept in memory (the request path never reads the database) and persisted on change.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
import uuid

import aiohttp

from app.core.errors import BadRequest, NotFound, Unauthorized
from app.core.events import (
    Event,
    EventBus,
    ModelDeleted,
    ModelProgressed,
    ModelRegistered,
    NodeChanged,
)
from app.core.node_protocol import HeartbeatAnswer, RegistrationAnswer
from app.core.secrets import same_secret
from app.core.settings import DEFAULT_NODE_OFFLINE_AFTER
from app.core.tasks import TaskSupervisor
from app.core.types import ModelState, NodeModelState, NodeStatus
from app.core.vault import Vault
from app.core.wire import JsonObject
from app.db.hashing import hash_secret
from app.db.store import NodeStore
from app.server.heartbeat import Heartbeat, check_origin, clean_text, node_name, registration_info
from app.server.join_limit import MAX_PENDING, PENDING_TTL, JoinLimiter, TooManyPending
from app.server.join_token import JoinToken
from app.server.node_rows import EXTERNAL_KEY, view_from_row
from app.server.node_samples import NodeSamples
from app.server.node_view import NodeView as NodeView  # re-exported: dispatch and proxy use it
from app.server.sync_notice import notify_sync

log = logging.getLogger(__name__)
OFFLINE_AFTER = DEFAULT_NODE_OFFLINE_AFTER  # seconds without a heartbeat
MAX_DELETED = 1024  # deleted models whose late reports are ignored


class NodeRegistry:
    """Registers nodes, takes heartbeats, marks silent nodes offline, lists capable nodes."""

    def __init__(
        self,
        store: NodeStore,
        bus: EventBus,
        supervisor: TaskSupervisor,
        admin_token: str,
        offline_after: float = OFFLINE_AFTER,
        node_secret: str = "",
        max_pending: int = MAX_PENDING,
        pending_ttl: float = PENDING_TTL,
        vault: Vault | None = None,
        http: aiohttp.ClientSession | None = None,
        samples: NodeSamples | None = None,
    ) -> None:
        self.offline_after = offline_after
        self.store = store
        self.bus = bus
        self.supervisor = supervisor
        self.admin_token = admin_token
        # Without a stored secret (tests building a registry alone) nodes learn a fresh one
        # at registration, which they do at every start.
        self._secret = (node_secret or secrets.token_urlsafe(32)).encode()
        self.max_pending = max_pending
        self.pending_ttl = pending_ttl
        # Secrets we send again (the join token, external servers' keys) live in the OS
        # keyring, not in the database; without a vault (tests building a registry alone)
        # they stay in memory.
        self.vault = vault
        self.joins = JoinLimiter()
        self._join_token = JoinToken(store, vault)
        self.nodes: dict[str, NodeView] = {}
        self._by_hash: dict[str, NodeView] = {}
        # Models deleted and not registered again: nodes go on reporting them until their
        # next sync, and a report must not bring a deleted model back (nor its progress
        # follow its deletion on the bus). Bounded: the oldest deletions are forgotten.
        self._deleted: dict[str, None] = {}
        bus.subscribe(self._on_event)
        self.manifest_version = ""
        # The composition root's session for sync notices (it closes it); without one (tests
        # building a registry alone) no notice goes out and heartbeats carry the news.
        self.http = http
        self.samples = samples  # the dashboard's device use and model loads, per heartbeat

    async def load(self, join_token: str | None) -> None:
        """Read nodes from the store (all offline until they beat) and settle the join token."""
        for row in await self.store.list_nodes():
            view, moved_key = view_from_row(row, self.vault, self.balancer_token(row["id"]))
            self.add_view(view)
            if moved_key:  # saved again without it
                await self.store.save_node(view.row())
        await self._join_token.load(join_token)

    @property
    def join_token(self) -> str:
        """The token a new node must prove it knows."""
        return self._join_token.value

    async def rotate_join_token(self) -> str:
        """A new join token (nodes already registered keep working)."""
        return await self._join_token.rotate()

    def start(self) -> None:
        """Start the offline monitor."""
        self.supervisor.spawn(self._monitor(), "node-monitor")

    def balancer_token(self, node_id: str) -> str:
        """What we present to a node so that it knows the call comes from us."""
        message = b"llmlb-balancer-token:" + node_id.encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def add_view(self, view: NodeView) -> None:
        """Put a node in the table (and, unless external, in the token index)."""
        self.nodes[view.id] = view
        if view.token_hash and view.kind != "external":  # external nodes never call us
            self._by_hash[view.token_hash] = view

    def by_token(self, token: str | None) -> NodeView | None:
        """The node holding this token (looked up by its hash, compared in constant time)."""
        if not token:
            return None
        digest = hash_secret(token)
        view = self._by_hash.get(digest)
        if view is not None and hmac.compare_digest(view.token_hash, digest):
            return view
        return None

    def may_read(self, token: str | None) -> bool:
        """Whether this X-Node-Token may read the model list and manifests: an approved node's
        (registering, online, or offline), never a pending one's."""
        view = self.by_token(token)
        return view is not None and view.status != NodeStatus.PENDING

    # -- registration -----------------------------------------------------------
    async def register(
        self, body: JsonObject, credential: str | None, client: str = ""
    ) -> RegistrationAnswer:
        """POST /v0/nodes: admin-registered nodes are approved at once, joiners wait."""
        self.joins.check(client)
        admin = same_secret(credential, self.admin_token)
        joined = same_secret(credential, self.join_token)
        if not (admin or joined):
            self.joins.failed(client)
            raise Unauthorized("a node needs the cluster join token to register")
        url = check_origin(body.get("url"), "url")
        name = node_name(body.get("name"))
        info = registration_info(body)
        view = self.nodes.get(str(body.get("node_id") or ""))
        token = body.get("node_token")
        if (
            view is not None
            and isinstance(token, str)
            and (found := self.by_token(token)) is not None
            and found is view
        ):
            old_url = view.url
            view.url, view.name, view.info = url, name or view.name, {**view.info, **info}
            # It registers as it starts: it may run on another build (a GPU one) now.
            view.speed.clear()
            if old_url != url and not admin and view.status != NodeStatus.PENDING:
                # An approved node may not redirect users' prompts elsewhere on its own.
                log.warning(
                    "node %s (%r) moved from %r to %r: it waits for approval again",
                    view.id,
                    view.name,
                    old_url,
                    url,
                )
                view.status = NodeStatus.PENDING
            elif admin or view.status != NodeStatus.PENDING:
                view.status = NodeStatus.REGISTERING
        else:
            if not admin and self._pending() >= self.max_pending:
                raise TooManyPending(
                    f"{self.max_pending} nodes already wait for approval: approve or delete "
                    "pending nodes (GET /v0/nodes) before more can join"
                )
            token = secrets.token_urlsafe(32)
            node_id = uuid.uuid4().hex[:12]
            view = NodeView(
                id=node_id,
                name=name or url,
                url=url,
                token_hash=hash_secret(token),
                kind="local" if admin and body.get("local") is True else "remote",
                status=NodeStatus.REGISTERING if admin else NodeStatus.PENDING,
                info=info,
                balancer_token=self.balancer_token(node_id),
            )
            self.add_view(view)
        view.last_seen = view.registered_at = time.time()  # a node registers as it starts
        await self.store.save_node(view.row())
        self.bus.publish(NodeChanged(view.id, view.status))
        log.info("node %s (%r) registered at %r: %s", view.id, view.name, view.url, view.status)
        return {
            "node_id": view.id,
            "status": view.status,
            "node_token": token,  # the node's own copy: we keep only its hash
            "balancer_token": view.balancer_token,
            "manifest_version": self.manifest_version,
        }

    def _pending(self) -> int:
        return sum(1 for v in self.nodes.values() if v.status == NodeStatus.PENDING)

    async def approve(self, node_id: str) -> NodeView:
        """Let a pending node in."""
        view = self.require(node_id)
        if view.status == NodeStatus.PENDING:
            view.status = NodeStatus.REGISTERING
            await self.store.save_node(view.row())
            self.bus.publish(NodeChanged(view.id, view.status))
        return view

    async def update(self, node_id: str, body: JsonObject) -> NodeView:
        """Rename, tag or annotate a node (PUT /v0/nodes/{id})."""
        view = self.require(node_id)
        if "name" in body:
            raw = body["name"]
            name = node_name(raw)
            if not name or not isinstance(raw, str) or len(raw.strip()) > 100:
                raise BadRequest("'name' must be 1 to 100 characters", param="name")
            view.name = name
        if "tags" in body:
            raw_tags = body["tags"]
            tags = raw_tags.split(",") if isinstance(raw_tags, str) else raw_tags
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise BadRequest(
                    "'tags' must be a list of strings or a comma-separated string", param="tags"
                )
            cleaned = (clean_text(t, 64) or "" for t in tags)
            view.tags = list(dict.fromkeys(t for t in cleaned if t))[:20]
        if "notes" in body:
            if not isinstance(body["notes"], str):
                raise BadRequest("'notes' must be a string", param="notes")
            view.notes = body["notes"][:2000]
        await self.store.save_node(view.row())
        self.bus.publish(NodeChanged(view.id, view.status))
        return view

    async def remove(self, node_id: str) -> None:
        """Forget a node (it must register again)."""
        view = self.require(node_id)
        del self.nodes[node_id]
        self._by_hash.pop(view.token_hash, None)
        await self.store.delete_node(node_id)
        if self.vault is not None and view.kind == "external":
            self.vault.delete(f"{EXTERNAL_KEY}{node_id}")
        self.bus.publish(NodeChanged(node_id, "removed"))

    def require(self, node_id: str) -> NodeView:
        """The node, or 404."""
        view = self.nodes.get(node_id)
        if view is None:
            raise NotFound(f"no node with id '{node_id}'", code="node_not_found")
        return view

    # -- heartbeats -------------------------------------------------------------
    async def heartbeat(self, token: str | None, body: JsonObject) -> HeartbeatAnswer:
        """POST /v0/health: update metrics and model states; answer status + manifest version."""
        view = self.by_token(token)
        if view is None:
            raise Unauthorized("unknown node token: register again", code="unknown_node")
        beat = Heartbeat.parse(body)
        if beat.node_id not in (None, view.id):
            raise Unauthorized("this token belongs to another node", code="unknown_node")
        new_states = {
            m.model: NodeModelState(**vars(m), node_id=view.id, node_online=True)
            for m in beat.models
            if m.model not in self._deleted
        }
        view.last_seen = time.time()
        view.registered_at = view.registered_at or view.last_seen  # beating since our start
        before, view.metrics = view.metrics, beat.metrics()
        if self.samples is not None:
            self.samples.beat(view.id, before, view.metrics)
        old_status = view.status
        if view.status != NodeStatus.PENDING:
            all_ready = all(s.state == ModelState.READY for s in new_states.values())
            view.status = NodeStatus.ONLINE if all_ready else NodeStatus.REGISTERING
        changed_models = [
            s for name, s in new_states.items() if not s.same_report(view.models.get(name))
        ]
        removed = set(view.models) - set(new_states)
        for s in new_states.values():
            s.node_online = view.live
        view.models = new_states
        if changed_models or removed or old_status != view.status:
            await self.store.save_node(view.row())
            await self.store.save_node_models(view.id, list(new_states.values()))
        for s in changed_models:
            if s.model in self._deleted:  # deleted while we saved: its deletion went out
                continue
            self.bus.publish(
                ModelProgressed(
                    s.model,
                    view.id,
                    s.state,
                    s.downloaded_bytes,
                    s.total_bytes,
                    s.error,
                    s.path,
                    s.bytes_per_second,
                    s.retry_at,
                )
            )
        if old_status != view.status:
            self.bus.publish(NodeChanged(view.id, view.status))
        return {"status": view.status, "manifest_version": self.manifest_version}

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.time()
            for view in list(self.nodes.values()):
                if view.status == NodeStatus.PENDING:
                    heard = view.last_seen or view.created_at
                    if now - heard > self.pending_ttl and view.id in self.nodes:
                        log.info(
                            "dropping node %s (%r): never approved, silent", view.id, view.name
                        )
                        await self.remove(view.id)
                    continue
                if view.status == NodeStatus.OFFLINE:
                    continue
                if view.last_seen is None or now - view.last_seen > self.offline_after:
                    view.status = NodeStatus.OFFLINE
                    for s in view.models.values():
                        s.node_online = False
                    log.warning("node %s (%r) went offline", view.id, view.name)
                    await self.store.save_node(view.row())
                    self.bus.publish(NodeChanged(view.id, NodeStatus.OFFLINE))

    # -- what can serve what ----------------------------------------------------
    def states_by_model(self) -> dict[str, list[NodeModelState]]:
        """Per model, each node's state, pending and offline nodes included (admin views)."""
        out: dict[str, list[NodeModelState]] = {}
        for view in self.nodes.values():
            for s in view.models.values():
                out.setdefault(s.model, []).append(s)
        return out

    def live_states_by_model(self) -> dict[str, list[NodeModelState]]:
        """Per model, the states live (approved, heartbeating) nodes report: what /v1 clients
        may learn. A pending or offline node's errors and progress stay out of it."""
        out: dict[str, list[NodeModelState]] = {}
        for view in self.nodes.values():
            if view.live:
                for s in view.models.values():
                    out.setdefault(s.model, []).append(s)
        return out

    def candidates(self, model: str) -> list[NodeView]:
        """Live nodes with the model ready: least in flight first, then fastest. When none has
        it ready, those holding it in error (a failed load is tried again on a request)."""
        found = self._holding(model, ModelState.READY) or self._holding(model, ModelState.ERROR)
        if len(found) < 2:
            return found
        return sorted(found, key=lambda v: (v.inflight, v.ewma_ms or 0.0))

    def _holding(self, model: str, state: ModelState) -> list[NodeView]:
        return [
            v
            for v in self.nodes.values()
            if (s := v.models.get(model)) is not None and s.state == state and v.live
        ]

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ModelDeleted):
            self.forget_model(event.name)
        elif isinstance(event, ModelRegistered):
            self._deleted.pop(event.name, None)

    def forget_model(self, model: str) -> None:
        """Drop a deleted model from every node's view, and nodes' reports of it until it is
        registered again."""
        for view in self.nodes.values():
            view.models.pop(model, None)
            view.speed.forget(model)
        self._deleted[model] = None
        if len(self._deleted) > MAX_DELETED:
            del self._deleted[next(iter(self._deleted))]

    def set_manifest_version(self, version: str) -> None:
        """The registered set changed: tell live nodes to sync now (heartbeats heal misses)."""
        self.manifest_version = version
        for view in self.nodes.values():
            if view.live and view.kind != "external" and self.http is not None:
                self.supervisor.spawn(notify_sync(self.http, view), f"sync-notice-{view.id}")
