"""`GET /v0/stats`'s answer, assembled from traffic rows: the latency histograms' bins, and the
grouping and percentiles done with numpy (a day by the minute is some 17,000 rows for 4 models
on 3 nodes; merged row by row in Python that took over a second of the database thread)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from app.core.wire import NodeSample, NodeSeries, Percentiles, StatsBucket, StatsGroup, StatsJson
from app.db.stats import COUNT, Histogram, NodeCounts, TrafficRow

# Latency histograms: bin 0 holds [0, 0.1 ms); bin i >= 1 holds [0.1 * 2^((i-1)/4),
# 0.1 * 2^(i/4)) ms, so each bin is 19% wide and a percentile read from its geometric middle
# is within 9.1% (2^(1/8) - 1) of the true value. Bins add exactly, so p50/p95 of any merge
# of buckets (models, nodes, minutes into hours) is as good as one bucket's. 112 bins reach
# 6 hours; the last one takes everything longer.
LOW_MS = 0.1
PER_DOUBLING = 4
BINS = 112
_log2 = math.log2
_PER_LOW = 1 / LOW_MS


def bin_of(ms: float) -> int:
    """The histogram bin of a duration in milliseconds."""
    if not ms >= LOW_MS:  # also NaN
        return 0
    b = 1 + int(_log2(ms * _PER_LOW) * PER_DOUBLING)
    return b if b < BINS else BINS - 1


def bin_value(b: int) -> float:
    """The value a bin stands for: its geometric middle (its lower edge for the last bin)."""
    if b <= 0:
        return LOW_MS / 2
    if b >= BINS - 1:
        return LOW_MS * 2 ** ((BINS - 2) / PER_DOUBLING)
    return LOW_MS * 2 ** ((b - 0.5) / PER_DOUBLING)


_VALUES = np.array([round(bin_value(b), 3) for b in range(BINS)])
Matrix = npt.NDArray[np.float64]
Counts = npt.NDArray[np.uint32]  # a histogram per row, kept as stored (a day's are megabytes)


def percentile(h: Histogram, q: float) -> float | None:
    """The q-th quantile (0 < q <= 1) of one histogram, to its bin's resolution."""
    dense = np.zeros((1, BINS))
    dense[0, list(h)] = list(h.values())
    return _quantiles(dense, q)[0]


def _quantiles(hists: Matrix, q: float) -> list[float | None]:
    """The q-th quantile of each row: the first bin where the running count reaches
    ceil(q * count); None for a row that counted nothing."""
    total = hists.sum(axis=1)
    rank = np.maximum(1.0, np.ceil(q * total))
    first = (hists.cumsum(axis=1) < rank[:, None]).sum(axis=1)
    values = _VALUES[np.minimum(first, BINS - 1)]
    return [None if t == 0 else float(v) for t, v in zip(total, values, strict=True)]


def _dense(blobs: Sequence[bytes | None]) -> Counts:
    """Stored histograms (trimmed uint32 counts) as one row each."""
    out = np.zeros((len(blobs), BINS), COUNT)
    for i, blob in enumerate(blobs):
        if blob:
            counts = np.frombuffer(blob, COUNT, min(len(blob) // COUNT.itemsize, BINS))
            out[i, : counts.size] = counts
    return out


def _add_up(index: npt.NDArray[np.intp], size: int, matrix: Matrix | Counts) -> Matrix:
    """Rows of `matrix` added up by group (`index[i]` is row i's group): sorted, then summed
    in runs (np.add.at was 20 times slower)."""
    out = np.zeros((size, matrix.shape[1]))
    if len(index) == 0:
        return out
    order = np.argsort(index, kind="stable")
    ordered = index[order]
    runs = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    out[ordered[runs]] = np.add.reduceat(matrix[order], runs, axis=0, dtype=np.float64)
    return out


class _Groups:
    """Sums and histograms of the rows, added up per group."""

    def __init__(self, sums: Matrix, ttft: Matrix, latency: Matrix) -> None:
        self.sums, self.ttft, self.latency = sums, ttft, latency

    @classmethod
    def of(cls, index: npt.NDArray[np.intp], size: int, table: Table) -> _Groups:
        """The table's rows added up by `index`."""
        return cls(
            _add_up(index, size, table.sums),
            _add_up(index, size, table.ttft),
            _add_up(index, size, table.latency),
        )

    def total(self) -> _Groups:
        """Every group added up in one."""
        return _Groups(
            *(m.sum(axis=0, keepdims=True) for m in (self.sums, self.ttft, self.latency))
        )

    def buckets(self, starts: Sequence[int]) -> list[StatsBucket]:
        """One bucket per group, `starts[i]` its start."""
        ttft = zip(_quantiles(self.ttft, 0.5), _quantiles(self.ttft, 0.95), strict=True)
        latency = zip(_quantiles(self.latency, 0.5), _quantiles(self.latency, 0.95), strict=True)
        return [
            _bucket(at, sums.tolist(), {"p50": t50, "p95": t95}, {"p50": l50, "p95": l95})
            for at, sums, (t50, t95), (l50, l95) in zip(
                starts, self.sums, ttft, latency, strict=True
            )
        ]


class Table:
    """Traffic rows as arrays: their keys, sums and dense histograms."""

    def __init__(self, rows: Sequence[TrafficRow]) -> None:
        self.starts = np.array([r[0] for r in rows], dtype=np.int64)
        self.models = [r[1] for r in rows]
        self.nodes = [r[2] for r in rows]
        self.sums = np.array([r[3:9] for r in rows], dtype=np.float64).reshape(len(rows), 6)
        self.ttft = _dense([r[9] for r in rows])
        self.latency = _dense([r[10] for r in rows])

    def __len__(self) -> int:
        return len(self.models)

    def join(self, other: Table) -> Table:
        """Both tables' rows in one (neither is changed)."""
        out = Table([])
        out.starts = np.concatenate([self.starts, other.starts])
        out.models = self.models + other.models
        out.nodes = self.nodes + other.nodes
        out.sums = np.concatenate([self.sums, other.sums])
        out.ttft = np.concatenate([self.ttft, other.ttft])
        out.latency = np.concatenate([self.latency, other.latency])
        return out


def assemble(
    range_: str,
    step: int,
    since: int,
    now: float,
    filters: tuple[str | None, str | None],
    table: Table,
    nodes: list[NodeSeries],
) -> StatsJson:
    """The answer from every row in the range (stored, and the open minute's), any step."""
    bucket_starts, bucket_index = np.unique(table.starts - table.starts % step, return_inverse=True)
    model, node = filters
    buckets = _Groups.of(bucket_index, len(bucket_starts), table)
    return {
        "range": range_,
        "step_seconds": step,
        "since": since,
        "until": now,
        "model": model,
        "node": node,
        "buckets": buckets.buckets(bucket_starts.tolist()),
        "totals": buckets.total().buckets([since])[0],
        # "": names no model has, and requests that reached no node: in the totals only.
        "by_model": _by(table, table.models, since),
        "by_node": _by(table, table.nodes, since),
        "nodes": nodes,
    }


def _by(table: Table, keys: list[str], since: int) -> list[StatsGroup]:
    """The totals per key, busiest first."""
    ids: dict[str, int] = {}
    index = np.array([ids.setdefault(k, len(ids)) for k in keys], dtype=np.intp)
    totals = _Groups.of(index, len(ids), table).buckets([since] * len(ids))
    groups: list[StatsGroup] = [
        {"key": key, **bucket} for key, bucket in zip(ids, totals, strict=True) if key
    ]
    return sorted(groups, key=lambda g: (-g["requests"], g["key"]))


def _bucket(at: int, sums: list[float], ttft: Percentiles, latency: Percentiles) -> StatsBucket:
    requests, errors, tokens_in, tokens_out, gen_tokens, gen_ms = sums
    return {
        "at": at,
        "requests": int(requests),
        "errors": int(errors),
        "tokens_in": int(tokens_in),
        "tokens_out": int(tokens_out),
        "tokens_per_second": round(gen_tokens / (gen_ms / 1000), 3) if gen_ms > 0 else None,
        "ttft_ms": ttft,
        "latency_ms": latency,
    }


def node_series(merged: dict[tuple[int, str], NodeCounts]) -> list[NodeSeries]:
    """Each node's averages per bucket, oldest first; nodes by id."""
    series: dict[str, list[NodeSample]] = {}
    for at, n in sorted(merged):
        series.setdefault(n, []).append(_sample(at, merged[(at, n)]))
    return [{"node_id": n, "samples": series[n]} for n in sorted(series)]


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
