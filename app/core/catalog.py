"""The curated model catalog (FR-1): loaded once, validated field by field, fixed order."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import BadRequest, StartupError
from app.core.paths import resource_root
from app.core.wire import CatalogJson

CAPABILITIES = {"TextGeneration", "Embedding", "Vision", "Audio", "Reranking"}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_QUANT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class CatalogEntry:
    """One curated model: where it lives on Hugging Face and what it needs."""

    id: str
    name: str
    description: str
    repo: str
    recommended_filename: str
    size_bytes: int
    required_memory_bytes: int
    context_length: int
    tags: tuple[str, ...]
    capabilities: tuple[str, ...]
    quantization: str | None
    parameter_count: str
    format: str
    engine: str
    platforms: tuple[str, ...]
    # The image projector (llama.cpp's mmproj) a Vision model downloads beside its weights.
    mmproj_filename: str | None = None
    mmproj_size_bytes: int | None = None

    def as_json(self) -> CatalogJson:
        """The entry as the catalog file spells it."""
        entry: CatalogJson = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "repo": self.repo,
            "recommended_filename": self.recommended_filename,
            "size_bytes": self.size_bytes,
            "required_memory_bytes": self.required_memory_bytes,
            "context_length": self.context_length,
            "tags": list(self.tags),
            "capabilities": list(self.capabilities),
            "quantization": self.quantization,
            "parameter_count": self.parameter_count,
            "format": self.format,
            "engine": self.engine,
            "platforms": list(self.platforms),
        }
        if self.mmproj_filename is not None and self.mmproj_size_bytes is not None:
            entry["mmproj_filename"] = self.mmproj_filename
            entry["mmproj_size_bytes"] = self.mmproj_size_bytes
        return entry

    def filename_for(self, quant: str) -> str:
        """The file name of another quantization of this model (same naming as the default)."""
        if not _QUANT_RE.match(quant):
            raise BadRequest(f"'{quant}' is not a quantization name", param="model_id")
        current = self.quantization
        if not current:
            raise BadRequest(f"'{self.id}' has no quantization variants", param="model_id")
        pattern = re.compile(re.escape(current), re.IGNORECASE)
        match = pattern.search(self.recommended_filename)
        if match is None:
            raise BadRequest(f"'{self.id}' has no quantization variants", param="model_id")
        new = quant.lower() if match.group(0).islower() else quant.upper()
        start, end = match.span()
        return self.recommended_filename[:start] + new + self.recommended_filename[end:]


_OPTIONAL: dict[str, type] = {"mmproj_filename": str, "mmproj_size_bytes": int}
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "name": str,
    "description": str,
    "repo": str,
    "recommended_filename": str,
    "size_bytes": int,
    "required_memory_bytes": int,
    "context_length": int,
    "tags": list,
    "capabilities": list,
    "quantization": (str, type(None)),
    "parameter_count": str,
    "format": str,
    "engine": str,
    "platforms": list,
}


class Catalog:
    """The entries in the file's order, addressable by id."""

    def __init__(self, entries: list[CatalogEntry]) -> None:
        self.entries = entries
        self._by_id = {e.id: e for e in entries}

    def get(self, model_id: str) -> CatalogEntry | None:
        """The entry with this id, if any."""
        return self._by_id.get(model_id)

    def __len__(self) -> int:
        return len(self.entries)


def default_catalog_path() -> Path:
    """The catalog shipped with the app."""
    return resource_root() / "catalog" / "supported_models.json"


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate the catalog; a broken entry names the entry and the field."""
    path = path or default_catalog_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StartupError(f"catalog not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise StartupError(f"catalog {path} is not readable JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise StartupError(f"catalog {path} must be a JSON array of models")
    entries: list[CatalogEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        entry = _validate(item, index, path)
        if entry.id in seen:
            raise StartupError(f"catalog {path}: entry #{index} repeats the id '{entry.id}'")
        seen.add(entry.id)
        entries.append(entry)
    return Catalog(entries)


def _validate(item: Any, index: int, path: Path) -> CatalogEntry:
    label = f"entry #{index}"
    if not isinstance(item, dict):
        raise StartupError(f"catalog {path}: {label} is not an object")
    if isinstance(item.get("id"), str):
        label = f"entry '{item['id']}' (#{index})"

    def fail(field: str, why: str) -> StartupError:
        return StartupError(f"catalog {path}: {label}: field '{field}' {why}")

    for field, kind in _FIELDS.items():
        if field not in item:
            raise fail(field, "is missing")
        value = item[field]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise fail(field, f"has the wrong type ({type(value).__name__})")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise fail(field, "must be a list of strings")
    for field, kind in _OPTIONAL.items():
        value = item.get(field)
        if field in item and (isinstance(value, bool) or not isinstance(value, kind)):
            raise fail(field, f"has the wrong type ({type(value).__name__})")
    if ("mmproj_filename" in item) != ("mmproj_size_bytes" in item):
        raise fail("mmproj_filename", "and 'mmproj_size_bytes' come together")
    if "mmproj_filename" in item and (
        not item["mmproj_filename"].endswith(".gguf") or item["mmproj_size_bytes"] <= 0
    ):
        raise fail("mmproj_filename", "must name a .gguf file of a positive size")
    if "mmproj_filename" in item and "Vision" not in item["capabilities"]:
        raise fail("capabilities", "must include 'Vision' for an entry with a projector")
    unknown = set(item) - set(_FIELDS) - set(_OPTIONAL)
    if unknown:
        raise fail(sorted(unknown)[0], "is not a catalog field")
    if not _ID_RE.match(item["id"]):
        raise fail("id", "must be lower-case letters, digits, '.', '_' or '-'")
    for field in ("size_bytes", "required_memory_bytes", "context_length"):
        if item[field] <= 0:
            raise fail(field, "must be a positive integer")
    if item["format"] != "gguf":
        raise fail("format", "must be 'gguf' (the only format our llama.cpp engine runs)")
    if not item["recommended_filename"].endswith(".gguf"):
        raise fail("recommended_filename", "must name a .gguf file")
    if "/" not in item["repo"] or ".." in item["repo"]:
        raise fail("repo", "must be a Hugging Face repo id 'org/name'")
    bad = set(item["capabilities"]) - CAPABILITIES
    if bad:
        raise fail("capabilities", f"has unknown values {sorted(bad)}")
    return CatalogEntry(
        **{
            **item,
            "tags": tuple(item["tags"]),
            "capabilities": tuple(item["capabilities"]),
            "platforms": tuple(item["platforms"]),
        }
    )
