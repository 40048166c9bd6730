"""The dashboard's time series in SQLite: traffic and node device use per minute (kept 24 h)
and per hour (kept 7 days), merged on write so a bucket written twice adds up, never doubles.

Every method whose name ends in `_sync` runs on the database thread (through `run`), inside
the transaction `run` opens: the balancer's `app.server.stats` does its folding there too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import numpy as np

from app.db.database import Database
from app.db.store import Store

MINUTE = 60
HOUR = 3600
T = TypeVar("T")

Histogram = dict[int, int]  # log-scale bin -> count (the bins are app.server.stats's)


def merge_histogram(into: Histogram, other: Histogram) -> None:
    """Add `other`'s counts into `into`."""
    for b, n in other.items():
        into[b] = into.get(b, 0) + n


COUNT = np.dtype("<u4")  # a histogram on disk: little-endian uint32 counts, bin 0 first


def dump_histogram(h: Histogram) -> bytes | None:
    """The stored form: dense up to the last bin used (a read sums thousands with numpy)."""
    if not h:
        return None
    dense = np.zeros(max(h) + 1, COUNT)
    dense[list(h)] = list(h.values())
    return dense.tobytes()


def load_histogram(blob: bytes | None) -> Histogram:
    """A stored histogram as bins and counts."""
    if not blob:
        return {}
    dense = np.frombuffer(blob, COUNT, len(blob) // COUNT.itemsize)
    used = dense.nonzero()[0]
    return dict(zip(used.tolist(), dense[used].tolist(), strict=True))


@dataclass(slots=True)
class TrafficCounts:
    """One bucket of /v1 traffic: sums, and the two latency histograms."""

    requests: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    gen_tokens: int = 0  # tokens_out of the requests whose generation time is known
    gen_ms: float = 0.0  # their generation time
    ttft: Histogram = field(default_factory=dict)
    latency: Histogram = field(default_factory=dict)

    def merge(self, other: TrafficCounts) -> None:
        """Add another bucket's counts to this one."""
        self.requests += other.requests
        self.errors += other.errors
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.gen_tokens += other.gen_tokens
        self.gen_ms += other.gen_ms
        merge_histogram(self.ttft, other.ttft)
        merge_histogram(self.latency, other.latency)


@dataclass(slots=True)
class NodeCounts:
    """One bucket of a node's heartbeats: sums and how many heartbeats gave each figure, so
    buckets merge into exact averages."""

    beats: int = 0
    cpu_sum: float = 0.0
    cpu_n: int = 0
    mem_used_sum: float = 0.0
    mem_total_sum: float = 0.0
    mem_n: int = 0
    gpu_sum: float = 0.0
    gpu_n: int = 0
    gpu_used_sum: float = 0.0
    gpu_total_sum: float = 0.0
    gpu_mem_n: int = 0

    def merge(self, other: NodeCounts) -> None:
        """Add another bucket's sums to this one."""
        for f in _NODE_FIELDS:
            setattr(self, f, getattr(self, f) + getattr(other, f))


_NODE_FIELDS = tuple(f.name for f in fields(NodeCounts))
_TRAFFIC_SUMS = ("requests", "errors", "tokens_in", "tokens_out", "gen_tokens", "gen_ms")
TrafficKey = tuple[int, str, str]  # (bucket start, model, node id)
TrafficRow = tuple[int, str, str, int, int, int, int, int, float, bytes | None, bytes | None]
NodeKey = tuple[int, str]  # (bucket start, node id)


class StatsStore:
    """The two time-series tables."""

    def __init__(self, store: Store) -> None:
        self.db: Database = store.db

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the database thread, in one transaction (not waiting for the
        disk: the series are records, rebuilt minute by minute)."""
        return await self.db.transaction(fn, *args, durable=False)

    # -- writes -------------------------------------------------------------------------
    def save_sync(
        self,
        step: int,
        traffic: dict[TrafficKey, TrafficCounts],
        nodes: dict[NodeKey, NodeCounts],
    ) -> None:
        """Add these buckets to what is stored under the same keys."""
        conn = self.db.peewee.connection()
        for (at, model, node), counts in traffic.items():
            row = conn.execute(
                f"SELECT {', '.join(_TRAFFIC_SUMS)}, ttft, latency FROM stats_traffic "
                "WHERE step = ? AND at = ? AND model = ? AND node_id = ?",
                (step, at, model, node),
            ).fetchone()
            total = TrafficCounts()
            total.merge(counts)
            if row is not None:
                total.merge(_traffic(row))
            conn.execute(
                "INSERT OR REPLACE INTO stats_traffic (step, at, model, node_id, "
                f"{', '.join(_TRAFFIC_SUMS)}, ttft, latency) VALUES ({', '.join('?' * 12)})",
                (
                    step,
                    at,
                    model,
                    node,
                    *(getattr(total, f) for f in _TRAFFIC_SUMS),
                    dump_histogram(total.ttft),
                    dump_histogram(total.latency),
                ),
            )
        for (at, node), sample in nodes.items():
            row = conn.execute(
                f"SELECT {', '.join(_NODE_FIELDS)} FROM stats_nodes "
                "WHERE step = ? AND at = ? AND node_id = ?",
                (step, at, node),
            ).fetchone()
            merged = NodeCounts()
            merged.merge(sample)
            if row is not None:
                merged.merge(NodeCounts(*row))
            conn.execute(
                "INSERT OR REPLACE INTO stats_nodes (step, at, node_id, "
                f"{', '.join(_NODE_FIELDS)}) VALUES ({', '.join('?' * (3 + len(_NODE_FIELDS)))})",
                (step, at, node, *(getattr(merged, f) for f in _NODE_FIELDS)),
            )

    def roll_up_sync(self, cutoff: float, keep_hours_from: float) -> int:
        """Fold the minute rows older than `cutoff` (an hour's start) into hour rows, delete
        them, and drop hour rows older than `keep_hours_from`. In one transaction (see `run`):
        a crash leaves either the minutes or the hours, never both, so running it again is
        harmless. How many minute rows were folded."""
        conn = self.db.peewee.connection()
        traffic: dict[TrafficKey, TrafficCounts] = {}
        rows = conn.execute(
            f"SELECT at, model, node_id, {', '.join(_TRAFFIC_SUMS)}, ttft, latency "
            "FROM stats_traffic WHERE step = ? AND at < ?",
            (MINUTE, cutoff),
        ).fetchall()
        for at, model, node, *rest in rows:
            key = (at - at % HOUR, model, node)
            traffic.setdefault(key, TrafficCounts()).merge(_traffic(rest))
        nodes: dict[NodeKey, NodeCounts] = {}
        samples = conn.execute(
            f"SELECT at, node_id, {', '.join(_NODE_FIELDS)} FROM stats_nodes "
            "WHERE step = ? AND at < ?",
            (MINUTE, cutoff),
        ).fetchall()
        for at, node, *sums in samples:
            nodes.setdefault((at - at % HOUR, node), NodeCounts()).merge(NodeCounts(*sums))
        self.save_sync(HOUR, traffic, nodes)
        for table in ("stats_traffic", "stats_nodes"):
            conn.execute(f"DELETE FROM {table} WHERE step = ? AND at < ?", (MINUTE, cutoff))
            conn.execute(f"DELETE FROM {table} WHERE step = ? AND at < ?", (HOUR, keep_hours_from))
        return len(rows) + len(samples)

    # -- reads --------------------------------------------------------------------------
    def last_minute_sync(self) -> tuple[int | None, set[str]]:
        """The start of the newest minute stored, if any, and the models named by stored
        series (minutes or hours)."""
        conn = self.db.peewee.connection()
        last = conn.execute("SELECT MAX(at) FROM stats_traffic WHERE step = ?", (MINUTE,))
        models = conn.execute("SELECT DISTINCT model FROM stats_traffic WHERE model != ''")
        return last.fetchone()[0], {m for (m,) in models}

    def traffic_sync(
        self, step: int, since: float, model: str | None, node: str | None
    ) -> Iterable[tuple[int, str, str, TrafficCounts]]:
        """The stored buckets of one step from `since` on, filtered."""
        for at, m, n, *rest in self.traffic_rows_sync(step, since, model, node):
            yield at, m, n, _traffic(rest)

    def traffic_rows_sync(
        self, step: int, since: float, model: str | None, node: str | None
    ) -> list[TrafficRow]:
        """Like `traffic_sync`, as the rows are stored: (at, model, node id, requests, errors,
        tokens in, tokens out, gen tokens, gen ms, TTFT histogram, latency histogram)."""
        sql = (
            f"SELECT at, model, node_id, {', '.join(_TRAFFIC_SUMS)}, ttft, latency "
            "FROM stats_traffic WHERE step = ? AND at >= ?"
        )
        params: list[object] = [step, since]
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        if node is not None:
            sql += " AND node_id = ?"
            params.append(node)
        return list(self.db.peewee.connection().execute(sql, params))

    def samples_sync(
        self, step: int, since: float, node: str | None
    ) -> Iterable[tuple[int, str, NodeCounts]]:
        """The stored node buckets of one step from `since` on."""
        sql = (
            f"SELECT at, node_id, {', '.join(_NODE_FIELDS)} FROM stats_nodes "
            "WHERE step = ? AND at >= ?"
        )
        params: list[object] = [step, since]
        if node is not None:
            sql += " AND node_id = ?"
            params.append(node)
        for at, n, *sums in self.db.peewee.connection().execute(sql, params):
            yield at, n, NodeCounts(*sums)


def _traffic(row: Any) -> TrafficCounts:
    """A row's sums followed by its two histograms, as counts."""
    requests, errors, tokens_in, tokens_out, gen_tokens, gen_ms, ttft, latency = row
    return TrafficCounts(
        requests,
        errors,
        tokens_in,
        tokens_out,
        gen_tokens,
        gen_ms,
        load_histogram(ttft),
        load_histogram(latency),
    )
