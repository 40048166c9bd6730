"""The per-model GPU layer count: schema 5 adds it to an old file, keeping every model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.db.migrations import LATEST, MIGRATIONS
from app.db.store import Store
from tests.db.test_store import record


async def test_a_schema_4_file_gains_gpu_layers_and_keeps_its_models(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    await store.add_model(record("old-model"))
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:  # as schema 4 wrote it
        conn.execute("ALTER TABLE models DROP COLUMN gpu_layers")
        conn.execute("PRAGMA user_version = 4")

    store = Store(tmp_path / "s.db")
    await store.open()
    [kept] = await store.list_models()
    assert kept.name == "old-model" and kept.size_bytes == 10
    assert kept.gpu_layers is None  # the node's own setting, as before the upgrade
    assert (await store.set_gpu_layers("old-model", 12)) == kept.__class__(
        **{**kept.__dict__, "gpu_layers": 12}
    )
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST


async def test_the_gpu_layers_step_is_idempotent_and_the_value_survives_reopening(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    await store.add_model(record("m"))
    await store.set_gpu_layers("m", -1)
    assert await store.set_gpu_layers("nobody", 3) is None
    # Run the step again on a file that already has the column (a crash before user_version).
    await store.db.run(lambda: MIGRATIONS[4](store.db.peewee, store.t))
    await store.close()

    again = Store(tmp_path / "s.db")
    await again.open()
    stored = await again.get_model("m")
    assert stored is not None and stored.gpu_layers == -1
    cleared = await again.set_gpu_layers("m", None)
    assert cleared is not None and cleared.gpu_layers is None
    await again.close()


async def test_a_schema_5_file_gains_context_size_and_keeps_its_models(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    await store.add_model(record("old-model"))
    await store.set_gpu_layers("old-model", 7)
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:  # as schema 5 wrote it
        conn.execute("ALTER TABLE models DROP COLUMN context_size")
        conn.execute("PRAGMA user_version = 5")

    store = Store(tmp_path / "s.db")
    await store.open()
    [kept] = await store.list_models()
    assert (kept.gpu_layers, kept.context_size) == (7, None)  # the node's own context
    updated = await store.set_model_settings("old-model", {"context_size": 8192})
    assert updated is not None and (updated.gpu_layers, updated.context_size) == (7, 8192)
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST >= 6
