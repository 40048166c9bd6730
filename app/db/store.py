"""Repositories over the tables: async methods that hand back plain domain records."""

from __future__ import annotations

import hmac
import json
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import peewee

from app.core.errors import Conflict
from app.core.types import ModelFile, ModelRecord, NodeModelState
from app.core.wire import ApiKey, NewApiKey
from app.db.database import Database
from app.db.hashing import hash_secret
from app.db.rows import NodeModelRow, NodeRow, StoredNode


class Store:
    """The one door to the database for the balancer."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path)
        self.t = self.db.tables

    async def open(self) -> None:
        """Open the file and migrate it."""
        await self.db.open()

    async def close(self) -> None:
        """Close the file."""
        await self.db.close()

    # -- models -----------------------------------------------------------------
    async def add_model(self, record: ModelRecord) -> ModelRecord:
        """Store a registration; a second one under the same name raises Conflict."""

        def insert() -> ModelRecord:
            stored = ModelRecord(**{**record.__dict__, "created_at": time.time()})
            row = self._model_row(stored)
            try:
                self.t.Model.insert(**row).execute()
            except peewee.IntegrityError as exc:
                raise Conflict(
                    f"model '{record.name}' is already registered", code="model_exists"
                ) from exc
            return stored

        return await self.db.transaction(insert)

    async def get_model(self, name: str) -> ModelRecord | None:
        """The registration with this name, if any."""

        def get() -> ModelRecord | None:
            row = self.t.Model.get_or_none(self.t.Model.name == name)
            return None if row is None else self._model_record(row)

        return await self.db.run(get)

    async def list_models(self) -> list[ModelRecord]:
        """Every registration, oldest first."""

        def select() -> list[ModelRecord]:
            query = self.t.Model.select().order_by(self.t.Model.created_at, self.t.Model.name)
            return [self._model_record(row) for row in query]

        return await self.db.run(select)

    async def delete_model(self, name: str) -> bool:
        """Remove a registration (and every node's state for it); False when unknown."""

        def delete() -> bool:
            self.t.NodeModel.delete().where(self.t.NodeModel.model == name).execute()
            return bool(self.t.Model.delete().where(self.t.Model.name == name).execute())

        return await self.db.transaction(delete)

    async def set_gpu_layers(self, name: str, gpu_layers: int | None) -> ModelRecord | None:
        """Set how many layers the model offloads (None: each node's own setting); the
        updated registration, or None when no model has that name."""
        return await self.set_model_settings(name, {"gpu_layers": gpu_layers})

    async def set_model_settings(
        self, name: str, values: dict[str, int | None]
    ) -> ModelRecord | None:
        """Set a model's per-model settings (`gpu_layers`, `context_size`; None: each node's
        own); the updated registration, or None when no model has that name."""

        def update() -> ModelRecord | None:
            model = self.t.Model
            if not model.update(**values).where(model.name == name).execute():
                return None
            return self._model_record(model.get(model.name == name))

        return await self.db.transaction(update)

    @staticmethod
    def _model_row(record: ModelRecord) -> dict[str, object]:
        row = dict(record.__dict__)
        row["capabilities"] = json.dumps(list(record.capabilities))
        row["files"] = json.dumps([f.__dict__ for f in record.files])
        return row

    @staticmethod
    def _model_record(row: Any) -> ModelRecord:
        return ModelRecord(
            name=row.name,
            repo=row.repo,
            filename=row.filename,
            source=row.source,
            display_name=row.display_name,
            size_bytes=row.size_bytes,
            required_memory_bytes=row.required_memory_bytes,
            catalog_id=row.catalog_id,
            revision=row.revision,
            quantization=row.quantization,
            sha256=row.sha256,
            context_length=row.context_length,
            capabilities=tuple(json.loads(row.capabilities)),
            format=row.format,
            files=tuple(ModelFile(**f) for f in json.loads(row.files)),
            created_at=row.created_at,
            gpu_layers=row.gpu_layers,
            context_size=row.context_size,
        )

    # -- API keys ---------------------------------------------------------------
    async def create_api_key(self, name: str) -> NewApiKey:
        """Make a key; the plain key is in the answer this once and stored only hashed."""
        key = "sk-llmlb-" + secrets.token_urlsafe(32)
        key_id = uuid.uuid4().hex[:12]

        def insert() -> NewApiKey:
            now = time.time()
            self.t.ApiKey.insert(
                id=key_id, name=name, key_hash=hash_secret(key), prefix=key[:13], created_at=now
            ).execute()
            return {"id": key_id, "name": name, "key": key, "prefix": key[:13], "created_at": now}

        return await self.db.run(insert)

    async def list_api_keys(self) -> list[ApiKey]:
        """Keys without their secret."""

        def select() -> list[ApiKey]:
            query = self.t.ApiKey.select().order_by(self.t.ApiKey.created_at)
            return [
                {
                    "id": r.id,
                    "name": r.name,
                    "prefix": r.prefix,
                    "created_at": r.created_at,
                    "last_used_at": r.last_used_at,
                }
                for r in query
            ]

        return await self.db.run(select)

    async def delete_api_key(self, key_id: str) -> bool:
        """Revoke a key; False when unknown."""

        def delete() -> bool:
            return bool(self.t.ApiKey.delete().where(self.t.ApiKey.id == key_id).execute())

        return await self.db.run(delete)

    async def api_key_hashes(self) -> dict[str, str]:
        """The stored hashes with their key ids, for the auth layer's in-memory check."""

        def select() -> dict[str, str]:
            query = self.t.ApiKey.select(self.t.ApiKey.id, self.t.ApiKey.key_hash)
            return {r.key_hash: r.id for r in query}

        return await self.db.run(select)

    async def touch_api_key(self, key_id: str, at: float) -> None:
        """Record that a key was used at `at` (the auth layer calls this at most once a minute)."""

        def update() -> None:
            t = self.t.ApiKey
            t.update(last_used_at=at).where(t.id == key_id).execute()

        await self.db.run(update)


def matching_key(candidate: str, hashes: dict[str, str]) -> str | None:
    """The id of the stored key `candidate` is, if any (compared in constant time against all)."""
    digest = hash_secret(candidate)
    found: str | None = None
    for stored, key_id in hashes.items():
        if hmac.compare_digest(digest, stored):
            found = key_id
    return found


class NodeStore:
    """Persistence of nodes and of what each reported about its models."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        self.t = store.t

    async def list_nodes(self) -> list[StoredNode]:
        """Every node row, with `models`: its per-model states."""

        def select() -> list[StoredNode]:
            nodes = {r.id: _stored_node(r) for r in self.t.Node.select()}
            for row in self.t.NodeModel.select():
                node = nodes.get(row.node_id)
                if node is not None:
                    node["models"].append(_node_model_row(row))
            return list(nodes.values())

        return await self.db.run(select)

    async def save_node(self, row: NodeRow) -> None:
        """Insert or update a node row."""

        def upsert() -> None:
            self.t.Node.insert(**row).on_conflict_replace().execute()

        await self.db.run(upsert)

    async def delete_node(self, node_id: str) -> None:
        """Forget a node and its model states."""

        def delete() -> None:
            self.t.NodeModel.delete().where(self.t.NodeModel.node == node_id).execute()
            self.t.Node.delete().where(self.t.Node.id == node_id).execute()

        await self.db.transaction(delete)

    async def save_node_models(self, node_id: str, states: list[NodeModelState]) -> None:
        """Replace what a node reported about its models (only registered models are kept)."""

        def replace() -> None:
            nm = self.t.NodeModel
            nm.delete().where(nm.node == node_id).execute()
            known = {r.name for r in self.t.Model.select(self.t.Model.name)}
            rows = [
                {
                    "node": node_id,
                    "model": s.model,
                    "state": s.state,
                    "downloaded_bytes": s.downloaded_bytes,
                    "total_bytes": s.total_bytes,
                    "error": s.error,
                    "updated_at": time.time(),
                }
                for s in states
                if s.model in known
            ]
            if rows:
                nm.insert_many(rows).execute()

        await self.db.transaction(replace)

    async def get_setting(self, key: str) -> str | None:
        """A stored setting's raw value."""

        def get() -> str | None:
            row = self.t.Setting.get_or_none(self.t.Setting.key == key)
            return None if row is None else str(row.value)

        return await self.db.run(get)

    async def set_setting(self, key: str, value: str) -> None:
        """Store a setting."""

        def put() -> None:
            self.t.Setting.insert(key=key, value=value).on_conflict_replace().execute()

        await self.db.run(put)


def _stored_node(r: Any) -> StoredNode:
    """A `nodes` row (a peewee model) as the balancer reads it back."""
    return {
        "id": r.id,
        "name": r.name,
        "url": r.url,
        "kind": r.kind,
        "status": r.status,
        "token_hash": r.token_hash,
        "api_key": r.api_key,
        "runtime_version": r.runtime_version,
        "info": r.info,
        "tags": r.tags,
        "notes": r.notes,
        "created_at": r.created_at,
        "last_seen": r.last_seen,
        "models": [],
    }


def _node_model_row(r: Any) -> NodeModelRow:
    return {
        "model": r.model_name,  # the foreign key's column, read without a join
        "state": r.state,
        "downloaded_bytes": r.downloaded_bytes,
        "total_bytes": r.total_bytes,
        "error": r.error,
    }
