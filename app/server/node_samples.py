"""Each node's heartbeats as the dashboard samples them: device use per heartbeat, noted on
arrival (one tuple appended) and folded per minute by `app.server.stats`; and the model loads
and unloads Prometheus counts, seen as changes of `loaded_models` between heartbeats."""

from __future__ import annotations

import time
from collections.abc import Callable

from app.core.wire import NodeMetrics

MAX_PENDING_BEATS = 10_000  # if the flusher stalls, heartbeats beyond this are not sampled
MAX_SERIES = 4096  # (node, model) pairs counted for Prometheus: bounded whatever nodes say

Reading = tuple[float | None, int | None, int | None, float | None, int | None, int | None]


def reading(metrics: NodeMetrics) -> Reading:
    """(cpu, RAM used, RAM total, GPU use, GPU memory used, GPU memory total) of a heartbeat,
    each None where the node did not report it."""
    system = metrics["system"]
    cpu: float | None = None
    cores = system.get("cpu_count", 0)
    if "load_average" in system and cores > 0:
        cpu = min(1.0, max(0.0, system["load_average"] / cores))
    used = total = None
    if "memory_total_bytes" in system and "memory_available_bytes" in system:
        total = system["memory_total_bytes"]
        used = max(0, total - system["memory_available_bytes"])
    devices = metrics["devices"]
    uses = [min(1.0, d["utilization"]) for d in devices if d["utilization"] is not None]
    gpu = sum(uses) / len(uses) if uses else None
    gpu_total = sum(d["total_bytes"] for d in devices) if devices else None
    gpu_used = sum(max(0, d["total_bytes"] - d["free_bytes"]) for d in devices) if devices else None
    return cpu, used, total, gpu, gpu_used, gpu_total


class NodeSamples:
    """Takes every heartbeat (cheap: one tuple appended) and counts model loads and unloads:
    the changes of a node's `loaded_models` between its heartbeats."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.pending: list[tuple[float, str, Reading]] = []
        self.loads: dict[tuple[str, str], int] = {}  # (node, model) -> count
        self.unloads: dict[tuple[str, str], int] = {}

    def beat(self, node_id: str, before: NodeMetrics | None, after: NodeMetrics) -> None:
        """Note a heartbeat; `before` is the node's previous one (None: none since we started,
        when what it holds loaded is not news)."""
        if len(self.pending) < MAX_PENDING_BEATS:
            self.pending.append((self.clock(), node_id, reading(after)))
        if before is None:
            return
        old, new = set(before["loaded_models"]), set(after["loaded_models"])
        for model in new - old:
            _count(self.loads, (node_id, model))
        for model in old - new:
            _count(self.unloads, (node_id, model))

    def drain(self) -> list[tuple[float, str, Reading]]:
        """The heartbeats noted since the last call."""
        taken, self.pending = self.pending, []
        return taken


def _count(counts: dict[tuple[str, str], int], key: tuple[str, str]) -> None:
    if key in counts or len(counts) < MAX_SERIES:
        counts[key] = counts.get(key, 0) + 1
