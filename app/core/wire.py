"""The JSON shapes of the /v0 contract, declared once as TypedDicts (the node protocol's are in
`app.core.node_protocol`).

The balancer builds its answers as these types, the node its heartbeats, and the GUI reads
them (import from here, never redeclare). Field names and state strings are the wire
contract of `spec/API.md`: the states are `StrEnum`s from `app.core.types`, so they travel
as the same plain strings. What a peer sends is checked where it is read (the balancer's
`server/heartbeat.py`, the node's `node/manifest.py`) before it is trusted to have a shape.
"""

from __future__ import annotations

from typing import NotRequired, TypeAlias, TypedDict

from app.core.dashboard_wire import (
    LogEntry,
    LogsJson,
    NodeSample,
    NodeSeries,
    Percentiles,
    QueueEntry,
    QueueJson,
    QueueModel,
    StatsBucket,
    StatsGroup,
    StatsJson,
)
from app.core.node_protocol import DeviceJson, ModelReportJson, SyncProgressJson, SystemJson
from app.core.types import (
    DownloadProgress,
    HubStatus,
    Lifecycle,
    MessageStatus,
    ModelState,
    NodeStatus,
    Role,
    SyncState,
)

__all__ = [
    "ApiKey",
    "CatalogJson",
    "Cluster",
    "Conversation",
    "ConversationDetail",
    "DiscoveredNode",
    "DownloadProgress",
    "HfInfo",
    "HistoryEntry",
    "HistoryRow",
    "HubEntry",
    "JsonObject",
    "JsonValue",
    "LogEntry",
    "LogsJson",
    "Message",
    "NewApiKey",
    "NodeInfo",
    "NodeJson",
    "NodeMetrics",
    "NodeModelJson",
    "NodeSample",
    "NodeSeries",
    "OpenAIModel",
    "Percentiles",
    "QueueEntry",
    "QueueJson",
    "QueueModel",
    "RegisterAnswer",
    "RegisteredModel",
    "RequestDetail",
    "Serving",
    "StatsBucket",
    "StatsGroup",
    "StatsJson",
]

# Any JSON value: what an open field (a conversation's parameters, a message's stats) holds.
# Reading one forces an isinstance check, unlike Any.
JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"


# -- models ---------------------------------------------------------------------------
class HfInfo(TypedDict):
    """Popularity on Hugging Face (absent from a hub entry when the Hub cannot be reached)."""

    downloads: int | None
    likes: int | None


class CatalogJson(TypedDict):
    """A catalog entry's fields, as the catalog file spells them (the start of a hub entry)."""

    id: str
    name: str
    description: str
    repo: str
    recommended_filename: str
    size_bytes: int
    required_memory_bytes: int
    context_length: int | None
    tags: list[str]
    capabilities: list[str]
    quantization: str | None
    parameter_count: str | None
    format: str
    engine: str
    platforms: list[str]
    mmproj_filename: NotRequired[str]  # a Vision model's image projector, fetched beside it
    mmproj_size_bytes: NotRequired[int]


class HubEntry(CatalogJson):
    """One `GET /v0/models/hub` entry: catalog fields, then the model's status."""

    status: HubStatus
    download_progress: DownloadProgress | None
    ready_nodes: list[str]
    lifecycle_status: NotRequired[Lifecycle]  # absent when not registered
    registered_at: NotRequired[float]
    error: NotRequired[str]  # why the model failed on the nodes
    effective_context_length: NotRequired[int]  # what a conversation may hold on its nodes
    hf_info: NotRequired[HfInfo]
    source: NotRequired[str]  # registered models outside the catalog: "catalog" or "url"
    created_at: NotRequired[float]


class NodeModelJson(TypedDict):
    """One node's state for a model, inside a `GET /v0/models` entry."""

    node_id: str
    state: ModelState
    downloaded_bytes: int
    total_bytes: int
    error: str | None
    node_online: bool
    path: str | None
    bytes_per_second: NotRequired[int]  # while downloading, averaged on the node
    retry_at: NotRequired[float | None]  # when a download waiting to retry tries again


class RegisteredModel(HubEntry):
    """One `GET /v0/models` entry: a hub entry with every node's state for it."""

    nodes: list[NodeModelJson]
    gpu_layers: int | None  # layers offloaded to the GPU; null: each node's own setting
    context_size: NotRequired[int | None]  # tokens per conversation; null: each node's own


class RegisterAnswer(TypedDict):
    """`POST /v0/models/register`'s answer."""

    name: str
    status: Lifecycle
    filename: str
    size_bytes: int
    required_memory_bytes: int
    warnings: list[str]


class Quantization(TypedDict):
    """One `GET /v0/models/hub/{id}/quantizations` entry."""

    quantization: str
    size_bytes: int
    required_memory_bytes: int
    default: bool  # the catalog's own choice


class OpenAIModel(TypedDict):
    """An OpenAI `model` object (`GET /v1/models`) with our extension fields."""

    id: str
    object: str
    created: int
    owned_by: str
    ready: bool
    lifecycle_status: Lifecycle
    ready_nodes: list[str]
    size_bytes: NotRequired[int]
    required_memory_bytes: NotRequired[int]
    context_length: NotRequired[int | None]
    capabilities: NotRequired[list[str]]


# -- nodes ----------------------------------------------------------------------------


class NodeMetrics(TypedDict):
    """A node's last heartbeat as `GET /v0/nodes` shows it (`{}` before the first one)."""

    active_requests: int
    loaded_models: list[str]
    ready_models: list[int]  # [ready, total]
    sync_state: SyncState | None
    sync_progress: SyncProgressJson | None
    system: SystemJson
    devices: list[DeviceJson]
    slots: int
    free_slots: int


class NodeInfo(TypedDict, total=False):
    """What a node said about itself when it registered (cleaned)."""

    runtime_version: str | None
    llmlb_version: str | None
    gpu_devices: list[str]
    supported_runtimes: list[str]
    tls_fingerprint: str | None
    slots: int | None  # external servers: the admin's figure


class NodeJson(NodeInfo):
    """One `GET /v0/nodes` entry (its registration info is spread into it)."""

    id: str
    name: str
    url: str
    kind: str  # "local", "remote" or "external"
    status: NodeStatus
    created_at: float  # its first registration
    last_seen: float | None
    registered_at: float | None  # the start of its current run (uptime counts from here)
    tags: list[str]
    notes: str
    metrics: NodeMetrics | dict[str, object]  # {} before the first heartbeat
    metrics_stale: bool
    ready_models: list[int]  # [ready, total]
    models: list[ModelReportJson]
    inflight: int
    # What the balancer measured, like `inflight` (not the node's heartbeat, so external
    # servers have it too): generation tokens/s per model, a moving average of real answers.
    speed: NotRequired[dict[str, float]]


class DiscoveredNode(TypedDict):
    """A node announcing itself on the LAN that is not registered yet."""

    name: str
    url: str | None
    version: str | None
    gpu: str | None
    models: list[str]
    seen_at: float


class Cluster(TypedDict):
    """`GET /v0/cluster`."""

    join_token: str
    discovery: bool
    lan: bool
    tls_fingerprint: str | None
    discovered: list[DiscoveredNode]
    # The root URL the balancer announces on the LAN (mDNS), what other machines and their
    # tools use; None while it is not announced (loopback only).
    lan_url: NotRequired[str | None]


class Serving(TypedDict):
    """`GET/PUT /v0/serving`: whether /v1 inference is paused."""

    paused: bool


# -- keys, conversations, history -----------------------------------------------------
class ApiKey(TypedDict):
    """One `GET /v0/api-keys` entry: never the secret."""

    id: str
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None


class NewApiKey(TypedDict):
    """`POST /v0/api-keys`'s answer: the key, shown this once."""

    id: str
    name: str
    key: str
    prefix: str
    created_at: float


class Conversation(TypedDict):
    """One `GET /v0/conversations` entry."""

    id: str
    title: str
    model: str
    system_prompt: str
    params: JsonObject
    created_at: float
    updated_at: float


class Message(TypedDict):
    """One saved Playground message."""

    id: int
    role: Role
    content: str
    attachments: list[JsonValue]
    status: MessageStatus
    stats: JsonObject
    created_at: float


class ConversationDetail(Conversation):
    """`GET /v0/conversations/{id}`: the conversation with its messages in order."""

    messages: list[Message]


class HistoryRow(TypedDict):
    """One finished /v1 request as the history keeps it (`GET /v0/requests`)."""

    at: float
    endpoint: str
    model: str
    node_id: str | None
    status: int
    stream: bool
    latency_ms: float | None  # until the node's first byte (TTFT for a stream)
    duration_ms: float
    error: str | None
    tokens_in: int | None  # the answer's usage.prompt_tokens, when it had a usage block
    tokens_out: int | None  # usage.completion_tokens
    generation_ms: float | None  # time spent generating tokens_out (tokens/s = out / this)
    client: str | None  # the API key's name; "admin" for the admin token; None: open /v1


class HistoryEntry(HistoryRow):
    """A stored history row, with its id."""

    id: int


class RequestDetail(HistoryEntry):
    """`GET /v0/requests/{id}`: the row with the bodies, each capped (BODY_CAP bytes) and
    marked when cut. A streamed answer is stored assembled: one chat.completion object."""

    request_body: str | None
    request_truncated: bool
    response_body: str | None
    response_truncated: bool
    node_name: str | None  # the node's name when it is still known
