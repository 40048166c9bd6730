"""What the once-a-second flush costs per 1,000 finished requests: the history's insert, the
time series' fold (on the database thread) and both together, on a real SQLite file.

Run: `.venv/bin/python -m bench.stats_flush` (a few seconds). Prints milliseconds per 1,000
rows (median of 20 flushes), for 4 models on 3 nodes, every row with tokens and timings.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from app.core.tasks import TaskSupervisor
from app.core.wire import HistoryRow
from app.db.request_store import RequestStore
from app.db.stats import StatsStore
from app.db.store import Store
from app.server.history import KEEP_SECONDS, RequestHistory
from app.server.node_samples import NodeSamples
from app.server.stats import Stats

ROWS = 1000
RUNS = 20
MODELS = [f"model-{i}" for i in range(4)]


def batch(now: float) -> list[HistoryRow]:
    """A second's worth of finished requests."""
    return [
        {
            "at": now + i / ROWS,
            "endpoint": "/v1/chat/completions",
            "model": MODELS[i % 4],
            "node_id": f"node-{i % 3}",
            "status": 500 if i % 97 == 0 else 200,
            "stream": i % 2 == 0,
            "latency_ms": 20.0 + i % 300,
            "duration_ms": 400.0 + i % 2000,
            "error": None,
            "tokens_in": 100 + i % 50,
            "tokens_out": 200 + i % 100,
            "generation_ms": 300.0 + i % 700,
            "client": "bench",
        }
        for i in range(ROWS)
    ]


async def main() -> None:
    """Measure and print."""
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.db")
        await store.open()
        stats = Stats(StatsStore(store), NodeSamples(), set(MODELS).__contains__)
        history = RequestHistory(RequestStore(store), TaskSupervisor("bench"), stats=stats)
        fold_only, insert_only, both, fold_cpu = [], [], [], []
        for _ in range(RUNS):
            rows = batch(time.time())
            started = time.perf_counter()
            await stats.flush(rows)
            fold_only.append(time.perf_counter() - started)
            started = time.perf_counter()
            await history.store.add_many(rows, KEEP_SECONDS)
            insert_only.append(time.perf_counter() - started)
            history.pending = batch(time.time())
            started = time.perf_counter()
            await history.flush()
            both.append(time.perf_counter() - started)
            started = time.perf_counter()
            stats._fold_rows(rows, set(MODELS))  # the hot loop alone, no thread hop
            fold_cpu.append(time.perf_counter() - started)
        await stats.close()
        await store.close()
    for label, times in (
        ("stats fold (thread hop + fold + minute close)", fold_only),
        ("  of which the fold loop alone", fold_cpu),
        ("history insert (executemany)", insert_only),
        ("history.flush(): insert + stats", both),
    ):
        print(f"{label:48} {statistics.median(times) * 1000:7.2f} ms per {ROWS} rows")


if __name__ == "__main__":
    asyncio.run(main())
