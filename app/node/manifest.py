"""What a balancer may tell a node to fetch, checked before anything is written.

A node treats its balancer's answers as hostile input: a balancer found by mDNS may be anyone
on the LAN. A model name becomes a folder, a manifest file name becomes a path in that
folder, a URL is fetched: each is checked here, in one place, against one set of rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import urlsplit

from app.core.errors import BadRequest, LlmlbError
from app.core.node_protocol import ManifestFileJson, StoredManifest
from app.core.types import (
    CONTEXT_SIZE_MAX,
    CONTEXT_SIZE_MIN,
    GPU_LAYERS_MAX,
    check_model_name,
    is_context_size,
    is_gpu_layers,
)

MAX_FILES = 256  # a split GGUF has a few dozen shards at most
MAX_FILE_SIZE = 4 << 40  # 4 TiB: no single model file comes near it
MAX_NAME_LEN = 512
MAX_URL_LEN = 4096
MAX_MODELS = 4096  # models in a balancer's list
MAX_MODEL_NAME_LEN = 256
# Names the node itself writes into a model's folder: a manifest must not overwrite them.
RESERVED = frozenset({"manifest.json", "manifest.json.tmp"})
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class ManifestError(LlmlbError):
    """The balancer sent a model name or manifest the node will not act on; says why."""


@dataclass(frozen=True)
class ManifestFile:
    """One file to fetch: a safe relative path, an http(s) URL, and what to check it against."""

    name: str
    url: str
    size: int | None = None
    sha256: str | None = None

    def to_json(self) -> ManifestFileJson:
        """The file as the manifest on disk stores it."""
        return {"name": self.name, "url": self.url, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    """A model's files (the first is the one llama.cpp loads), its capabilities, and how many
    layers it offloads to the GPU (None: the node's own setting)."""

    files: tuple[ManifestFile, ...]
    capabilities: tuple[str, ...] = ()
    gpu_layers: int | None = None
    context_size: int | None = None  # tokens per conversation; None: the node's own setting

    def to_json(self) -> StoredManifest:
        """The manifest as the node stores it beside the files."""
        return {
            "files": [f.to_json() for f in self.files],
            "capabilities": list(self.capabilities),
            "gpu_layers": self.gpu_layers,
            "context_size": self.context_size,
        }

    def settings(self) -> tuple[object, ...]:
        """What the balancer may change without new files."""
        return (self.capabilities, self.gpu_layers, self.context_size)

    def same_files(self, other: Manifest) -> bool:
        """Whether `other` names the same files (names, sizes, hashes): then only its settings
        differ, and the files on disk serve it as they are."""
        return [(f.name, f.size, f.sha256) for f in self.files] == [
            (f.name, f.size, f.sha256) for f in other.files
        ]


def check_model(name: object) -> str:
    """A model name from the balancer, usable as a folder name; raises ManifestError."""
    if not isinstance(name, str) or not name or len(name) > MAX_MODEL_NAME_LEN:
        raise ManifestError(f"model name {_show(name)} is not a string of at most 256 chars")
    try:
        check_model_name(name)
        folder_name(name)
    except (BadRequest, ValueError) as exc:
        raise ManifestError(f"model name {_show(name)} is not a valid model name") from exc
    return name


def folder_name(model: str) -> str:
    """A file-system-safe folder name for a model name (`org/repo:Q4` → `org--repo@Q4`).

    Raises ValueError for a name whose folder would not be one plain child of the models
    folder (empty, `.`/`..`, a separator, a control character).
    """
    name = model.replace("/", "--").replace(":", "@")
    if (
        not name
        or name in {".", ".."}
        or "\\" in name
        or "/" in name
        or _has_control(name)
        or PureWindowsPath(name).drive
    ):
        raise ValueError(f"{_show(model)} cannot be a folder name")
    return name


def parse_model_list(data: object) -> tuple[list[str], list[str]]:
    """The names in a `/v0/models` answer, and a reason for each entry that was refused.

    A list that is not a list, or too long, raises ManifestError: then the node keeps what it
    has rather than deleting models it would no longer see.
    """
    if not isinstance(data, list):
        raise ManifestError("the model list is not a JSON list")
    if len(data) > MAX_MODELS:
        raise ManifestError(f"the model list has {len(data)} entries, more than {MAX_MODELS}")
    names: list[str] = []
    refused: list[str] = []
    for item in data:
        try:
            name = check_model(item.get("id") if isinstance(item, dict) else None)
        except ManifestError as exc:
            refused.append(str(exc))
            continue
        if name not in names:
            names.append(name)
    return names, refused


def parse_manifest(data: object, folder: Path) -> Manifest:
    """Check a manifest for the model stored in `folder`; raises ManifestError saying why."""
    if not isinstance(data, dict):
        raise ManifestError("the manifest is not a JSON object")
    files = data.get("files")
    if not isinstance(files, list) or not files:
        raise ManifestError("the manifest lists no files")
    if len(files) > MAX_FILES:
        raise ManifestError(f"the manifest lists {len(files)} files, more than {MAX_FILES}")
    parsed = tuple(_file(entry, folder) for entry in files)
    names = [f.name for f in parsed]
    if len(set(names)) != len(names):
        raise ManifestError("the manifest lists a file twice")
    capabilities = data.get("capabilities") or []
    if not isinstance(capabilities, list) or not all(
        isinstance(c, str) and len(c) <= 64 for c in capabilities
    ):
        raise ManifestError("the manifest's capabilities are not a list of names")
    gpu_layers = data.get("gpu_layers")  # absent from older balancers' manifests: None
    if not is_gpu_layers(gpu_layers):
        raise ManifestError(
            f"the manifest's gpu_layers is not null or an integer from -1 to {GPU_LAYERS_MAX}: "
            f"{_show(gpu_layers)}"
        )
    context_size = data.get("context_size")  # absent from older manifests: None
    if not is_context_size(context_size):
        raise ManifestError(
            f"the manifest's context_size is not null or a number of tokens from "
            f"{CONTEXT_SIZE_MIN} to {CONTEXT_SIZE_MAX}: {_show(context_size)}"
        )
    return Manifest(parsed, tuple(capabilities[:32]), gpu_layers, context_size)


def _file(entry: object, folder: Path) -> ManifestFile:
    if not isinstance(entry, dict):
        raise ManifestError("a manifest file entry is not an object")
    name = check_file_name(entry.get("name"), folder)
    url = entry.get("url")
    if not isinstance(url, str) or len(url) > MAX_URL_LEN:
        raise ManifestError(f"the URL of {name} is missing or too long")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ManifestError(f"the URL of {name} is malformed") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname or _has_control(url):
        raise ManifestError(f"the URL of {name} is not an http(s) URL: {_show(url)}")
    size = entry.get("size")
    if size is not None and (
        isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_FILE_SIZE
    ):
        raise ManifestError(f"the size of {name} is not a byte count: {_show(size)}")
    sha256 = entry.get("sha256")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256_RE.match(sha256)):
        raise ManifestError(f"the sha256 of {name} is not 64 hex digits: {_show(sha256)}")
    return ManifestFile(name, url, size, sha256.lower() if sha256 else None)


def check_file_name(name: object, folder: Path) -> str:
    """A file name that stays inside `folder` once joined and resolved; raises ManifestError."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LEN:
        raise ManifestError(f"file name {_show(name)} is not a string of at most 512 chars")
    if "\\" in name or _has_control(name):
        raise ManifestError(f"file name {_show(name)} has a backslash or a control character")
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.anchor or windows.drive:
        raise ManifestError(f"file name {_show(name)} is an absolute path")
    parts = name.split("/")
    if any(part in {"", ".", ".."} for part in parts):
        raise ManifestError(f"file name {_show(name)} has an empty, '.' or '..' part")
    if name in RESERVED or name.endswith(".partial"):
        raise ManifestError(f"file name {_show(name)} is reserved for the node's own files")
    # The rules above should already keep it inside; resolving proves it (symlinks included).
    root = folder.resolve()
    if not (root / name).resolve().is_relative_to(root):
        raise ManifestError(f"file name {_show(name)} leads outside the model's folder")
    return name


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _show(value: object) -> str:
    """A bounded, printable rendering of a hostile value for a message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
