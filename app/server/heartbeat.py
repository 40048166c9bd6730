"""What a node tells the balancer, parsed into types: hostile input, bounded and cleaned.

A node is another machine. Whatever it sends (its registration, its heartbeats) is read
here once, into dataclasses that never hold a wrong type, an unbounded string or list, a
control character, a negative count or a non-finite number. Junk in a scalar field becomes
a neutral value (0, None, "pending"); a body whose shape is wrong (`models` not a list, an
entry not an object) is refused with 400. Unknown keys are dropped.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from app.core.errors import BadRequest
from app.core.node_protocol import DeviceJson, SyncProgressJson, SystemJson
from app.core.tls import normalize_fingerprint
from app.core.types import ModelReport, ModelState, SyncState, enum_member
from app.core.wire import NodeInfo, NodeMetrics

NAME_LIMIT = 100  # a node's display name
MODEL_NAME_LIMIT = 200
ERROR_LIMIT = 500
PATH_LIMIT = 1024
VERSION_LIMIT = 200
MODELS_LIMIT = 256  # models one node may report
LIST_LIMIT = 64  # loaded models, GPU devices, supported runtimes
# A node's slots weight its share of the traffic (the dispatcher divides load by them), so a
# node claiming 10**9 would take every request. 64 is far above what one llama.cpp process
# decodes together in practice (the default is 4), so honest nodes are never held back.
MAX_SLOTS = 64
MAX_COUNT = 2**62  # fits SQLite's 64-bit integers with room to add
URL_LIMIT = 2048

_HOST_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


# -- scalars ------------------------------------------------------------------------
def clean_text(value: object, limit: int) -> str | None:
    """A string without control characters (newlines included), stripped and cut at `limit`;
    None for anything that is not a string."""
    if not isinstance(value, str):
        return None
    kept = "".join(c for c in value[: limit * 4] if not _is_control(c))
    return kept.strip()[:limit]


def _is_control(c: str) -> bool:
    """Control, format and unassigned characters, and line/paragraph separators: what forges
    a log line, reorders text (bidi overrides) or hides characters."""
    category = unicodedata.category(c)
    return category[0] == "C" or category in {"Zl", "Zp"}


def clean_int(value: object) -> int:
    """A count: a real (non-bool) int ≥ 0, capped; anything else is 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return min(value, MAX_COUNT)


def clean_float(value: object) -> float | None:
    """A finite number, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def clean_names(value: object, limit: int, item_limit: int, param: str) -> list[str]:
    """A bounded list of cleaned strings (non-strings dropped); 400 when not a list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"'{param}' must be a list of strings", param=param)
    out = [t for v in value[:limit] if (t := clean_text(v, item_limit))]
    return list(dict.fromkeys(out))


def node_name(value: object) -> str:
    """A node's display name: no control characters, stripped, at most 100 characters."""
    return clean_text(value, NAME_LIMIT) or ""


# -- URLs ---------------------------------------------------------------------------
def check_origin(url: object, param: str, base_path: bool = False) -> str:
    """`http(s)://host[:port]` and nothing else (no user, path, query or fragment), or 400.

    The balancer POSTs users' prompts to this address, so a node that registers itself may not
    aim it at a path or a query of some other service. With `base_path` (an external server an
    admin adds), a plain base path is kept (a server behind a reverse proxy at
    `https://host/llm/v1`), and a trailing `/v1`, how OpenAI base URLs are written, is dropped.
    """
    shape = (
        f"'{param}' must be http(s)://host[:port][/base path], without user, query or fragment"
        if base_path
        else f"'{param}' must be an origin: http(s)://host[:port], without user, path, query or "
        "fragment"
    )
    if not isinstance(url, str) or not url or len(url) > URL_LIMIT:
        raise BadRequest(shape, param=param)
    if any(c in url for c in "?#@\\") or any(_is_control(c) or c.isspace() for c in url):
        raise BadRequest(shape, param=param)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadRequest(shape + " (port 1-65535)", param=param) from exc
    path = parts.path.rstrip("/")
    if base_path:
        path = path.removesuffix("/v1")
        if not _BASE_PATH_RE.match(path) or "/../" in path + "/" or "/./" in path + "/":
            raise BadRequest(shape, param=param)
    if parts.scheme.lower() not in {"http", "https"} or (path and not base_path):
        raise BadRequest(shape, param=param)
    host = (parts.hostname or "").lower()
    if port is not None and not 1 <= port <= 65535:
        raise BadRequest(shape + " (port 1-65535)", param=param)
    if not _sane_host(host):
        raise BadRequest(f"'{param}' has no usable host name or address", param=param)
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{shown}" + (f":{port}" if port is not None else "") + path


_BASE_PATH_RE = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


def _sane_host(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST_RE.match(host)) and not host.replace(".", "").isdigit()
    return not (address.is_unspecified or address.is_multicast or address == _BROADCAST)


_BROADCAST = ipaddress.ip_address("255.255.255.255")


# -- registration -------------------------------------------------------------------
def registration_info(body: Mapping[str, object]) -> NodeInfo:
    """The descriptive fields of a registration (versions, devices, runtimes), cleaned."""
    return {
        "runtime_version": clean_text(body.get("runtime_version"), VERSION_LIMIT),
        "llmlb_version": clean_text(body.get("llmlb_version"), VERSION_LIMIT),
        "gpu_devices": clean_names(body.get("gpu_devices"), LIST_LIMIT, 200, "gpu_devices"),
        "supported_runtimes": clean_names(
            body.get("supported_runtimes"), LIST_LIMIT, 64, "supported_runtimes"
        ),
        "tls_fingerprint": _fingerprint(body.get("tls_fingerprint")),
    }


def _fingerprint(value: object) -> str | None:
    """The node's TLS certificate fingerprint (we pin it when we call the node), or 400."""
    if value is None:
        return None
    try:
        return normalize_fingerprint(value if isinstance(value, str) else "")
    except ValueError as exc:
        raise BadRequest(f"'tls_fingerprint': {exc}", param="tls_fingerprint") from exc


# -- heartbeats ---------------------------------------------------------------------
MAX_CONTEXT = 1 << 24  # tokens: far past any model's context, and bounded
MAX_SPEED = 1 << 40  # bytes per second: far past any link, and bounded
MAX_RETRY_IN = 3600.0  # seconds: a node waits at most a minute between tries; bounded anyway


def parse_report(item: object) -> ModelReport:
    """One entry of a heartbeat's `models`; 400 unless it is an object with a name. An unknown
    state reads as pending."""
    if not isinstance(item, dict):
        raise BadRequest("each entry of 'models' must be an object", param="models")
    name = clean_text(item.get("name"), MODEL_NAME_LIMIT)
    if not name:
        raise BadRequest("each entry of 'models' needs a 'name'", param="models")
    return ModelReport(
        model=name,
        state=enum_member(ModelState, item.get("state")) or ModelState.PENDING,
        downloaded_bytes=clean_int(item.get("downloaded_bytes")),
        total_bytes=clean_int(item.get("total_bytes")),
        error=clean_text(item.get("error"), ERROR_LIMIT) or None,
        path=clean_text(item.get("path"), PATH_LIMIT) or None,
        context_length=min(clean_int(item.get("context_length")), MAX_CONTEXT) or None,
        bytes_per_second=min(clean_int(item.get("bytes_per_second")), MAX_SPEED),
        retry_at=_retry_at(item.get("retry_in")),
    )


def _retry_at(value: object) -> float | None:
    """A node's "next try in N seconds" on this machine's clock (the node's may differ)."""
    seconds = clean_float(value)
    if seconds is None or seconds < 0:
        return None
    return time.time() + min(seconds, MAX_RETRY_IN)


@dataclass(frozen=True)
class Heartbeat:
    """One heartbeat, every field typed and bounded."""

    node_id: object  # compared with the token's node, never stored
    models: list[ModelReport] = field(default_factory=list)
    active_requests: int = 0
    loaded_models: list[str] = field(default_factory=list)
    ready_models: list[int] = field(default_factory=lambda: [0, 0])
    sync_state: SyncState | None = None
    sync_progress: SyncProgressJson | None = None
    system: SystemJson = field(default_factory=lambda: SystemJson())
    devices: list[DeviceJson] = field(default_factory=list)
    slots: int = 1
    free_slots: int = 0

    @classmethod
    def parse(cls, body: Mapping[str, object]) -> Heartbeat:
        """Read a heartbeat body; 400 when its shape is wrong, never an exception otherwise."""
        raw_models = body.get("models")
        if raw_models is None:
            raw_models = []
        if not isinstance(raw_models, list):
            raise BadRequest("'models' must be a list of objects", param="models")
        models = {m.model: m for m in map(parse_report, raw_models[:MODELS_LIMIT])}
        slots = clean_int(body.get("slots")) or 1
        slots = min(slots, MAX_SLOTS)
        ready = body.get("ready_models")
        pair = [clean_int(v) for v in ready[:2]] if isinstance(ready, list) else []
        return cls(
            node_id=body.get("node_id"),
            models=list(models.values()),
            active_requests=clean_int(body.get("active_requests")),
            loaded_models=clean_names(
                body.get("loaded_models"), LIST_LIMIT, MODEL_NAME_LIMIT, "loaded_models"
            ),
            ready_models=pair if len(pair) == 2 else [0, 0],
            sync_state=enum_member(SyncState, body.get("sync_state")),
            sync_progress=_sync_progress(body.get("sync_progress")),
            system=_system(body.get("system")),
            devices=_devices(body.get("devices")),
            slots=slots,
            free_slots=min(clean_int(body.get("free_slots")), slots),
        )

    def metrics(self) -> NodeMetrics:
        """The node's metrics as /v0/nodes shows them."""
        return {
            "active_requests": self.active_requests,
            "loaded_models": list(self.loaded_models),
            "ready_models": list(self.ready_models),
            "sync_state": self.sync_state,
            "sync_progress": None if self.sync_progress is None else {**self.sync_progress},
            "system": {**self.system},
            "devices": [{**d} for d in self.devices],
            "slots": self.slots,
            "free_slots": self.free_slots,
        }


def _sync_progress(value: object) -> SyncProgressJson | None:
    if not isinstance(value, dict):
        return None
    return {
        "model_id": clean_text(value.get("model_id"), MODEL_NAME_LIMIT),
        "file": clean_text(value.get("file"), PATH_LIMIT),
        "downloaded_bytes": clean_int(value.get("downloaded_bytes")),
        "total_bytes": clean_int(value.get("total_bytes")),
    }


def _system(value: object) -> SystemJson:
    out = SystemJson()
    if not isinstance(value, dict):
        return out
    if "cpu_count" in value:
        out["cpu_count"] = clean_int(value.get("cpu_count"))
    if "memory_total_bytes" in value:
        out["memory_total_bytes"] = clean_int(value.get("memory_total_bytes"))
    if "memory_available_bytes" in value:
        out["memory_available_bytes"] = clean_int(value.get("memory_available_bytes"))
    load = clean_float(value.get("load_average"))
    if load is not None:
        out["load_average"] = load
    if "disk_total_bytes" in value and "disk_free_bytes" in value:  # both, or neither
        total = clean_int(value.get("disk_total_bytes"))
        out["disk_total_bytes"] = total
        out["disk_free_bytes"] = min(clean_int(value.get("disk_free_bytes")), total)
    return out


def _devices(value: object) -> list[DeviceJson]:
    if not isinstance(value, list):
        return []
    out: list[DeviceJson] = []
    for item in value[:LIST_LIMIT]:
        if isinstance(item, dict) and (name := clean_text(item.get("name"), 200)):
            utilization = clean_float(item.get("utilization"))
            out.append(
                {
                    "name": name,
                    "backend": clean_text(item.get("backend"), 32),
                    "total_bytes": clean_int(item.get("total_bytes")),
                    "free_bytes": clean_int(item.get("free_bytes")),
                    "utilization": utilization if utilization is None or utilization >= 0 else None,
                }
            )
    return out
