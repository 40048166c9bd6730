"""The dashboard's time series: request records and heartbeats folded into per-minute buckets
off the request path, written to SQLite when each minute closes, read by `GET /v0/stats`.

The history's flusher hands each batch of finished requests to `Stats.flush`; the folding, the
writes and the hourly roll-up all run on the database thread (`StatsStore.run`), which also
owns the open minute, so nothing here needs a lock. After a crash, `Stats.recover` folds again
the requests the history kept past the last minute written: the crash loses only the
heartbeats of the open minute. Heartbeats reach `NodeSamples.beat` (app.server.node_samples),
which only appends to a list.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from app.core.wire import HistoryRow, NodeSeries, StatsJson
from app.db.request_store import RequestStore
from app.db.stats import (
    HOUR,
    MINUTE,
    NodeCounts,
    StatsStore,
    TrafficCounts,
    TrafficRow,
    dump_histogram,
)
from app.server.node_samples import MAX_SERIES, NodeSamples, Reading
from app.server.stats_answer import Table, assemble, bin_of, node_series

CLIENT_LEFT = "the client left mid-stream"  # what the proxy records: the client's doing
MINUTES_KEPT = 24 * HOUR
HOURS_KEPT = 7 * 24 * HOUR
# range -> (step, buckets): the last hour and day by the minute, the last week by the hour.
RANGES = {"1h": (MINUTE, 60), "24h": (MINUTE, 1440), "7d": (HOUR, 168)}
MAX_CACHED = 4  # ranges and filters whose stored rows are kept between two writes (MBs)


def is_error(row: HistoryRow) -> bool:
    """A failure the cluster owns: a 5xx, a 429, or an answer that broke off (a client
    leaving is the client's doing, and a 4xx the request's fault)."""
    status = row["status"]
    if status >= 500 or status == 429:
        return True
    error = row["error"]
    return 200 <= status < 300 and error is not None and error != CLIENT_LEFT


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
        self._stored: dict[tuple[int, int, str | None, str | None], Table] = {}  # read cache
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

    async def recover(self, requests: RequestStore, known: set[str]) -> int:
        """At start, before the first flush: fold again the requests the history recorded
        after the newest minute written (at most a day back), which a crash kept from being
        written. `known`: the models that exist now (with those the stored series name). How
        many requests were folded."""
        return await self.store.run(self._recover_sync, requests, known, self.clock())

    def _recover_sync(self, requests: RequestStore, known: set[str], now: float) -> int:
        last, named = self.store.last_minute_sync()
        since = now - MINUTES_KEPT
        if last is not None:  # a stop writes every open minute; a crash leaves those after it
            since = max(since, last + MINUTE)
        folded, models = 0, known | named
        for rows in requests.since_sync(since):  # a day of a busy history: in chunks
            self._fold_rows(rows, models)
            folded += len(rows)
        # Prometheus' totals count this process's requests only.
        self._tokens.clear()
        self._generated.clear()
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
            self._stored.clear()
            self.store.save_sync(MINUTE, traffic, nodes)
            for key in traffic:
                del self._traffic[key]
            for node_key in nodes:
                del self._nodes[node_key]
        hour = int(now // HOUR)
        if hour != self._rolled_hour:  # at start, then once an hour
            cutoff = int((now - MINUTES_KEPT) // HOUR) * HOUR
            self._stored.clear()
            self.store.roll_up_sync(cutoff, hour * HOUR - HOURS_KEPT)
            self._rolled_hour = hour
        return folded

    def _fold_rows(self, rows: list[HistoryRow], known: set[str]) -> int:
        """Add the rows to the open buckets; how many were errors. The hot loop of a flush."""
        errors = 0
        traffic, generated, tokens = self._traffic, self._generated, self._tokens
        bin_ = bin_of
        for r in rows:
            minute = int(r["at"] // MINUTE) * MINUTE
            model = r["model"] if r["model"] in known else ""
            node = r["node_id"] or ""
            key = (minute, model, node)
            c = traffic.get(key)
            if c is None:
                c = traffic[key] = TrafficCounts()
            c.requests += 1
            status = r["status"]
            if (
                status >= 500
                or status == 429
                or (200 <= status < 300 and r["error"] is not None and r["error"] != CLIENT_LEFT)
            ):  # as is_error says, inline: this loop runs for every request
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
                b = bin_(latency)
                c.ttft[b] = c.ttft.get(b, 0) + 1
            b = bin_(r["duration_ms"])
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
        key = (step, since, model, node)
        stored = self._stored.get(key)
        if stored is None:  # read again only once a minute closed (or the range moved)
            rows: list[TrafficRow] = []
            for table in (HOUR, MINUTE) if step == HOUR else (MINUTE,):
                # the week's hours count the last day's minutes too
                rows += self.store.traffic_rows_sync(table, since, model, node)
            if len(self._stored) >= MAX_CACHED:
                self._stored.clear()
            stored = self._stored[key] = Table(rows)
        current = Table(
            [
                (at, m, n, *_sums(c))
                for (at, m, n), c in self._traffic.items()
                if at >= since and model in (None, m) and node in (None, n)
            ]
        )
        nodes = self._node_series(step, since, node)
        return assemble(range_, step, since, now, (model, node), stored.join(current), nodes)

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
        return node_series(merged)


def _sums(
    c: TrafficCounts,
) -> tuple[int, int, int, int, int, float, bytes | None, bytes | None]:
    """An open bucket as a stored row's columns after its key."""
    return (
        c.requests,
        c.errors,
        c.tokens_in,
        c.tokens_out,
        c.gen_tokens,
        c.gen_ms,
        dump_histogram(c.ttft),
        dump_histogram(c.latency),
    )


def _sum_rates(minutes: Iterable[dict[str, list[float]]]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for per_model in minutes:
        for model, (tok, ms) in per_model.items():
            was = out.get(model, (0.0, 0.0))
            out[model] = (was[0] + tok, was[1] + ms)
    return {m: v for m, v in out.items() if v[1] > 0}
