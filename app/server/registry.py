"""Model registration and the views of it: hub, registered list, manifests, servable models."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from app.core.catalog import Catalog, CatalogEntry
from app.core.errors import BadRequest, NotFound
from app.core.events import EventBus, ModelDeleted, ModelRegistered
from app.core.hf import HfClient, RepoFileInfo, endpoint_hosts
from app.core.hf_refs import check_filename, parse_hf_reference
from app.core.types import (
    ModelFile,
    ModelRecord,
    ModelStatus,
    NodeModelState,
    check_model_name,
    derive_status,
)
from app.db.store import Store
from app.server.http import optional_str
from app.server.hub_info import HubInfoCache

MEMORY_FACTOR = 1.5  # required memory ≈ file size × 1.5 (weights + KV cache + buffers)
_SHARD_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
_QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d(?:_K)?(?:_[A-Z0-9]+)*|BF16|F16|F32|MXFP4)(?=[-_.]|$)", re.IGNORECASE
)
_VISION_TAGS = {"image-text-to-text", "visual-question-answering"}


def detect_quantization(filename: str) -> str | None:
    """The quantization named in a GGUF file name (Q4_K_M, IQ3_XS, F16...), upper-cased."""
    stem = filename.rsplit("/", 1)[-1]
    stem = _SHARD_RE.sub(".gguf", stem)
    matches = _QUANT_RE.findall(stem[: -len(".gguf")] if stem.lower().endswith(".gguf") else stem)
    return matches[-1].upper() if matches else None


class ModelRegistry:
    """Registers models (metadata only) and answers every read of the registry."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        hf: HfClient,
        bus: EventBus,
        hub_info: HubInfoCache,
        node_states: Callable[[], dict[str, list[NodeModelState]]],
        live_states: Callable[[], dict[str, list[NodeModelState]]] | None = None,
        external: Callable[[], dict[str, list[str]]] | None = None,
        on_manifest_change: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.hf = hf
        self.bus = bus
        self.hub_info = hub_info
        # Every node's reports, for the admin's views (/v0); /v1 clients learn only what live
        # nodes report, and models outside the registry only from external nodes.
        self.node_states = node_states
        self.live_states = live_states or node_states
        self.external = external or (lambda: {})
        self.records: dict[str, ModelRecord] = {}  # every registration, kept in memory
        # Told the manifest version whenever the set of registered models changes.
        self.on_manifest_change = on_manifest_change or (lambda _version: None)

    async def load(self) -> None:
        """Read the registrations once; later reads come from memory."""
        self.records = {r.name: r for r in await self.store.list_models()}
        self._changed()

    @property
    def manifest_version(self) -> str:
        """Changes whenever the set of registered models changes."""
        names = "\n".join(sorted(self.records))
        return hashlib.sha1(names.encode()).hexdigest()[:12]

    def _changed(self) -> None:
        self.on_manifest_change(self.manifest_version)

    # -- writes -----------------------------------------------------------------
    async def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """Store a registration from `{model_id}` or `{repo, filename?, display_name?}`."""
        model_id = optional_str(body, "model_id")
        repo = optional_str(body, "repo")
        if (model_id is None) == (repo is None):
            raise BadRequest(
                "give either 'model_id' (a catalog id) or 'repo' (a Hugging Face repo or URL)"
            )
        warnings: list[str] = []
        if model_id is not None:
            record = await self._from_catalog(model_id.strip())
        else:
            assert repo is not None
            record = await self._from_repo(
                repo, optional_str(body, "filename"), optional_str(body, "display_name"), warnings
            )
        stored = await self.store.add_model(record)
        self.records[stored.name] = stored
        self._changed()
        self.bus.publish(ModelRegistered(stored.name))
        return {
            "name": stored.name,
            "status": "registered",
            "filename": stored.filename,
            "size_bytes": stored.size_bytes,
            "required_memory_bytes": stored.required_memory_bytes,
            "warnings": warnings,
        }

    async def delete(self, name: str) -> None:
        """Remove a registration; nodes delete the files at their next sync."""
        check_model_name(name)
        if not await self.store.delete_model(name):
            raise NotFound(f"model '{name}' is not registered", code="model_not_found")
        self.records.pop(name, None)
        self._changed()
        self.bus.publish(ModelDeleted(name))

    async def _from_catalog(self, model_id: str) -> ModelRecord:
        base_id, _, quant = model_id.partition(":")
        entry = self.catalog.get(base_id.lower())
        if entry is None:
            raise BadRequest(
                f"'{base_id}' is not in the catalog; register other models by 'repo'",
                param="model_id",
                code="model_not_found",
            )
        if not quant or (entry.quantization and quant.upper() == entry.quantization.upper()):
            return _catalog_record(entry)
        filename = entry.filename_for(quant)
        listing = await self.hf.repo_listing(entry.repo)
        found = {f.name: f for f in listing.files}
        if filename not in found:
            offered = sorted(
                q
                for f in listing.files
                if f.name.lower().endswith(".gguf")
                if (q := detect_quantization(f.name))
            )
            raise BadRequest(
                f"'{entry.repo}' has no {quant.upper()} file ({filename}); "
                f"quantizations there: {', '.join(offered) or 'none'}",
                param="model_id",
                code="quantization_not_found",
            )
        file = found[filename]
        memory = int(entry.required_memory_bytes * file.size / entry.size_bytes)
        return ModelRecord(
            name=f"{entry.id}:{quant.upper()}",
            repo=entry.repo,
            filename=filename,
            source="catalog",
            display_name=f"{entry.name} ({quant.upper()})",
            size_bytes=file.size,
            required_memory_bytes=memory,
            catalog_id=entry.id,
            quantization=quant.upper(),
            sha256=file.sha256,
            context_length=entry.context_length,
            capabilities=entry.capabilities,
            files=(ModelFile(file.name, file.size, file.sha256),),
        )

    async def _from_repo(
        self, text: str, filename: str | None, display_name: str | None, warnings: list[str]
    ) -> ModelRecord:
        ref = parse_hf_reference(text, endpoint_hosts())
        if filename is not None:
            filename = check_filename(filename.strip())
        if filename and ref.filename and filename != ref.filename:
            raise BadRequest("the URL names one file and 'filename' another", param="filename")
        filename = filename or ref.filename
        if filename and not filename.lower().endswith(".gguf"):
            raise BadRequest(f"'{filename}' is not a GGUF file", param="filename")
        listing = await self.hf.repo_listing(ref.repo_id, ref.revision)
        ggufs = [f for f in listing.files if f.name.lower().endswith(".gguf")]
        chosen = _choose_gguf(ref.repo_id, ggufs, filename)
        files = _with_shards(chosen, ggufs)
        size = sum(f.size for f in files)
        entry = self._catalog_match(ref.repo_id, chosen.name)
        if entry is not None:
            return _catalog_record(entry)
        quant = detect_quantization(chosen.name)
        warnings.append("required memory is an estimate (1.5 × the file size)")
        capabilities: tuple[str, ...] = ("TextGeneration",)
        lowered = ref.repo_id.lower()
        if "embed" in lowered or "bge-" in lowered or "e5-" in lowered:
            capabilities = ("Embedding",)
        return ModelRecord(
            name=ref.repo_id.lower(),
            repo=ref.repo_id,
            filename=chosen.name,
            source="url",
            display_name=(display_name or "").strip() or ref.repo_id.split("/", 1)[1],
            size_bytes=size,
            required_memory_bytes=int(size * MEMORY_FACTOR),
            revision=ref.revision,
            quantization=quant,
            sha256=chosen.sha256,
            capabilities=capabilities,
            files=tuple(ModelFile(f.name, f.size, f.sha256) for f in files),
        )

    def _catalog_match(self, repo_id: str, filename: str) -> CatalogEntry | None:
        for entry in self.catalog.entries:
            if entry.repo.lower() == repo_id.lower() and entry.recommended_filename == filename:
                return entry
        return None

    # -- reads ------------------------------------------------------------------
    async def hub(self) -> list[dict[str, Any]]:
        """The catalog in its order, then other registered models, each with its status."""
        records = dict(self.records)
        states = self.node_states()
        self.hub_info.request_refresh([e.repo for e in self.catalog.entries])
        out: list[dict[str, Any]] = []
        for entry in self.catalog.entries:
            item = entry.as_json()
            record = records.pop(entry.id, None)
            _add_status(item, record, states.get(entry.id, []))
            self._add_hf_info(item, entry.repo)
            out.append(item)
        for record in records.values():
            item = record_json(record, self.catalog.get(record.catalog_id or ""))
            _add_status(item, record, states.get(record.name, []))
            self._add_hf_info(item, record.repo)
            out.append(item)
        return out

    def _add_hf_info(self, item: dict[str, Any], repo: str) -> None:
        info = self.hub_info.get(repo)
        if info is not None:
            item["hf_info"] = info

    async def registered(self) -> list[dict[str, Any]]:
        """Registered models with per-node state and progress (/v0/models)."""
        states = self.node_states()
        out = []
        for record in self._ordered():
            item = record_json(record, self.catalog.get(record.catalog_id or ""))
            node_states = states.get(record.name, [])
            _add_status(item, record, node_states)
            item["nodes"] = [
                {
                    "node_id": s.node_id,
                    "state": s.state,
                    "downloaded_bytes": s.downloaded_bytes,
                    "total_bytes": s.total_bytes,
                    "error": s.error,
                    "node_online": s.node_online,
                    "path": s.path,
                }
                for s in node_states
            ]
            out.append(item)
        return out

    async def manifest(self, name: str) -> dict[str, Any]:
        """What a node must fetch for a model: files with URL, size and sha256 when known."""
        record = await self.require(name)
        files = record.files or (ModelFile(record.filename, record.size_bytes, record.sha256),)
        return {
            "name": record.name,
            "format": record.format,
            "quantization": record.quantization,
            "repo": record.repo,
            "revision": record.revision,
            "capabilities": list(record.capabilities),
            "files": [
                {
                    "name": f.name,
                    "url": self.hf.file_url(record.repo, f.name, record.revision),
                    "size": f.size,
                    "sha256": f.sha256,
                }
                for f in files
            ],
        }

    async def require(self, name: str) -> ModelRecord:
        """The registration, or 404."""
        check_model_name(name)
        record = self.records.get(name)
        if record is None:
            raise NotFound(f"model '{name}' is not registered", code="model_not_found")
        return record

    async def servable(self) -> list[dict[str, Any]]:
        """OpenAI model objects for what some live node can serve now (/v1/models)."""
        states = self.live_states()
        out = []
        for record in self._ordered():
            status = derive_status(states.get(record.name, []))
            if status.lifecycle_status != "ready":
                continue
            out.append(openai_model(record, status))
        return out + self._external_models()

    def _external_models(self) -> list[dict[str, Any]]:
        """Models that live external nodes serve as they are (not registered here); an
        ordinary node's claims about unregistered models never reach /v1."""
        out = []
        for name, ready in self.external().items():
            if name in self.records:
                continue
            if ready:
                out.append(
                    {
                        "id": name,
                        "object": "model",
                        "created": 0,
                        "owned_by": "external",
                        "ready": True,
                        "lifecycle_status": "ready",
                        "ready_nodes": ready,
                    }
                )
        return out

    def _ordered(self) -> list[ModelRecord]:
        return sorted(self.records.values(), key=lambda r: (r.created_at, r.name))

    def status_of(self, name: str) -> ModelStatus:
        """A registered model's status across live nodes (what /v1 errors may tell)."""
        return derive_status(self.live_states().get(name, []))


def openai_model(record: ModelRecord, status: ModelStatus) -> dict[str, Any]:
    """An OpenAI `model` object with our extension fields."""
    return {
        "id": record.name,
        "object": "model",
        "created": int(record.created_at),
        "owned_by": record.repo.split("/", 1)[0],
        "ready": status.lifecycle_status == "ready",
        "lifecycle_status": status.lifecycle_status,
        "size_bytes": record.size_bytes,
        "required_memory_bytes": record.required_memory_bytes,
        "context_length": record.context_length,
        "capabilities": list(record.capabilities),
        "ready_nodes": status.ready_nodes,
    }


def record_json(record: ModelRecord, entry: CatalogEntry | None) -> dict[str, Any]:
    """A registered model in the hub's shape (catalog fields, filled from the record)."""
    base = (
        entry.as_json()
        if entry
        else {
            "description": "",
            "tags": [],
            "parameter_count": None,
            "engine": "llama_cpp",
            "platforms": [],
        }
    )
    base.update(
        id=record.name,
        name=record.display_name,
        repo=record.repo,
        recommended_filename=record.filename,
        size_bytes=record.size_bytes,
        required_memory_bytes=record.required_memory_bytes,
        context_length=record.context_length,
        capabilities=list(record.capabilities),
        quantization=record.quantization,
        format=record.format,
        source=record.source,
        created_at=record.created_at,
    )
    return base


def _add_status(
    item: dict[str, Any], record: ModelRecord | None, states: list[NodeModelState]
) -> None:
    if record is None:
        item.update(status="available", download_progress=None, ready_nodes=[])
        return
    status = derive_status(states)
    item.update(
        status=status.status,
        lifecycle_status=status.lifecycle_status,
        download_progress=status.download_progress,
        ready_nodes=status.ready_nodes,
        registered_at=record.created_at,
    )
    if status.error:
        item["error"] = status.error


def _catalog_record(entry: CatalogEntry) -> ModelRecord:
    return ModelRecord(
        name=entry.id,
        repo=entry.repo,
        filename=entry.recommended_filename,
        source="catalog",
        display_name=entry.name,
        size_bytes=entry.size_bytes,
        required_memory_bytes=entry.required_memory_bytes,
        catalog_id=entry.id,
        quantization=entry.quantization,
        context_length=entry.context_length,
        capabilities=entry.capabilities,
        files=(ModelFile(entry.recommended_filename, entry.size_bytes),),
    )


def _choose_gguf(repo_id: str, ggufs: list[RepoFileInfo], filename: str | None) -> RepoFileInfo:
    if filename is not None:
        for f in ggufs:
            if f.name == filename:
                return f
        names = ", ".join(sorted(f.name for f in ggufs)[:20]) or "none"
        raise BadRequest(
            f"'{repo_id}' has no file '{filename}'; its GGUF files: {names}",
            param="filename",
            code="file_not_found",
        )
    # A model is one file or the first shard of a split; projectors are not models.
    candidates = [
        f
        for f in ggufs
        if "mmproj" not in f.name.lower()
        and (not (m := _SHARD_RE.search(f.name)) or int(m.group(1)) == 1)
    ]
    if not candidates:
        raise BadRequest(
            f"'{repo_id}' has no GGUF model file; llmlb runs GGUF models (llama.cpp)",
            param="repo",
            code="no_gguf",
        )
    if len(candidates) > 1:
        names = ", ".join(sorted(f.name for f in candidates)[:20])
        raise BadRequest(
            f"'{repo_id}' has {len(candidates)} GGUF files; pick one with 'filename': {names}",
            param="filename",
            code="filename_required",
        )
    return candidates[0]


def _with_shards(chosen: RepoFileInfo, ggufs: list[RepoFileInfo]) -> list[RepoFileInfo]:
    match = _SHARD_RE.search(chosen.name)
    if not match:
        return [chosen]
    prefix = chosen.name[: match.start()]
    total = match.group(2)
    shards = [
        f for f in ggufs if f.name.startswith(prefix) and f.name.endswith(f"-of-{total}.gguf")
    ]
    return sorted(shards, key=lambda f: f.name)
