"""The Playground's conversations and messages, saved message by message."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, TypedDict

from app.core.types import MessageStatus, Role, enum_member
from app.core.wire import Conversation, ConversationDetail, JsonObject, JsonValue, Message
from app.db.store import Store


class ConversationFields(TypedDict, total=False):
    """What a client may set on a conversation (each field checked by the route)."""

    title: str
    model: str
    system_prompt: str
    params: JsonObject


class NewMessage(TypedDict):
    """A complete message to append (checked by the route)."""

    role: Role
    content: str
    attachments: list[JsonValue]
    status: MessageStatus
    stats: JsonObject


class ConversationStore:
    """Playground conversations; every message is committed the moment it is complete."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        self.t = store.t

    @staticmethod
    def _conversation(row: Any) -> Conversation:
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
    def _message(row: Any) -> Message:
        return {
            "id": row.id,
            "role": enum_member(Role, row.role) or Role.USER,
            "content": row.content,
            "attachments": json.loads(row.attachments),
            "status": enum_member(MessageStatus, row.status) or MessageStatus.DONE,
            "stats": json.loads(row.stats),
            "created_at": row.created_at,
        }

    async def create(self, values: ConversationFields) -> Conversation:
        """A new conversation."""

        def insert() -> Conversation:
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

    async def listing(self) -> list[Conversation]:
        """Conversations, the latest first."""

        def select() -> list[Conversation]:
            c = self.t.Conversation
            return [self._conversation(r) for r in c.select().order_by(c.updated_at.desc())]

        return await self.db.run(select)

    async def get(self, conversation_id: str) -> ConversationDetail | None:
        """A conversation with its messages in order."""

        def select() -> ConversationDetail | None:
            row = self.t.Conversation.get_or_none(self.t.Conversation.id == conversation_id)
            if row is None:
                return None
            m = self.t.Message
            messages = m.select().where(m.conversation == conversation_id).order_by(m.id)
            return {**self._conversation(row), "messages": [self._message(x) for x in messages]}

        return await self.db.run(select)

    async def update(self, conversation_id: str, values: ConversationFields) -> bool:
        """Change title, model, system prompt or parameters; False when unknown."""

        def change() -> bool:
            fields: dict[str, object] = {
                k: v for k, v in values.items() if k in {"title", "model", "system_prompt"}
            }
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

    async def add_message(self, conversation_id: str, values: NewMessage) -> Message:
        """Append a message (committed before this returns)."""

        def insert() -> Message:
            now = time.time()
            row = self.t.Message.create(
                conversation=conversation_id,
                role=values["role"],
                content=values["content"],
                attachments=json.dumps(values["attachments"]),
                status=values["status"],
                stats=json.dumps(values["stats"]),
                created_at=now,
            )
            c = self.t.Conversation
            c.update(updated_at=now).where(c.id == conversation_id).execute()
            return self._message(row)

        return await self.db.transaction(insert)
