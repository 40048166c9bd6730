"""Stored Responses API answers: what `GET /v1/responses/{id}` reads back and what a request
with `previous_response_id` continues from. Pruned with the request history (RequestStore)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, TypedDict

from app.core.wire import JsonObject
from app.db.store import Store

log = logging.getLogger(__name__)


class StoredResponse(TypedDict):
    """One stored answer: the response object, and the chat messages it leaves behind."""

    id: str
    owner: str | None  # the API key that created it (None: no key was used)
    model: str
    created_at: float
    body: JsonObject  # the response object
    context: list[JsonObject]  # the conversation so far, the answer included (chat messages)


class ResponseStore:
    """Responses, each readable from the moment its answer is complete: it is held in memory
    until its write (on the database thread, off the request's path) has landed."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        self.t = store.t
        self._pending: dict[str, StoredResponse] = {}
        self._writes: dict[str, asyncio.Task[None]] = {}

    def put(self, record: StoredResponse) -> None:
        """Keep a response (readable at once, written soon after)."""
        self._pending[record["id"]] = record
        task = asyncio.ensure_future(self._write(record))
        self._writes[record["id"]] = task
        task.add_done_callback(self._written)

    async def _write(self, record: StoredResponse) -> None:
        row = {
            "id": record["id"],
            "owner": record["owner"],
            "model": record["model"],
            "created_at": record["created_at"],
            "body": json.dumps(record["body"]),
            "context": json.dumps(record["context"]),
        }

        def insert() -> None:
            self.t.Response.insert(**row).on_conflict_replace().execute()

        try:
            await self.db.run(insert)
        finally:
            self._pending.pop(record["id"], None)
            self._writes.pop(record["id"], None)

    @staticmethod
    def _written(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("could not store a response", exc_info=task.exception())

    async def get(self, response_id: str, owner: str | None) -> StoredResponse | None:
        """The response with this id, if `owner` created it."""
        held = self._pending.get(response_id)
        if held is not None:
            return held if held["owner"] == owner else None

        def select() -> StoredResponse | None:
            r = self.t.Response
            row = r.get_or_none((r.id == response_id) & _owned(r, owner))
            return None if row is None else _record(row)

        return await self.db.run(select)

    async def delete(self, response_id: str, owner: str | None) -> bool:
        """Forget a response `owner` created; False when there is none."""
        writing = self._writes.get(response_id)
        if writing is not None:
            await asyncio.wait([writing])  # then it is in the table, to delete there

        def remove() -> bool:
            r = self.t.Response
            return bool(r.delete().where((r.id == response_id) & _owned(r, owner)).execute())

        return await self.db.run(remove)

    async def drain(self) -> None:
        """Wait for the writes under way (before the database closes)."""
        if self._writes:
            await asyncio.wait(list(self._writes.values()))


def _owned(table: Any, owner: str | None) -> Any:
    return table.owner.is_null() if owner is None else table.owner == owner


def _record(row: Any) -> StoredResponse:
    return {
        "id": row.id,
        "owner": row.owner,
        "model": row.model,
        "created_at": row.created_at,
        "body": json.loads(row.body),
        "context": json.loads(row.context),
    }
