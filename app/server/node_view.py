"""One node as the balancer knows it: its identity, state, reports and how we call it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import aiohttp

from app.core.node_protocol import ModelReportJson
from app.core.types import LIVE_STATUSES, ModelState, NodeModelState, NodeStatus
from app.core.wire import NodeInfo, NodeJson, NodeMetrics
from app.db.rows import NodeRow
from app.server.speed import Speed

STALE_AFTER = 30.0  # seconds before metrics are flagged stale
UNLIMITED = 1_000_000


@dataclass
class NodeView:
    """One node as the balancer knows it."""

    id: str
    name: str
    url: str
    token_hash: str  # sha256 of the token the node presents to us; the token is not kept
    kind: str = "remote"
    status: NodeStatus = NodeStatus.PENDING
    created_at: float = field(default_factory=time.time)
    last_seen: float | None = None  # wall-clock time of the last heartbeat
    # When the node's current run began: its latest registration (a node registers at every
    # start), else the first heartbeat this balancer took from it. Not stored: a record loaded
    # from the database says nothing about the run the node is in now.
    registered_at: float | None = None
    info: NodeInfo = field(default_factory=lambda: NodeInfo())
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    models: dict[str, NodeModelState] = field(default_factory=dict)
    metrics: NodeMetrics | None = None  # the last heartbeat's, None before the first
    inflight: int = 0
    ewma_ms: float | None = None
    # Measured tokens/s per model (dispatch prefers the fastest); not stored, not compared.
    speed: Speed = field(default_factory=Speed, compare=False, repr=False)
    api_key: str | None = None  # external nodes: the key their API wants
    key_in_row: bool = True  # False: the key lives in the vault, never in the database
    balancer_token: str = ""  # what we present to the node (derived, never stored)

    @property
    def capacity(self) -> int:
        """Requests the node runs at once (its reported slots); external: no limit known."""
        slots = self.metrics["slots"] if self.metrics is not None else self.info.get("slots")
        if slots is not None and slots > 0:
            return slots
        return UNLIMITED if self.kind == "external" else 1

    def auth_headers(self) -> dict[str, str]:
        """How this node knows the request comes from us."""
        if self.kind == "external":
            return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return {"X-Balancer-Token": self.balancer_token}

    def ssl(self) -> aiohttp.Fingerprint | bool:
        """How we check the node's TLS certificate: its own self-made one is pinned by the
        fingerprint it registered with (over our TLS); anything else needs a CA's signature."""
        pin = self.info.get("tls_fingerprint")
        if self.kind != "external" and isinstance(pin, str) and len(pin) == 64:
            return aiohttp.Fingerprint(bytes.fromhex(pin))
        return True

    @property
    def live(self) -> bool:
        """Approved and heartbeating: may serve the models it has ready."""
        return self.status in LIVE_STATUSES

    def row(self) -> NodeRow:
        """The database row."""
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "kind": self.kind,
            "status": self.status,
            "token_hash": self.token_hash or None,
            "api_key": self.api_key if self.key_in_row else None,
            "runtime_version": self.info.get("runtime_version"),
            "info": json.dumps(self.info),
            "tags": json.dumps(self.tags),
            "notes": self.notes,
            "created_at": self.created_at,
            "last_seen": self.last_seen,
        }

    def public(self) -> NodeJson:
        """The node as /v0/nodes shows it."""
        stale = self.last_seen is None or time.time() - self.last_seen > STALE_AFTER
        states = list(self.models.values())
        models: list[ModelReportJson] = [
            {
                "name": s.model,
                "state": s.state,
                "downloaded_bytes": s.downloaded_bytes,
                "total_bytes": s.total_bytes,
                "error": s.error,
                "path": s.path,
            }
            for s in states
        ]
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "kind": self.kind,
            "status": self.status,
            "created_at": self.created_at,
            "last_seen": self.last_seen,
            "registered_at": self.registered_at,
            "tags": self.tags,
            "notes": self.notes,
            **self.info,
            "metrics": self.metrics if self.metrics is not None else {},
            "metrics_stale": stale,
            "ready_models": [sum(1 for s in states if s.state == ModelState.READY), len(states)],
            "models": models,
            "inflight": self.inflight,
            "speed": self.speed.public(),
        }

    def record_latency(self, ms: float) -> None:
        """Fold one time-to-first-byte into the moving average."""
        self.ewma_ms = ms if self.ewma_ms is None else 0.8 * self.ewma_ms + 0.2 * ms
