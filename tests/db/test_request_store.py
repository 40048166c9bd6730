"""The request history store: a schema-7 file keeps its history when it gains the dashboard's
columns and bodies; each body lands on its own request, batch after batch; a week is kept."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from app.core.wire import HistoryRow
from app.db.request_store import RequestStore
from app.db.rows import StoredBodies
from app.db.store import Store

WEEK = 7 * 24 * 3600.0


def row(model: str, at: float | None = None, node: str | None = None) -> HistoryRow:
    return {"at": time.time() if at is None else at, "endpoint": "/v1/chat/completions",
            "model": model, "node_id": node, "status": 200, "stream": False,
            "latency_ms": 1.0, "duration_ms": 2.0, "error": None, "tokens_in": 3,
            "tokens_out": 4, "generation_ms": 5.0, "client": "alice"}  # fmt: skip


def bodies(text: str) -> StoredBodies:
    return {"request": f"asked {text}", "request_truncated": False,
            "response": f"answered {text}", "response_truncated": text == "cut"}  # fmt: skip


async def test_a_schema_7_file_keeps_its_history_and_gains_bodies(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:  # the file as schema 7 left it, with one request
        conn.execute("DROP TABLE request_bodies")
        for column in ("tokens_in", "tokens_out", "generation_ms", "client"):
            conn.execute(f"ALTER TABLE requests DROP COLUMN {column}")
        conn.execute(
            "INSERT INTO requests (at, endpoint, model, node_id, status, stream, latency_ms, "
            "duration_ms, error) VALUES (?, '/v1/completions', 'old', 'n1', 200, 0, 1.5, 9.0, "
            "NULL)",
            (time.time(),),
        )
        conn.execute("PRAGMA user_version = 7")
    store = Store(path)
    await store.open()
    requests = RequestStore(store)
    [old] = await requests.page(None, 10)
    assert (old["model"], old["node_id"], old["duration_ms"]) == ("old", "n1", 9.0)
    assert old["tokens_in"] is None and old["client"] is None
    assert await requests.one(old["id"]) == (old, None)  # no bodies were kept then
    await requests.add_many([row("new")], WEEK, lambda: [bodies("new")])
    newest, _ = await requests.page(None, 10)
    assert newest["id"] > old["id"] and newest["client"] == "alice"
    assert await requests.one(newest["id"]) == (newest, bodies("new"))
    await store.close()


async def test_each_body_lands_on_its_request_batch_after_batch(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    requests = RequestStore(store)
    await requests.add_many(
        [row("a"), row("b"), row("c")], WEEK, lambda: [bodies("a"), None, bodies("cut")]
    )
    await requests.add_many([row("d", node="n2")], WEEK, lambda: [bodies("d")])
    rows = await requests.page(None, 10)
    assert [r["model"] for r in rows] == ["d", "c", "b", "a"]
    found = {r["model"]: await requests.one(r["id"]) for r in rows}
    assert {m: f[1] for m, f in found.items() if f is not None} == {
        "a": bodies("a"),
        "b": None,
        "c": bodies("cut"),
        "d": bodies("d"),
    }
    assert [r["model"] for r in await requests.page(rows[1]["id"], 10)] == ["b", "a"]
    assert [r["model"] for r in await requests.page(None, 10, node="n2")] == ["d"]
    await store.close()


async def test_a_week_old_request_goes_with_its_bodies(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    requests = RequestStore(store)
    await requests.add_many(
        [row("old", at=time.time() - WEEK - 60)], 10 * WEEK, lambda: [bodies("old")]
    )
    [old] = await requests.page(None, 10)
    # Between the flusher's pruning writes (one every PRUNE_EVERY seconds) nothing is dropped.
    await requests.add_many([row("kept")], WEEK, lambda: [None], prune=False)
    assert [r["model"] for r in await requests.page(None, 10)] == ["kept", "old"]
    await requests.add_many([row("new")], WEEK, lambda: [bodies("new")])
    assert [r["model"] for r in await requests.page(None, 10)] == ["new", "kept"]
    assert await requests.one(old["id"]) is None
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM request_bodies").fetchone()[0] == 1
    await store.close()


async def test_a_big_batch_is_written_whole_under_an_old_sqlites_variable_limit(
    tmp_path: Path,
) -> None:
    """SQLite before 3.32 allows 999 variables a statement: a flush of a busy second (here
    1,200 requests with bodies) must still land whole, not fail and lose the batch."""
    store = Store(tmp_path / "s.db")
    await store.open()
    await store.db.run(
        lambda: store.db.peewee.connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    )
    requests = RequestStore(store)
    batch = [row(f"m{i}") for i in range(1200)]
    await requests.add_many(batch, WEEK, lambda: [bodies(str(i)) for i in range(1200)])
    first = await requests.page(None, 1000)
    stored = first + await requests.page(first[-1]["id"], 1000)
    assert len({r["id"] for r in stored}) == 1200
    newest = stored[0]
    assert newest["model"] == "m1199"
    assert await requests.one(newest["id"]) == (newest, bodies("1199"))
    await store.close()


async def test_history_writes_do_not_wait_for_the_disk_but_the_users_data_does(
    tmp_path: Path,
) -> None:
    """The history is written dozens of times a second under load without an fsync each
    (synchronous=NORMAL; WAL keeps the file whole), and every other write, the user's own data
    (API keys, models, settings), still waits for the disk (synchronous=FULL)."""
    store = Store(tmp_path / "s.db")
    await store.open()
    seen: list[int] = []

    def insert_and_look() -> None:
        connection = store.db.peewee.connection()
        seen.append(connection.execute("PRAGMA synchronous").fetchone()[0])

    await store.db.transaction(insert_and_look, durable=False)
    await RequestStore(store).add_many([row("a")], WEEK, lambda: [None])
    await store.db.transaction(insert_and_look)
    assert seen == [1, 2]  # NORMAL inside the record's write, FULL for the next one
    await store.close()


async def test_the_requests_since_a_time_come_oldest_first_in_chunks(tmp_path: Path) -> None:
    """What the time series fold again after a crash: a busy day read a chunk at a time."""
    store = Store(tmp_path / "s.db")
    await store.open()
    now = time.time()
    rows = [row(f"m{i}", at=now - 100 + i) for i in range(5)]
    await RequestStore(store).add_many([row("before", at=now - 500), *rows], WEEK)
    chunks = await store.db.run(lambda: list(RequestStore(store).since_sync(now - 100, chunk=2)))
    assert [[r["model"] for r in c] for c in chunks] == [["m0", "m1"], ["m2", "m3"], ["m4"]]
    assert chunks[0][0] == rows[0]  # as it was recorded
    await store.close()
