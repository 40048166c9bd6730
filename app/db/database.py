"""SQLite on one dedicated thread, handing back awaitable results (after Electrum's sql_db)."""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import peewee

from app.core.errors import StartupError
from app.core.paths import make_private
from app.db.migrations import migrate
from app.db.schema import Tables, build_tables

log = logging.getLogger(__name__)
T = TypeVar("T")


class Database:
    """Owns the SQLite connection; every query runs on its one worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        # synchronous=FULL: a power cut never loses a transaction we reported committed.
        self._db = peewee.SqliteDatabase(
            None,
            pragmas={
                "journal_mode": "wal",
                "synchronous": "full",
                "foreign_keys": 1,
                "busy_timeout": 5000,
            },
        )
        self.tables: Tables = build_tables(self._db)

    @property
    def peewee(self) -> peewee.SqliteDatabase:
        """The peewee database (use only inside `run`)."""
        return self._db

    async def open(self) -> None:
        """Connect and bring the schema up to date, or raise StartupError."""
        await self.run(self._open_sync)

    def _open_sync(self) -> None:
        try:
            self._db.init(str(self.path))
            self._db.connect()
            migrate(self._db, self.tables)
            for suffix in ("", "-wal", "-shm"):  # prompts and key hashes: the user's alone
                make_private(self.path.with_name(self.path.name + suffix))
        except (peewee.DatabaseError, sqlite3.DatabaseError) as exc:
            self._db.close()
            raise StartupError(
                f"the database {self.path} is unreadable ({exc}); "
                "move it aside to start fresh, or restore a backup"
            ) from exc

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the database thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def transaction(
        self, fn: Callable[..., T], *args: Any, durable: bool = True, **kwargs: Any
    ) -> T:
        """Like `run`, inside one atomic transaction. Not `durable`: committed without waiting
        for the disk (synchronous=NORMAL; WAL keeps the file consistent, and a power cut may
        take back the last such commits), for records such as the request history, written
        dozens of times a second under load; the next durable commit makes them durable too."""

        def atomic() -> T:
            # IMMEDIATE: the write lock is taken at BEGIN, waiting (busy_timeout) while the
            # history's writer process holds it. A transaction that read first and wrote later
            # would fail at once, not wait, once that process had committed in between.
            with self._db.atomic("IMMEDIATE"):
                return fn(*args, **kwargs)

        def lightly() -> T:
            self._db.execute_sql("PRAGMA synchronous = NORMAL")
            try:
                return atomic()
            finally:
                self._db.execute_sql("PRAGMA synchronous = FULL")

        return await self.run(atomic if durable else lightly)

    async def close(self) -> None:
        """Checkpoint and close; later calls fail."""
        try:
            await self.run(self._close_sync)
        finally:
            self._executor.shutdown(wait=True)

    def _close_sync(self) -> None:
        if not self._db.is_closed():
            try:
                self._db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            except peewee.DatabaseError:
                log.warning("WAL checkpoint failed at close", exc_info=True)
            self._db.close()
