"""Plain domain records shared by the store, the balancer and the GUI client."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from app.core.errors import BadRequest

_NAME_RE = re.compile(
    r"^[a-z0-9][a-z0-9._-]{0,95}(/[a-z0-9][a-z0-9._-]{0,95})?(:[a-z0-9_.-]{1,32})?$",
    re.IGNORECASE,
)

# Per-node model states, as nodes report them.
NODE_MODEL_STATES = ("pending", "downloading", "ready", "error")


def check_model_name(name: str) -> str:
    """A model name as routes accept it: `id`, `org/repo`, either with `:QUANT`; no `..`."""
    if ".." in name or not _NAME_RE.match(name):
        raise BadRequest(f"'{name}' is not a valid model name", param="model")
    return name


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


@dataclass
class NodeModelState:
    """What one node says about one model: where its download stands."""

    node_id: str
    model: str
    state: str
    downloaded_bytes: int = 0
    total_bytes: int = 0
    error: str | None = None
    node_online: bool = False
    path: str | None = None  # where the node keeps the file (reported, not stored)


@dataclass
class ModelStatus:
    """A model's state across all nodes, as the hub and /v0/models show it."""

    status: str  # available / downloading / downloaded
    lifecycle_status: str  # registered / pending / ready / error
    download_progress: dict[str, Any] | None = None
    ready_nodes: list[str] = field(default_factory=list)
    error: str | None = None


def derive_status(states: list[NodeModelState]) -> ModelStatus:
    """Fold per-node reports into one status: ready on a live node wins, then downloading."""
    ready = [s.node_id for s in states if s.state == "ready" and s.node_online]
    downloading = [s for s in states if s.state in {"pending", "downloading"}]
    errors = [s for s in states if s.state == "error"]
    progress = None
    if downloading:
        done = sum(s.downloaded_bytes for s in downloading)
        total = sum(s.total_bytes for s in downloading)
        progress = {
            "percent": round(100.0 * done / total, 1) if total else 0.0,
            "bytes_downloaded": done,
            "bytes_total": total,
        }
    if ready:
        return ModelStatus("downloaded", "ready", progress, ready)
    if downloading:
        return ModelStatus("downloading", "pending", progress)
    if errors:
        return ModelStatus("available", "error", None, [], errors[0].error)
    return ModelStatus("available", "registered")
