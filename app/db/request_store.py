"""The request history and its bodies: written in batches, read back a page at a time, kept
for a week."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any, cast

from app.core.wire import HistoryEntry, HistoryRow
from app.db.rows import StoredBodies
from app.db.store import Store

_COLUMNS = (
    "at",
    "endpoint",
    "model",
    "node_id",
    "status",
    "stream",
    "latency_ms",
    "duration_ms",
    "error",
    "tokens_in",
    "tokens_out",
    "generation_ms",
    "client",
)
_INSERT = f"INSERT INTO requests (id, {', '.join(_COLUMNS)}) VALUES "
_INSERT_BODIES = (
    "INSERT OR REPLACE INTO request_bodies "
    "(request_id, at, request, request_truncated, response, response_truncated) VALUES "
)
# Rows per INSERT statement. One statement per few hundred rows, not one per row: sqlite3
# releases the GIL around every step, and a thread taking the GIL back thousands of times a
# second forces the event loop to hand it over each time (the convoy that drew p99 out to
# 100+ ms on bench/proxy.py). At most 500 rows, and within the build's limit on variables
# (999 before SQLite 3.32, 32,766 since).
_ROWS_PER_INSERT = 500
_VARIABLES = sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
# The next free id: above every request and every body row (bodies go with their request).
_TOP = (
    "SELECT MAX(COALESCE((SELECT MAX(id) FROM requests), 0), "
    "COALESCE((SELECT MAX(request_id) FROM request_bodies), 0))"
)
SQLITE_MAX_INT = 2**63 - 1
_values = cast(Callable[[HistoryRow], tuple[Any, ...]], itemgetter(*_COLUMNS))  # a row's columns
_PRUNE = (
    "DELETE FROM requests WHERE at < ?",
    "DELETE FROM request_bodies WHERE at < ?",
    # Stored Responses API answers are kept as long as the history of their requests.
    "DELETE FROM responses WHERE created_at < ?",
)


def _insert_rows(connection: sqlite3.Connection, insert: str, rows: list[tuple[Any, ...]]) -> None:
    """`rows` inserted with `insert` (a statement up to its VALUES), a few hundred a statement."""
    if not rows:
        return
    width = len(rows[0])
    one = "(" + ", ".join("?" * width) + ")"
    per = max(1, min(_ROWS_PER_INSERT, connection.getlimit(_VARIABLES) // width))
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        values = [value for row in chunk for value in row]
        connection.execute(insert + ", ".join([one] * len(chunk)), values)


def write_batch(
    connection: sqlite3.Connection,
    rows: list[HistoryRow],
    texts: list[StoredBodies | None] | None,
    keep_seconds: float,
    prune: bool,
) -> None:
    """Insert a batch and its bodies (`texts[i]` for `rows[i]`), and with `prune` drop what is
    older than `keep_seconds`, inside the caller's write transaction: on the database thread,
    or in the history's writer process (app.server.history_process)."""
    # Ids are given here, in the transaction, rather than read back row by row: the writer
    # holds the write lock from BEGIN IMMEDIATE on, so the ids after the largest in use are
    # free, and each body row names its request with no extra query. Raw statements: building
    # peewee's INSERT for thousands of rows held the GIL ~130 ms a second under load
    # (bench/proxy.py), these take ~16 ms.
    top = int(connection.execute(_TOP).fetchone()[0])
    _insert_rows(connection, _INSERT, [(top + i, *_values(row)) for i, row in enumerate(rows, 1)])
    if texts:
        _insert_rows(
            connection,
            _INSERT_BODIES,
            [
                (
                    top + i,
                    row["at"],
                    b["request"],
                    b["request_truncated"],
                    b["response"],
                    b["response_truncated"],
                )
                for i, (row, b) in enumerate(zip(rows, texts, strict=True), 1)
                if b is not None
            ],
        )
    if prune:
        cutoff = time.time() - keep_seconds
        for statement in _PRUNE:
            connection.execute(statement, (cutoff,))


class RequestStore:
    """The request history: written in batches, kept for a week."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        self.t = store.t

    async def add_many(
        self,
        rows: list[HistoryRow],
        keep_seconds: float,
        bodies: Callable[[], list[StoredBodies | None]] | None = None,
        prune: bool = True,
    ) -> None:
        """Insert a batch, with each row's bodies (`bodies()[i]` for `rows[i]`, called on the
        database thread: it may be slow), and with `prune` drop what is older than the
        retention."""

        def insert() -> None:
            texts = bodies() if bodies is not None else None
            write_batch(self.db.peewee.connection(), rows, texts, keep_seconds, prune)

        await self.db.transaction(insert, durable=False)  # a record, not the user's data

    def since_sync(self, at: float, chunk: int = 10_000) -> Iterator[list[HistoryRow]]:
        """The requests recorded from `at` on, oldest first, as they were recorded, `chunk` at
        a time (on the database thread: the time series fold them again after a crash)."""
        rows = self.db.peewee.connection().execute(
            f"SELECT {', '.join(_COLUMNS)} FROM requests WHERE at >= ? ORDER BY id", (at,)
        )
        while found := rows.fetchmany(chunk):
            yield [cast(HistoryRow, dict(zip(_COLUMNS, row, strict=True))) for row in found]

    async def recent(self, limit: int) -> list[HistoryEntry]:
        """The newest requests first."""
        return await self.page(None, limit)

    async def page(
        self,
        before: int | None,
        limit: int,
        node: str | None = None,
        model: str | None = None,
    ) -> list[HistoryEntry]:
        """The newest requests first, those with an id below `before` (a page after the
        one that ended there), of one node or model when asked."""
        r = self.t.Request

        def select() -> list[HistoryEntry]:
            query = r.select()
            if before is not None:
                query = query.where(r.id < max(0, min(before, SQLITE_MAX_INT)))  # ids are >= 1
            if node is not None:
                query = query.where(r.node_id == node)
            if model is not None:
                query = query.where(r.model == model)
            return [_entry(row) for row in query.order_by(r.id.desc()).limit(limit)]

        return await self.db.run(select)

    async def one(self, request_id: int) -> tuple[HistoryEntry, StoredBodies | None] | None:
        """One request with its bodies (None when it has none stored); None when unknown."""

        def select() -> tuple[HistoryEntry, StoredBodies | None] | None:
            if not 0 < request_id <= SQLITE_MAX_INT:
                return None
            row = self.t.Request.get_or_none(self.t.Request.id == request_id)
            if row is None:
                return None
            b = self.t.RequestBody.get_or_none(self.t.RequestBody.request_id == request_id)
            bodies: StoredBodies | None = None
            if b is not None:
                bodies = {
                    "request": b.request,
                    "request_truncated": bool(b.request_truncated),
                    "response": b.response,
                    "response_truncated": bool(b.response_truncated),
                }
            return _entry(row), bodies

        return await self.db.run(select)


def _entry(r: Any) -> HistoryEntry:
    """A `requests` row (a peewee model) as the API shows it."""
    return {
        "id": r.id,
        "at": r.at,
        "endpoint": r.endpoint,
        "model": r.model,
        "node_id": r.node_id,
        "status": r.status,
        "stream": r.stream,
        "latency_ms": r.latency_ms,
        "duration_ms": r.duration_ms,
        "error": r.error,
        "tokens_in": r.tokens_in,
        "tokens_out": r.tokens_out,
        "generation_ms": r.generation_ms,
        "client": r.client,
    }
