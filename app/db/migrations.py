"""Schema versions: one small idempotent step per version, recorded in PRAGMA user_version."""

from __future__ import annotations

from collections.abc import Callable

import peewee

from app.core.errors import StartupError
from app.db.hashing import hash_secret
from app.db.schema import Tables


def _v1(db: peewee.SqliteDatabase, tables: Tables) -> None:
    db.create_tables(tables.all(), safe=True)


def _v2(db: peewee.SqliteDatabase, tables: Tables) -> None:
    db.create_tables([tables.Request], safe=True)  # the request history


def _v3(db: peewee.SqliteDatabase, tables: Tables) -> None:
    db.create_tables([tables.Conversation, tables.Message], safe=True)  # the Playground


def _v4(db: peewee.SqliteDatabase, tables: Tables) -> None:
    # Node tokens were stored in clear; keep only their hash (as for API keys).
    columns = {c.name for c in db.get_columns("nodes")}
    if "token_hash" not in columns:
        db.execute_sql("ALTER TABLE nodes ADD COLUMN token_hash TEXT")
    rows = db.execute_sql("SELECT id, token FROM nodes WHERE token IS NOT NULL").fetchall()
    # secure_delete zeroes the bytes the old values leave behind in the file.
    previous = db.execute_sql("PRAGMA secure_delete").fetchone()[0]
    db.execute_sql("PRAGMA secure_delete = ON")
    try:
        for node_id, token in rows:
            db.execute_sql(
                "UPDATE nodes SET token_hash = ?, token = NULL WHERE id = ?",
                (hash_secret(token) if token else None, node_id),
            )
    finally:
        db.execute_sql(f"PRAGMA secure_delete = {int(previous)}")


def _v5(db: peewee.SqliteDatabase, tables: Tables) -> None:
    # A per-model GPU layer count; existing models keep the node's own setting (NULL).
    columns = {c.name for c in db.get_columns("models")}
    if "gpu_layers" not in columns:
        db.execute_sql("ALTER TABLE models ADD COLUMN gpu_layers INTEGER")


def _v6(db: peewee.SqliteDatabase, tables: Tables) -> None:
    # A per-model context size; existing models keep the node's own setting (NULL).
    columns = {c.name for c in db.get_columns("models")}
    if "context_size" not in columns:
        db.execute_sql("ALTER TABLE models ADD COLUMN context_size INTEGER")


def _v7(db: peewee.SqliteDatabase, tables: Tables) -> None:
    db.create_tables([tables.Response], safe=True)  # the Responses API's stored answers


def _v8(db: peewee.SqliteDatabase, tables: Tables) -> None:
    # The dashboard: tokens, generation time and client of each request, and its bodies.
    columns = {c.name for c in db.get_columns("requests")}
    for name, kind in (
        ("tokens_in", "INTEGER"),
        ("tokens_out", "INTEGER"),
        ("generation_ms", "REAL"),
        ("client", "TEXT"),
    ):
        if name not in columns:
            db.execute_sql(f"ALTER TABLE requests ADD COLUMN {name} {kind}")
    db.create_tables([tables.RequestBody], safe=True)


def _v9(db: peewee.SqliteDatabase, tables: Tables) -> None:
    # The dashboard's time series: traffic and node device use, per minute and per hour.
    db.create_tables([tables.StatsTraffic, tables.StatsNode], safe=True)


MIGRATIONS: list[Callable[[peewee.SqliteDatabase, Tables], None]] = [
    _v1,
    _v2,
    _v3,
    _v4,
    _v5,
    _v6,
    _v7,
    _v8,
    _v9,
]
LATEST = len(MIGRATIONS)


def schema_version(db: peewee.SqliteDatabase) -> int:
    """The version the file is at (0 for a new file)."""
    return int(db.execute_sql("PRAGMA user_version").fetchone()[0])


def migrate(db: peewee.SqliteDatabase, tables: Tables) -> None:
    """Apply every step above the file's version, each in its own transaction."""
    current = schema_version(db)
    if current > LATEST:
        raise StartupError(
            f"the database was written by a newer llmlb (schema {current}, this one knows "
            f"{LATEST}); update llmlb"
        )
    for version in range(current + 1, LATEST + 1):
        with db.atomic():
            MIGRATIONS[version - 1](db, tables)
            db.execute_sql(f"PRAGMA user_version = {version}")
