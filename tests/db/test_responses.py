"""Stored Responses API answers: readable the moment they are kept, scoped to their API key,
pruned with the request history, and added to older files by schema 7."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from app.core.wire import HistoryRow
from app.db.request_store import RequestStore
from app.db.responses import ResponseStore, StoredResponse
from app.db.store import Store


def stored(ident: str, owner: str | None, at: float | None = None) -> StoredResponse:
    return {
        "id": ident,
        "owner": owner,
        "model": "m",
        "created_at": time.time() if at is None else at,
        "body": {"id": ident, "object": "response", "output": []},
        "context": [{"role": "user", "content": "hi"}],
    }


def history_row() -> HistoryRow:
    return {"at": time.time(), "endpoint": "/v1/responses", "model": "m", "node_id": None,
            "status": 200, "stream": False, "latency_ms": 1.0, "duration_ms": 2.0,
            "error": None, "tokens_in": None, "tokens_out": None, "generation_ms": None,
            "client": None}  # fmt: skip


async def test_kept_responses_are_read_back_by_their_owner_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    responses = ResponseStore(store)
    responses.put(stored("resp_a", "key1"))
    # Readable at once, before its write has landed.
    held = await responses.get("resp_a", "key1")
    assert held is not None and held["context"] == [{"role": "user", "content": "hi"}]
    assert await responses.get("resp_a", "key2") is None
    assert await responses.get("resp_a", None) is None
    await responses.drain()
    assert await responses.get("resp_a", "key1") == held  # now from the table
    assert await responses.get("resp_a", "key2") is None
    responses.put(stored("resp_open", None))
    assert await responses.delete("resp_open", "key1") is False
    assert await responses.delete("resp_open", None) is True  # its write landed first
    assert await responses.get("resp_open", None) is None
    assert await responses.delete("resp_a", "key2") is False
    assert await responses.get("resp_a", "key1") is not None
    await store.close()


async def test_responses_are_pruned_with_the_request_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    responses = ResponseStore(store)
    week = 7 * 24 * 3600.0
    responses.put(stored("resp_old", None, at=time.time() - week - 60))
    responses.put(stored("resp_new", None))
    await responses.drain()
    await RequestStore(store).add_many([history_row()], keep_seconds=week)
    assert await responses.get("resp_old", None) is None
    assert await responses.get("resp_new", None) is not None
    await store.close()


async def test_schema_7_adds_the_table_to_an_older_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:  # a file written by schema 6
        conn.execute("DROP TABLE responses")
        conn.execute("PRAGMA user_version = 6")
    store = Store(tmp_path / "s.db")
    await store.open()
    responses = ResponseStore(store)
    responses.put(stored("resp_a", None))
    await responses.drain()
    assert await responses.get("resp_a", None) is not None
    await store.close()
