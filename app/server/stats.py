"""The dashboard's time series: request records and heartbeats folded into per-minute buckets
off the request path, written to SQLite when each minute closes, read by `GET /v0/stats`.

The history's flusher hands each batch of finished requests to `Stats.flush` once a second;
the folding, the writes and the hourly roll-up all run on the database thread (`StatsStore.run`),
which also owns the open minute, so nothing here needs a lock. A crash loses at most the open
minute. Heartbeats reach `NodeSamples.beat`, which only appends to a list.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from app.core.wire import (
    HistoryRow,
    NodeMetrics,
    NodeSample,
    NodeSeries,
    Percentiles,
    StatsBucket,
    StatsGroup,
    StatsJson,
)
from app.db.stats import HOUR, MINUTE, Histogram, NodeCounts, StatsStore, TrafficCounts

CLIENT_LEFT = "the client left mid-stream"  # what the proxy records: the client's doing
MINUTES_KEPT = 24 * HOUR
HOURS_KEPT = 7 * 24 * HOUR
# range -> (step, buckets): the last hour and day by the minute, the last week by the hour.
RANGES = {"1h": (MINUTE, 60), "24h": (MINUTE, 1440), "7d": (HOUR, 168)}
MAX_PENDING_BEATS = 10_000  # if the flusher stalls, heartbeats beyond this are not sampled
MAX_SERIES = 4096  # (node, model) pairs counted for Prometheus: bounded whatever nodes say

# Latency histograms: bin 0 holds [0, 0.1 ms); bin i >= 1 holds [0.1 * 2^((i-1)/4),
# 0.1 * 2^(i/4)) ms, so each bin is 19% wide and a percentile read from its geometric middle
# is within 9.1% (2^(1/8) - 1) of the true value. Bins add exactly, so p50/p95 of any merge
# of buckets (models, nodes, minutes into hours) is as good as one bucket's. 112 bins reach
# 6 hours; the last one takes everything longer.
LOW_MS = 0.1
PER_DOUBLING = 4
BINS = 112


def bin_of(ms: float) -> int:
    """The histogram bin of a duration in milliseconds."""
    if not ms >= LOW_MS:  # also NaN
        return 0
    return min(BINS - 1, 1 + int(math.log2(ms / LOW_MS) * PER_DOUBLING))


def bin_value(b: int) -> float:
    """The value a bin stands for: its geometric middle (its lower edge for the last bin)."""
    if b <= 0:
        return LOW_MS / 2
    if b >= BINS - 1:
        return LOW_MS * 2 ** ((BINS - 2) / PER_DOUBLING)
    return LOW_MS * 2 ** ((b - 0.5) / PER_DOUBLING)


def percentile(h: Histogram, q: float) -> float | None:
    """The q-th quantile (0 < q <= 1) of a histogram, to its bin's resolution."""
    total = sum(h.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for b in sorted(h):
        seen += h[b]
        if seen >= rank:
            return round(bin_value(b), 3)
    return None  # unreachable: the counts add up to total


def is_error(row: HistoryRow) -> bool:
    """A failure the cluster owns: a 5xx, a 429, or an answer that broke off (a client
    leaving is the client's doing, and a 4xx the request's fault)."""
    status = row["status"]
    if status >= 500 or status == 429:
        return True
    error = row["error"]
    return 200 <= status < 300 and error is not None and error != CLIENT_LEFT


# -- node samples -------------------------------------------------------------------
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


# -- traffic --------------------------------------------------------------------------
@dataclass
class Folded:
    """What one flush counted, for the event bus and Prometheus."""

    requests: int = 0
    errors: int = 0
    tokens: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # totals
    rates: dict[str, float] = field(default_factory=dict)  # model -> tokens/s, last minute


class Stats:
    """The open minute in memory, closed minutes and hours in the store."""

    def __init__(
        self,
        store: StatsStore,
        samples: NodeSamples,
        known_model: Callable[[str], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.samples = samples
        self.known_model = known_model  # only models that exist name a series or a group
        self.clock = clock
        # Owned by the database thread (every access is inside `store.run`).
        self._traffic: dict[tuple[int, str, str], TrafficCounts] = {}
        self._nodes: dict[tuple[int, str], NodeCounts] = {}
        self._generated: dict[int, dict[str, list[float]]] = {}  # minute -> model -> [tok, ms]
        self._tokens: dict[tuple[str, str], tuple[int, int]] = {}
        self._rolled_hour: int | None = None
        # Read on the event loop (Prometheus); replaced whole after each flush.
        self.tokens: dict[tuple[str, str], tuple[int, int]] = {}
        self.rates: dict[str, float] = {}

    async def flush(self, rows: list[HistoryRow], final: bool = False) -> Folded:
        """Fold a batch of finished requests and the heartbeats since the last call, write the
        minutes that closed (every open one when `final`), roll old minutes into hours."""
        names = {r["model"] for r in rows}
        known = {n for n in names if self.known_model(n)}
        beats = self.samples.drain()
        folded = await self.store.run(self._flush_sync, rows, known, beats, self.clock(), final)
        self.tokens, self.rates = folded.tokens, folded.rates
        return folded

    async def close(self) -> None:
        """Write the open minute (at stop)."""
        await self.flush([], final=True)

    def _flush_sync(
        self,
        rows: list[HistoryRow],
        known: set[str],
        beats: list[tuple[float, str, Reading]],
        now: float,
        final: bool,
    ) -> Folded:
        folded = Folded(requests=len(rows))
        folded.errors = self._fold_rows(rows, known)
        self._fold_beats(beats)
        current = int(now // MINUTE) * MINUTE
        for minute in [m for m in self._generated if m < current - MINUTE]:
            del self._generated[minute]
        for model, (tok, ms) in _sum_rates(self._generated.values()).items():
            folded.rates[model] = tok / (ms / 1000)
        folded.tokens = dict(self._tokens)
        closing = (lambda at: True) if final else (lambda at: at < current)
        traffic = {k: v for k, v in self._traffic.items() if closing(k[0])}
        nodes = {k: v for k, v in self._nodes.items() if closing(k[0])}
        if traffic or nodes:
            self.store.save_sync(MINUTE, traffic, nodes)
            for key in traffic:
                del self._traffic[key]
            for node_key in nodes:
                del self._nodes[node_key]
        hour = int(now // HOUR)
        if hour != self._rolled_hour:  # at start, then once an hour
            cutoff = int((now - MINUTES_KEPT) // HOUR) * HOUR
            self.store.roll_up_sync(cutoff, hour * HOUR - HOURS_KEPT)
            self._rolled_hour = hour
        return folded

    def _fold_rows(self, rows: list[HistoryRow], known: set[str]) -> int:
        """Add the rows to the open buckets; how many were errors. The hot loop of a flush."""
        errors = 0
        traffic, generated, tokens = self._traffic, self._generated, self._tokens
        for r in rows:
            minute = int(r["at"] // MINUTE) * MINUTE
            model = r["model"] if r["model"] in known else ""
            node = r["node_id"] or ""
            key = (minute, model, node)
            c = traffic.get(key)
            if c is None:
                c = traffic[key] = TrafficCounts()
            c.requests += 1
            if is_error(r):
                c.errors += 1
                errors += 1
            tin, tout, gen_ms = r["tokens_in"] or 0, r["tokens_out"] or 0, r["generation_ms"]
            if tin or tout:
                c.tokens_in += tin
                c.tokens_out += tout
                if model and node and (node_key := (model, node)) in tokens:
                    was_in, was_out = tokens[node_key]
                    tokens[node_key] = (was_in + tin, was_out + tout)
                elif model and node and len(tokens) < MAX_SERIES:
                    tokens[(model, node)] = (tin, tout)
            if tout and gen_ms and gen_ms > 0:
                c.gen_tokens += tout
                c.gen_ms += gen_ms
                if model:
                    acc = generated.setdefault(minute, {}).setdefault(model, [0.0, 0.0])
                    acc[0] += tout
                    acc[1] += gen_ms
            latency = r["latency_ms"]
            if latency is not None:
                b = bin_of(latency)
                c.ttft[b] = c.ttft.get(b, 0) + 1
            b = bin_of(r["duration_ms"])
            c.latency[b] = c.latency.get(b, 0) + 1
        return errors

    def _fold_beats(self, beats: list[tuple[float, str, Reading]]) -> None:
        for at, node, (cpu, used, total, gpu, gpu_used, gpu_total) in beats:
            key = (int(at // MINUTE) * MINUTE, node)
            c = self._nodes.get(key)
            if c is None:
                c = self._nodes[key] = NodeCounts()
            c.beats += 1
            if cpu is not None:
                c.cpu_sum += cpu
                c.cpu_n += 1
            if used is not None and total is not None:
                c.mem_used_sum += used
                c.mem_total_sum += total
                c.mem_n += 1
            if gpu is not None:
                c.gpu_sum += gpu
                c.gpu_n += 1
            if gpu_used is not None and gpu_total is not None:
                c.gpu_used_sum += gpu_used
                c.gpu_total_sum += gpu_total
                c.gpu_mem_n += 1

    # -- reading --------------------------------------------------------------------
    async def query(self, range_: str, model: str | None, node: str | None) -> StatsJson:
        """`GET /v0/stats`: stored buckets and the open minute, merged to the range's step."""
        return await self.store.run(self._query_sync, range_, model, node, self.clock())

    def _query_sync(
        self, range_: str, model: str | None, node: str | None, now: float
    ) -> StatsJson:
        step, count = RANGES[range_]
        since = int(now // step) * step - (count - 1) * step
        traffic: dict[tuple[int, str, str], TrafficCounts] = {}

        def add(at: int, m: str, n: str, c: TrafficCounts) -> None:
            key = (at - at % step, m, n)
            traffic.setdefault(key, TrafficCounts()).merge(c)

        steps = (HOUR, MINUTE) if step == HOUR else (MINUTE,)
        for stored in steps:  # the last day's minutes count in the week's hours too
            for at, m, n, c in self.store.traffic_sync(stored, since, model, node):
                add(at, m, n, c)
        for (at, m, n), c in self._traffic.items():
            if at >= since and model in (None, m) and node in (None, n):
                add(at, m, n, c)

        buckets: dict[int, TrafficCounts] = {}
        by_model: dict[str, TrafficCounts] = {}
        by_node: dict[str, TrafficCounts] = {}
        totals = TrafficCounts()
        for (at, m, n), c in traffic.items():
            buckets.setdefault(at, TrafficCounts()).merge(c)
            totals.merge(c)
            if m:  # "": names no model has, counted in the totals only
                by_model.setdefault(m, TrafficCounts()).merge(c)
            if n:  # "": requests that reached no node
                by_node.setdefault(n, TrafficCounts()).merge(c)
        return {
            "range": range_,
            "step_seconds": step,
            "since": since,
            "until": now,
            "model": model,
            "node": node,
            "buckets": [_bucket(at, buckets[at]) for at in sorted(buckets)],
            "totals": _bucket(since, totals),
            "by_model": _groups(since, by_model),
            "by_node": _groups(since, by_node),
            "nodes": self._node_series(step, since, node),
        }

    def _node_series(self, step: int, since: int, node: str | None) -> list[NodeSeries]:
        merged: dict[tuple[int, str], NodeCounts] = {}

        def add(at: int, n: str, c: NodeCounts) -> None:
            merged.setdefault((at - at % step, n), NodeCounts()).merge(c)

        for stored in (HOUR, MINUTE) if step == HOUR else (MINUTE,):
            for at, n, c in self.store.samples_sync(stored, since, node):
                add(at, n, c)
        for (at, n), c in self._nodes.items():
            if at >= since and node in (None, n):
                add(at, n, c)
        series: dict[str, list[NodeSample]] = {}
        for at, n in sorted(merged):
            series.setdefault(n, []).append(_sample(at, merged[(at, n)]))
        return [{"node_id": n, "samples": series[n]} for n in sorted(series)]


def _sum_rates(minutes: Iterable[dict[str, list[float]]]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for per_model in minutes:
        for model, (tok, ms) in per_model.items():
            was = out.get(model, (0.0, 0.0))
            out[model] = (was[0] + tok, was[1] + ms)
    return {m: v for m, v in out.items() if v[1] > 0}


def _bucket(at: int, c: TrafficCounts) -> StatsBucket:
    return {
        "at": at,
        "requests": c.requests,
        "errors": c.errors,
        "tokens_in": c.tokens_in,
        "tokens_out": c.tokens_out,
        "tokens_per_second": round(c.gen_tokens / (c.gen_ms / 1000), 3) if c.gen_ms > 0 else None,
        "ttft_ms": _percentiles(c.ttft),
        "latency_ms": _percentiles(c.latency),
    }


def _percentiles(h: Histogram) -> Percentiles:
    return {"p50": percentile(h, 0.5), "p95": percentile(h, 0.95)}


def _groups(at: int, groups: dict[str, TrafficCounts]) -> list[StatsGroup]:
    """Busiest first."""
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1].requests, kv[0]))
    return [{"key": key, **_bucket(at, c)} for key, c in ordered]


def _sample(at: int, c: NodeCounts) -> NodeSample:
    def mean(total: float, n: int) -> float | None:
        return total / n if n else None

    def whole(total: float, n: int) -> int | None:
        return round(total / n) if n else None

    cpu, gpu = mean(c.cpu_sum, c.cpu_n), mean(c.gpu_sum, c.gpu_n)
    return {
        "at": at,
        "cpu": None if cpu is None else round(cpu, 4),
        "memory_used_bytes": whole(c.mem_used_sum, c.mem_n),
        "memory_total_bytes": whole(c.mem_total_sum, c.mem_n),
        "gpu_utilization": None if gpu is None else round(gpu, 4),
        "gpu_memory_used_bytes": whole(c.gpu_used_sum, c.gpu_mem_n),
        "gpu_memory_total_bytes": whole(c.gpu_total_sum, c.gpu_mem_n),
    }
