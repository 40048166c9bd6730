"""The rows the node tables hold, as the balancer writes and reads them."""

from __future__ import annotations

from typing import TypedDict


class NodeRow(TypedDict):
    """One `nodes` row (info and tags are JSON text; the API key only without a vault)."""

    id: str
    name: str
    url: str
    kind: str
    status: str
    token_hash: str | None
    api_key: str | None
    runtime_version: str | None
    info: str
    tags: str
    notes: str
    created_at: float
    last_seen: float | None


class NodeModelRow(TypedDict):
    """One `node_models` row: what a node last reported about one model."""

    model: str
    state: str
    downloaded_bytes: int
    total_bytes: int
    error: str | None


class StoredNode(NodeRow):
    """A node row with its model rows, as the balancer reads them back at start."""

    models: list[NodeModelRow]


class StoredBodies(TypedDict):
    """One `request_bodies` row's text, each body capped (its id and time: the request's)."""

    request: str | None
    request_truncated: bool
    response: str | None  # a streamed answer: assembled as one answer object
    response_truncated: bool
