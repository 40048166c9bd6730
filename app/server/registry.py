"""Model registration and the views of it: hub, registered list, manifests, servable models."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from app.core.catalog import Catalog, CatalogEntry
from app.core.errors import BadRequest, NotFound
from app.core.events import EventBus, ModelDeleted, ModelRegistered, ModelUpdated
from app.core.hf import HfClient
from app.core.node_protocol import ManifestJson
from app.core.types import (
    CONTEXT_SIZE_MAX,
    CONTEXT_SIZE_MIN,
    HubStatus,
    Lifecycle,
    ModelFile,
    ModelRecord,
    ModelStatus,
    NodeModelState,
    check_model_name,
    derive_status,
    is_context_size,
    is_gpu_layers,
)
from app.core.wire import (
    CatalogJson,
    HubEntry,
    NodeModelJson,
    OpenAIModel,
    RegisterAnswer,
    RegisteredModel,
)
from app.db.store import Store
from app.server.hub_info import HubInfoCache
from app.server.registration import resolve


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
        """Changes whenever the set of registered models, or a model's settings, changes."""
        lines = "\n".join(
            f"{n}\t{self.records[n].gpu_layers}\t{self.records[n].context_size}"
            for n in sorted(self.records)
        )
        return hashlib.sha1(lines.encode()).hexdigest()[:12]

    def _changed(self) -> None:
        self.on_manifest_change(self.manifest_version)

    # -- writes -----------------------------------------------------------------
    async def register(self, body: Mapping[str, object]) -> RegisterAnswer:
        """Store a registration from `{model_id}` or `{repo, filename?, display_name?}`."""
        warnings: list[str] = []
        record = await resolve(body, self.catalog, self.hf, warnings)
        stored = await self.store.add_model(record)
        self.records[stored.name] = stored
        self._changed()
        self.bus.publish(ModelRegistered(stored.name))
        return {
            "name": stored.name,
            "status": Lifecycle.REGISTERED,
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

    async def update(self, name: str, body: Mapping[str, object]) -> RegisteredModel:
        """Change a registered model's settings (`{"gpu_layers": N|null, "context_size":
        N|null}`); nodes take the new values at their next sync, and a loaded model reloads
        with them on its next use."""
        await self.require(name)
        unknown = sorted(set(body) - {"gpu_layers", "context_size"})
        if unknown:
            raise BadRequest(f"unknown field '{unknown[0]}'", param=unknown[0])
        if not body:
            raise BadRequest(
                "nothing to change: give 'gpu_layers' or 'context_size'", param="gpu_layers"
            )
        if "gpu_layers" in body and not is_gpu_layers(body["gpu_layers"]):
            raise BadRequest(
                "'gpu_layers' must be null (the node's own setting), -1 (all layers), 0 (CPU "
                "only) or a number of layers up to 1000",
                param="gpu_layers",
                code="invalid_gpu_layers",
            )
        if "context_size" in body and not is_context_size(body["context_size"]):
            raise BadRequest(
                "'context_size' must be null (the node's own setting) or a number of tokens "
                f"from {CONTEXT_SIZE_MIN} to {CONTEXT_SIZE_MAX}",
                param="context_size",
                code="invalid_context_size",
            )
        values = {k: v for k, v in body.items() if v is None or isinstance(v, int)}
        stored = await self.store.set_model_settings(name, values)
        if stored is None:  # deleted meanwhile
            raise NotFound(f"model '{name}' is not registered", code="model_not_found")
        self.records[name] = stored
        self._changed()
        self.bus.publish(ModelUpdated(name))
        return self.entry(stored)

    # -- reads ------------------------------------------------------------------
    async def hub(self) -> list[HubEntry]:
        """The catalog in its order, then other registered models, each with its status."""
        records = dict(self.records)
        states = self.node_states()
        self.hub_info.request_refresh([e.repo for e in self.catalog.entries])
        out: list[HubEntry] = []
        for entry in self.catalog.entries:
            record = records.pop(entry.id, None)
            item = hub_entry(entry.as_json(), record, states.get(entry.id, []))
            self._add_hf_info(item, entry.repo)
            out.append(item)
        for record in records.values():
            item = self._record_entry(record, states.get(record.name, []))
            self._add_hf_info(item, record.repo)
            out.append(item)
        return out

    def _add_hf_info(self, item: HubEntry, repo: str) -> None:
        info = self.hub_info.get(repo)
        if info is not None:
            item["hf_info"] = info

    def _record_entry(self, record: ModelRecord, states: list[NodeModelState]) -> HubEntry:
        """A registered model's entry: its catalog entry's fields filled from the record."""
        entry = self.catalog.get(record.catalog_id or "")
        item = hub_entry(record_json(record, entry), record, states)
        item["source"] = record.source
        item["created_at"] = record.created_at
        return item

    async def registered(self) -> list[RegisteredModel]:
        """Registered models with per-node state and progress (/v0/models)."""
        states = self.node_states()
        return [self.entry(record, states) for record in self._ordered()]

    def entry(
        self, record: ModelRecord, states: dict[str, list[NodeModelState]] | None = None
    ) -> RegisteredModel:
        """One registered model with every node's state for it (`states`: every node's
        reports, when the caller already has them)."""
        node_states = (self.node_states() if states is None else states).get(record.name, [])
        nodes: list[NodeModelJson] = [
            {
                "node_id": s.node_id,
                "state": s.state,
                "downloaded_bytes": s.downloaded_bytes,
                "total_bytes": s.total_bytes,
                "error": s.error,
                "node_online": s.node_online,
                "path": s.path,
                "bytes_per_second": s.bytes_per_second,
                "retry_at": s.retry_at,
            }
            for s in node_states
        ]
        return {
            **self._record_entry(record, node_states),
            "nodes": nodes,
            "gpu_layers": record.gpu_layers,
            "context_size": record.context_size,
        }

    async def manifest(self, name: str) -> ManifestJson:
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
            "gpu_layers": record.gpu_layers,
            "context_size": record.context_size,
        }

    async def require(self, name: str) -> ModelRecord:
        """The registration, or 404."""
        check_model_name(name)
        record = self.records.get(name)
        if record is None:
            raise NotFound(f"model '{name}' is not registered", code="model_not_found")
        return record

    async def servable(self) -> list[OpenAIModel]:
        """OpenAI model objects for what some live node can serve now (/v1/models)."""
        states = self.live_states()
        out: list[OpenAIModel] = []
        for record in self._ordered():
            status = derive_status(states.get(record.name, []))
            if status.lifecycle_status != Lifecycle.READY:
                continue
            out.append(openai_model(record, status))
        return out + self._external_models()

    def _external_models(self) -> list[OpenAIModel]:
        """Models that live external nodes serve as they are (not registered here); an
        ordinary node's claims about unregistered models never reach /v1."""
        out: list[OpenAIModel] = []
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
                        "lifecycle_status": Lifecycle.READY,
                        "ready_nodes": ready,
                    }
                )
        return out

    def _ordered(self) -> list[ModelRecord]:
        return sorted(self.records.values(), key=lambda r: (r.created_at, r.name))

    def status_of(self, name: str) -> ModelStatus:
        """A registered model's status across live nodes (what /v1 errors may tell)."""
        return derive_status(self.live_states().get(name, []))


def openai_model(record: ModelRecord, status: ModelStatus) -> OpenAIModel:
    """An OpenAI `model` object with our extension fields."""
    return {
        "id": record.name,
        "object": "model",
        "created": int(record.created_at),
        "owned_by": record.repo.split("/", 1)[0],
        "ready": status.lifecycle_status == Lifecycle.READY,
        "lifecycle_status": status.lifecycle_status,
        "size_bytes": record.size_bytes,
        "required_memory_bytes": record.required_memory_bytes,
        # What a conversation may hold on every node that has it, else what it was trained for.
        "context_length": status.context_length or record.context_length,
        "capabilities": list(record.capabilities),
        "ready_nodes": status.ready_nodes,
    }


def record_json(record: ModelRecord, entry: CatalogEntry | None) -> CatalogJson:
    """A registered model in the catalog's shape (its catalog entry's fields, if any, filled
    from the record)."""
    return {
        "id": record.name,
        "name": record.display_name,
        "description": entry.description if entry else "",
        "repo": record.repo,
        "recommended_filename": record.filename,
        "size_bytes": record.size_bytes,
        "required_memory_bytes": record.required_memory_bytes,
        "context_length": record.context_length,
        "tags": list(entry.tags) if entry else [],
        "capabilities": list(record.capabilities),
        "quantization": record.quantization,
        "parameter_count": entry.parameter_count if entry else None,
        "format": record.format,
        "engine": entry.engine if entry else "llama_cpp",
        "platforms": list(entry.platforms) if entry else [],
    }


def hub_entry(
    fields: CatalogJson, record: ModelRecord | None, states: list[NodeModelState]
) -> HubEntry:
    """Catalog fields with the model's status: `available` when not registered, else folded
    from every node's report."""
    status = derive_status(states) if record is not None else ModelStatus(HubStatus.AVAILABLE)
    item: HubEntry = {
        "id": fields["id"],
        "name": fields["name"],
        "description": fields["description"],
        "repo": fields["repo"],
        "recommended_filename": fields["recommended_filename"],
        "size_bytes": fields["size_bytes"],
        "required_memory_bytes": fields["required_memory_bytes"],
        "context_length": fields["context_length"],
        "tags": fields["tags"],
        "capabilities": fields["capabilities"],
        "quantization": fields["quantization"],
        "parameter_count": fields["parameter_count"],
        "format": fields["format"],
        "engine": fields["engine"],
        "platforms": fields["platforms"],
        "status": status.status,
        "download_progress": status.download_progress,
        "ready_nodes": status.ready_nodes,
    }
    if record is not None:
        item["lifecycle_status"] = status.lifecycle_status
        item["registered_at"] = record.created_at
    if status.error:
        item["error"] = status.error
    if status.context_length:
        item["effective_context_length"] = status.context_length
    return item
