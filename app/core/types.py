"""Plain domain records shared by the store, the balancer and the GUI client."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NotRequired, TypedDict, TypeGuard, TypeVar

from app.core.errors import BadRequest

_NAME_RE = re.compile(
    r"^[a-z0-9][a-z0-9._-]{0,95}(/[a-z0-9][a-z0-9._-]{0,95})?(:[a-z0-9_.-]{1,32})?$",
    re.IGNORECASE,
)


E = TypeVar("E", bound=StrEnum)


def enum_member(kind: type[E], value: object) -> E | None:
    """The member of `kind` spelled `value`; None for any other value (a list, a dict, junk)."""
    if not isinstance(value, str):
        return None
    try:
        return kind(value)
    except ValueError:
        return None


class ModelState(StrEnum):
    """Where one model stands on one node, as the node reports it."""

    PENDING = "pending"
    DOWNLOADING = "downloading"
    READY = "ready"
    ERROR = "error"


class NodeStatus(StrEnum):
    """A node's state in the balancer's table: pending → registering → online ⇄ offline."""

    PENDING = "pending"  # joined, waits for an admin's approval
    REGISTERING = "registering"  # approved, heartbeating, not every model ready yet
    ONLINE = "online"  # every model it was told to fetch is ready
    OFFLINE = "offline"  # no heartbeat for a while

    @property
    def live(self) -> bool:
        """Approved and heartbeating: may serve the models it has ready."""
        return self in LIVE_STATUSES


# A set, not a tuple built per call: the request path asks each node this (bench/proxy.py).
LIVE_STATUSES = frozenset({NodeStatus.ONLINE, NodeStatus.REGISTERING})


class HubStatus(StrEnum):
    """A hub entry's status: whether some node has its files."""

    AVAILABLE = "available"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"


class Lifecycle(StrEnum):
    """A registered model's lifecycle across all nodes."""

    REGISTERED = "registered"
    PENDING = "pending"
    READY = "ready"
    ERROR = "error"


class SyncState(StrEnum):
    """Where a node's download pass stands, as its heartbeat reports it."""

    IDLE = "idle"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class MessageStatus(StrEnum):
    """How a saved Playground message ended."""

    DONE = "done"
    STOPPED = "stopped"
    ERROR = "error"
    INTERRUPTED = "interrupted"  # the app quit while it streamed: what had arrived


class Role(StrEnum):
    """Who wrote a saved Playground message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


def check_model_name(name: str) -> str:
    """A model name as routes accept it: `id`, `org/repo`, either with `:QUANT`; no `..`."""
    if ".." in name or not _NAME_RE.match(name):
        raise BadRequest(f"'{name}' is not a valid model name", param="model")
    return name


# How many layers a registered model offloads to the GPU: None = the node's own setting
# (LLMLB_GPU_LAYERS), -1 = all, 0 = CPU only, N = N layers. No model has a thousand layers.
GPU_LAYERS_MAX = 1000


def is_gpu_layers(value: object) -> TypeGuard[int | None]:
    """True for a per-model GPU layer count: null, or an integer from -1 to GPU_LAYERS_MAX
    (JSON's true and false are not counts)."""
    if value is None:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and -1 <= value <= GPU_LAYERS_MAX


# A registered model's context per conversation: None = the node's own setting
# (LLMLB_CONTEXT_SIZE, by default what the model was trained for within the memory).
CONTEXT_SIZE_MIN, CONTEXT_SIZE_MAX = 256, 1 << 21


def is_context_size(value: object) -> TypeGuard[int | None]:
    """True for a per-model context: null, or an integer from CONTEXT_SIZE_MIN to _MAX."""
    if value is None:
        return True
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and CONTEXT_SIZE_MIN <= value <= CONTEXT_SIZE_MAX
    )


def is_text(value: object) -> TypeGuard[str]:
    """True for a string of valid Unicode. JSON's escapes can carry lone surrogates ("\\ud800")
    that no UTF-8 encoder (SQLite's included) accepts: refuse them where text is kept."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class ModelFile:
    """One file a node must fetch for a model (split GGUFs have several)."""

    name: str
    size: int
    sha256: str | None = None


@dataclass(frozen=True)
class ModelRecord:
    """A registered model: metadata only, never the file itself."""

    name: str
    repo: str
    filename: str
    source: str  # "catalog" or "url"
    display_name: str
    size_bytes: int
    required_memory_bytes: int
    catalog_id: str | None = None
    revision: str | None = None
    quantization: str | None = None
    sha256: str | None = None
    context_length: int | None = None
    capabilities: tuple[str, ...] = ("TextGeneration",)
    format: str = "gguf"
    files: tuple[ModelFile, ...] = ()
    created_at: float = 0.0
    gpu_layers: int | None = None  # None: the node's own setting (see is_gpu_layers)
    context_size: int | None = None  # None: the node's own setting (see is_context_size)


@dataclass
class ModelReport:
    """What a node says about one model: where its download stands (the node keeps one per
    model, its heartbeat carries them, the balancer parses them back into this)."""

    model: str
    state: ModelState = ModelState.PENDING
    downloaded_bytes: int = 0
    total_bytes: int = 0
    error: str | None = None
    path: str | None = None  # where the node keeps the file (reported, not stored)
    # The most tokens one conversation may hold there (its context sized to the node's memory;
    # not part of `same_report`: it may move with free memory, and is no progress).
    context_length: int | None = None
    # While downloading: bytes per second, averaged on the node over a few seconds; and while a
    # download waits to retry (the reason in `error`), when the next attempt starts (time.time()
    # on the machine that holds this report).
    bytes_per_second: int = 0
    retry_at: float | None = None

    def same_report(self, other: ModelReport | None) -> bool:
        """Whether `other` says the same about the model (what a progress event would show)."""
        return other is not None and (
            self.state,
            self.downloaded_bytes,
            self.total_bytes,
            self.error,
            self.path,
            self.bytes_per_second,
            self.retry_at,
        ) == (
            other.state,
            other.downloaded_bytes,
            other.total_bytes,
            other.error,
            other.path,
            other.bytes_per_second,
            other.retry_at,
        )


@dataclass
class NodeModelState(ModelReport):
    """A node's report on one model as the balancer keeps it: whose, and whether it is live."""

    node_id: str = ""
    node_online: bool = False


class DownloadProgress(TypedDict):
    """Bytes fetched for a model, summed over the nodes fetching it."""

    percent: float
    bytes_downloaded: int
    bytes_total: int
    bytes_per_second: NotRequired[int]  # summed over the nodes, each averaged on its node
    seconds_left: NotRequired[int | None]  # at that speed; None while nothing flows
    retry_at: NotRequired[float | None]  # the earliest next try of a download waiting to retry


@dataclass
class ModelStatus:
    """A model's state across all nodes, as the hub and /v0/models show it."""

    status: HubStatus
    lifecycle_status: Lifecycle = Lifecycle.REGISTERED
    download_progress: DownloadProgress | None = None
    ready_nodes: list[str] = field(default_factory=list)
    error: str | None = None
    context_length: int | None = None  # the smallest context among the nodes that have it ready


def derive_status(states: list[NodeModelState]) -> ModelStatus:
    """Fold per-node reports into one status: ready on a live node wins, then downloading."""
    ready = [s.node_id for s in states if s.state == ModelState.READY and s.node_online]
    downloading = [s for s in states if s.state in (ModelState.PENDING, ModelState.DOWNLOADING)]
    errors = [s for s in states if s.state == ModelState.ERROR]
    progress: DownloadProgress | None = None
    if downloading:
        done = sum(s.downloaded_bytes for s in downloading)
        total = sum(s.total_bytes for s in downloading)
        speed = sum(s.bytes_per_second for s in downloading)
        retries = [s.retry_at for s in downloading if s.retry_at is not None]
        progress = {
            "percent": round(100.0 * done / total, 1) if total else 0.0,
            "bytes_downloaded": done,
            "bytes_total": total,
            "bytes_per_second": speed,
            "seconds_left": -(-max(total - done, 0) // speed) if speed and total else None,
            "retry_at": min(retries) if retries else None,
        }
    if ready:
        contexts = [
            s.context_length
            for s in states
            if s.state == ModelState.READY and s.node_online and s.context_length
        ]
        context = min(contexts) if contexts else None
        return ModelStatus(HubStatus.DOWNLOADED, Lifecycle.READY, progress, ready, None, context)
    if downloading:
        # A download waiting to retry says why (the Hub unreachable...): a note, not a failure.
        note = next((s.error for s in downloading if s.error), None)
        return ModelStatus(HubStatus.DOWNLOADING, Lifecycle.PENDING, progress, [], note)
    if errors:
        return ModelStatus(HubStatus.AVAILABLE, Lifecycle.ERROR, None, [], errors[0].error)
    return ModelStatus(HubStatus.AVAILABLE, Lifecycle.REGISTERED)
