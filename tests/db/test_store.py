"""The SQLite store: durable, migrated, safe with concurrent writers and crashes."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.core.errors import Conflict, StartupError
from app.core.types import ModelFile, ModelRecord
from app.db.hashing import hash_secret
from app.db.migrations import LATEST, MIGRATIONS
from app.db.store import NodeStore, Store


def record(name: str) -> ModelRecord:
    return ModelRecord(
        name=name,
        repo="acme/x",
        filename="x.gguf",
        source="url",
        display_name=name,
        size_bytes=10,
        required_memory_bytes=15,
        files=(ModelFile("x.gguf", 10, "ab"),),
    )


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def test_records_round_trip_and_survive_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    await store.add_model(record("a"))
    with pytest.raises(Conflict):
        await store.add_model(record("a"))
    await store.close()

    again = Store(tmp_path / "s.db")
    await again.open()
    [loaded] = await again.list_models()
    assert loaded.name == "a" and loaded.files == (ModelFile("x.gguf", 10, "ab"),)
    assert loaded.created_at > 0
    assert await again.delete_model("a") is True
    assert await again.delete_model("a") is False
    await again.close()


async def test_a_new_file_is_migrated_to_the_latest_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"models", "nodes", "node_models", "api_keys", "settings"} <= tables


async def test_schema_4_keeps_only_a_hash_of_each_node_token(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:  # a file written by schema 3
        conn.execute("ALTER TABLE nodes DROP COLUMN token_hash")
        conn.execute(
            "INSERT INTO nodes (id, name, url, kind, status, token, info, tags, notes, "
            "created_at) VALUES ('n', 'n', 'http://h:1', 'remote', 'online', 'plain', '{}', "
            "'[]', '', 0)"
        )
        conn.execute("PRAGMA user_version = 3")
    store = Store(tmp_path / "s.db")
    await store.open()
    [row] = await NodeStore(store).list_nodes()
    assert row["token_hash"] == hash_secret("plain")
    with sqlite3.connect(tmp_path / "s.db") as conn:  # the plain column is emptied
        assert conn.execute("SELECT token FROM nodes").fetchall() == [(None,)]
    await store.db.run(MIGRATIONS[3], store.db.peewee, store.t)  # a second run changes nothing
    assert await NodeStore(store).list_nodes() == [row]
    await store.close()
    assert b"plain" not in (tmp_path / "s.db").read_bytes()


async def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 5}")
    store = Store(tmp_path / "s.db")
    with pytest.raises(StartupError, match="newer llmlb"):
        await store.open()
    await store.close()


async def test_a_corrupt_file_is_refused_with_a_way_out(tmp_path: Path) -> None:
    (tmp_path / "s.db").write_bytes(b"this is not a database" * 100)
    store = Store(tmp_path / "s.db")
    with pytest.raises(StartupError, match=r"unreadable.*move it aside"):
        await store.open()
    await store.close()


async def test_concurrent_writers_never_corrupt_the_file(tmp_path: Path) -> None:
    # Two stores on one file, each on its own thread, plus concurrency within each.
    stores = [Store(tmp_path / "s.db"), Store(tmp_path / "s.db")]
    for store in stores:
        await store.open()
    await asyncio.gather(
        *(stores[i % 2].add_model(record(f"m{i}")) for i in range(200)),
        *(stores[i % 2].create_api_key(f"k{i}") for i in range(50)),
    )
    names = {m.name for m in await stores[0].list_models()}
    assert names == {f"m{i}" for i in range(200)}
    assert len(await stores[1].list_api_keys()) == 50
    for store in stores:
        await store.close()
    assert integrity(tmp_path / "s.db") == "ok"


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from app.db.store import Store
    from app.core.types import ModelRecord

    async def main():
        store = Store(Path(sys.argv[1]))
        await store.open()
        i = 0
        while True:
            await store.add_model(ModelRecord(
                name=f"m{i}", repo="a/b", filename="f.gguf", source="url",
                display_name="x" * 2000, size_bytes=1, required_memory_bytes=1))
            print(i, flush=True)  # reported only after the commit returned
            i += 1

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_a_killed_writer_loses_nothing_it_committed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    committed = []
    for line in proc.stdout:
        committed.append(int(line))
        if len(committed) >= 150:
            break
    proc.kill()  # SIGKILL mid-write: no chance to clean up
    proc.wait()
    committed.extend(int(line) for line in proc.stdout.read().split())
    assert integrity(path) == "ok"
    with sqlite3.connect(path) as conn:
        stored = {r[0] for r in conn.execute("SELECT name FROM models")}
    assert {f"m{i}" for i in committed} <= stored
