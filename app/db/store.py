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
from app.db.database import Database
from app.db.hashing import hash_secret

# A node in these states heartbeats and may serve the models it has ready.
LIVE_NODE_STATES = ("online", "registering")


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

    @staticmethod
    def _model_row(record: ModelRecord) -> dict[str, Any]:
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
        )

    # -- API keys ---------------------------------------------------------------
    async def create_api_key(self, name: str) -> dict[str, Any]:
        """Make a key; the plain key is in the answer this once and stored only hashed."""
        key = "sk-llmlb-" + secrets.token_urlsafe(32)
        key_id = uuid.uuid4().hex[:12]

        def insert() -> dict[str, Any]:
            now = time.time()
            self.t.ApiKey.insert(
                id=key_id, name=name, key_hash=hash_secret(key), prefix=key[:13], created_at=now
            ).execute()
            return {"id": key_id, "name": name, "key": key, "prefix": key[:13], "created_at": now}

        return await self.db.run(insert)

    async def list_api_keys(self) -> list[dict[str, Any]]:
        """Keys without their secret."""

        def select() -> list[dict[str, Any]]:
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

    async def api_key_hashes(self) -> list[str]:
        """The stored hashes, for the auth layer's in-memory check."""

        def select() -> list[str]:
            return [r.key_hash for r in self.t.ApiKey.select(self.t.ApiKey.key_hash)]

        return await self.db.run(select)


def key_matches(candidate: str, hashes: list[str]) -> bool:
    """Constant-time check of a presented key against the stored hashes."""
    digest = hash_secret(candidate)
    found = False
    for stored in hashes:
        found |= hmac.compare_digest(digest, stored)
    return found


class NodeStore:
    """Persistence of nodes and of what each reported about its models."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        self.t = store.t

    async def list_nodes(self) -> list[dict[str, Any]]:
        """Every node row as a dict, with `models`: its per-model states."""

        def select() -> list[dict[str, Any]]:
            nodes = {r["id"]: {**r, "models": []} for r in self.t.Node.select().dicts()}
            for row in self.t.NodeModel.select().dicts():
                node = nodes.get(row["node"])
                if node is not None:
                    node["models"].append(row)
            return list(nodes.values())

        return await self.db.run(select)

    async def save_node(self, row: dict[str, Any]) -> None:
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


class RequestStore:
    """The request history: written in batches, kept for a week."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        self.t = store.t

    async def add_many(self, rows: list[dict[str, Any]], keep_seconds: float) -> None:
        """Insert a batch and drop what is older than the retention."""

        columns = (
            "at",
            "endpoint",
            "model",
            "node_id",
            "status",
            "stream",
            "latency_ms",
            "duration_ms",
            "error",
        )
        sql = (
            f"INSERT INTO requests ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        values = [tuple(row[c] for c in columns) for row in rows]

        def insert() -> None:
            # Raw executemany: building peewee's INSERT for thousands of rows held the GIL
            # ~130 ms a second under load (bench/proxy.py), executemany takes ~16 ms.
            self.db.peewee.connection().executemany(sql, values)
            self.t.Request.delete().where(self.t.Request.at < time.time() - keep_seconds).execute()

        await self.db.transaction(insert)

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest requests first."""

        def select() -> list[dict[str, Any]]:
            query = self.t.Request.select().order_by(self.t.Request.id.desc()).limit(limit)
            return list(query.dicts())

        return await self.db.run(select)


class ConversationStore:
    """Playground conversations; every message is committed the moment it is complete."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        self.t = store.t

    @staticmethod
    def _conversation(row: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            "title": row.title,
            "model": row.model,
            "system_prompt": row.system_prompt,
            "params": json.loads(row.params),
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }

    @staticmethod
    def _message(row: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            "role": row.role,
            "content": row.content,
            "attachments": json.loads(row.attachments),
            "status": row.status,
            "stats": json.loads(row.stats),
            "created_at": row.created_at,
        }

    async def create(self, values: dict[str, Any]) -> dict[str, Any]:
        """A new conversation."""

        def insert() -> dict[str, Any]:
            now = time.time()
            row = self.t.Conversation.create(
                id=uuid.uuid4().hex[:16],
                title=values.get("title") or "New chat",
                model=values.get("model") or "",
                system_prompt=values.get("system_prompt") or "",
                params=json.dumps(values.get("params") or {}),
                created_at=now,
                updated_at=now,
            )
            return self._conversation(row)

        return await self.db.run(insert)

    async def listing(self) -> list[dict[str, Any]]:
        """Conversations, the latest first."""

        def select() -> list[dict[str, Any]]:
            c = self.t.Conversation
            return [self._conversation(r) for r in c.select().order_by(c.updated_at.desc())]

        return await self.db.run(select)

    async def get(self, conversation_id: str) -> dict[str, Any] | None:
        """A conversation with its messages in order."""

        def select() -> dict[str, Any] | None:
            row = self.t.Conversation.get_or_none(self.t.Conversation.id == conversation_id)
            if row is None:
                return None
            m = self.t.Message
            messages = m.select().where(m.conversation == conversation_id).order_by(m.id)
            return {**self._conversation(row), "messages": [self._message(x) for x in messages]}

        return await self.db.run(select)

    async def update(self, conversation_id: str, values: dict[str, Any]) -> bool:
        """Change title, model, system prompt or parameters; False when unknown."""

        def change() -> bool:
            fields = {k: v for k, v in values.items() if k in {"title", "model", "system_prompt"}}
            if "params" in values:
                fields["params"] = json.dumps(values["params"])
            fields["updated_at"] = time.time()
            c = self.t.Conversation
            return bool(c.update(**fields).where(c.id == conversation_id).execute())

        return await self.db.run(change)

    async def delete(self, conversation_id: str) -> bool:
        """Delete a conversation and its messages."""

        def remove() -> bool:
            self.t.Message.delete().where(self.t.Message.conversation == conversation_id).execute()
            c = self.t.Conversation
            return bool(c.delete().where(c.id == conversation_id).execute())

        return await self.db.transaction(remove)

    async def add_message(self, conversation_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Append a message (committed before this returns)."""

        def insert() -> dict[str, Any]:
            now = time.time()
            row = self.t.Message.create(
                conversation=conversation_id,
                role=values["role"],
                content=values["content"],
                attachments=json.dumps(values.get("attachments") or []),
                status=values.get("status") or "done",
                stats=json.dumps(values.get("stats") or {}),
                created_at=now,
            )
            c = self.t.Conversation
            c.update(updated_at=now).where(c.id == conversation_id).execute()
            return self._message(row)

        return await self.db.transaction(insert)
