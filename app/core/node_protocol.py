"""The JSON shapes of the node protocol (registration, heartbeats, manifests), declared once.

A node sends `RegistrationBody` and `HeartbeatBody` to its balancer and reads the answers and
the manifests; each side checks what the other sends where it reads it (the balancer's
`server/heartbeat.py`, the node's `node/balancer_client.py` and `node/manifest.py`) before it
trusts it to have this shape. States travel as the plain strings of their `StrEnum`s.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from app.core.types import ModelState, NodeStatus, SyncState


class ManifestFileJson(TypedDict):
    """One file a node fetches for a model."""

    name: str
    url: str
    size: int | None
    sha256: str | None


class ManifestJson(TypedDict):
    """`GET /v0/models/registry/{name}/manifest.json`: what a node fetches for a model."""

    name: str
    format: str
    quantization: str | None
    repo: str
    revision: str | None
    capabilities: list[str]
    files: list[ManifestFileJson]
    gpu_layers: int | None  # layers to offload; null: the node's own setting
    context_size: NotRequired[int | None]  # tokens per conversation; null: the node's setting


class StoredManifest(TypedDict):
    """The manifest a node keeps beside a model's files (`manifest.json`)."""

    files: list[ManifestFileJson]
    capabilities: list[str]
    gpu_layers: NotRequired[int | None]  # absent in manifests stored before it existed
    context_size: NotRequired[int | None]
    name: NotRequired[str]  # the model's name (its folder's name is a safe spelling of it)


class ModelReportJson(TypedDict):
    """One model in a node's heartbeat and in a `GET /v0/nodes` entry."""

    name: str
    state: ModelState
    downloaded_bytes: int
    total_bytes: int
    error: str | None
    path: str | None
    context_length: NotRequired[int | None]  # tokens one conversation may hold (when ready)
    bytes_per_second: NotRequired[int]  # while downloading, averaged over a few seconds
    retry_in: NotRequired[float | None]  # seconds until a waiting download tries again


class SyncProgressJson(TypedDict):
    """The download in progress on a node."""

    model_id: str | None
    file: str | None
    downloaded_bytes: int
    total_bytes: int


class DeviceJson(TypedDict):
    """One compute device a node reports."""

    name: str
    backend: str | None
    total_bytes: int
    free_bytes: int
    utilization: float | None


class SystemJson(TypedDict, total=False):
    """The node machine's memory and load (each field only when the node could read it)."""

    cpu_count: int
    memory_total_bytes: int
    memory_available_bytes: int
    load_average: float
    disk_total_bytes: int  # the disk of the node's models folder
    disk_free_bytes: int


class RegistrationBody(TypedDict):
    """`POST /v0/nodes`: what a node says about itself when it registers."""

    node_id: str | None  # an earlier registration's, to be recognised again
    node_token: str | None
    name: str
    url: str
    runtime_version: str
    llmlb_version: str
    local: bool  # the balancer's own node (registered with the admin token)
    gpu_devices: list[str]
    supported_runtimes: list[str]
    tls_fingerprint: str | None


class HeartbeatBody(TypedDict):
    """`POST /v0/health`: what a node tells the balancer every few seconds."""

    node_id: str | None
    models: list[ModelReportJson]
    loaded_models: list[str]
    active_requests: int
    ready_models: list[int]  # [ready, total]
    sync_state: SyncState
    sync_progress: SyncProgressJson | None
    system: SystemJson
    devices: list[DeviceJson]  # the accelerators llama.cpp offloads to ([] on a CPU node)
    slots: int
    free_slots: int


class RegistrationAnswer(TypedDict):
    """`POST /v0/nodes`'s answer to a node."""

    node_id: str
    status: NodeStatus
    node_token: str
    balancer_token: NotRequired[str | None]
    manifest_version: NotRequired[str | None]


class HeartbeatAnswer(TypedDict):
    """`POST /v0/health`'s answer to a node."""

    status: NodeStatus | None
    manifest_version: str | None
