"""The request record: which node served what, how fast, how it ended, and what was sent and
answered. Recorded in memory on the request path and written to SQLite in small batches, off
that path: by the history's own writer process (`app.server.history_process`, which cuts the
bodies and assembles streams without taking the event loop's GIL), or on the database thread
where that process cannot run. Each batch is then folded into the dashboard's time series
(`app.server.stats`) and announced on the event bus (`TrafficRecorded`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from app.core.events import EventBus, TrafficRecorded
from app.core.tasks import TaskSupervisor
from app.core.wire import HistoryRow
from app.db.request_store import RequestStore
from app.db.rows import StoredBodies
from app.server.bodies import Capture, stored
from app.server.dispatch import Dispatcher
from app.server.history_process import WriterProcess
from app.server.metrics import Metrics, Observed
from app.server.stats import Stats

log = logging.getLogger(__name__)
KEEP_SECONDS = 7 * 24 * 3600  # the spec keeps a week of history
# A batch is written once it holds BATCH_ROWS requests, or FLUSH_EVERY seconds after the last
# write. Small batches under load: a write's turn on the database thread takes the GIL from the
# event loop in stretches as long as the batch, and the requests in flight then wait behind it
# (bench/proxy.py's p99 at c=64: 39-52 ms with a batch a second, 22-25 ms with ~200 rows).
FLUSH_EVERY = 0.25
BATCH_ROWS = 128
PRUNE_EVERY = 10.0  # drop what is past the retention at most this often (seconds)
ANNOUNCE_EVERY = 1.0  # TrafficRecorded, at most this often from the background flusher
MAX_PENDING = 100_000  # if the disk stalls, drop the oldest rather than grow without bound
MAX_MODEL_CHARS = 256  # a model name is the client's text: keep a bounded, storable copy
MAX_ERROR_CHARS = 1000


class RequestHistory:
    """Buffers request records and flushes them in one transaction."""

    def __init__(
        self,
        store: RequestStore,
        supervisor: TaskSupervisor,
        metrics: Metrics | None = None,
        stats: Stats | None = None,
        bus: EventBus | None = None,
        dispatcher: Dispatcher | None = None,  # its queues' length travels with the event
        writer: WriterProcess | None = None,  # writes the batches; else the database thread
    ) -> None:
        self.store = store
        self.supervisor = supervisor
        self.metrics = metrics
        self.stats = stats
        self.bus = bus
        self.dispatcher = dispatcher
        self.writer = writer
        self.pending: list[HistoryRow] = []
        self.bodies: list[Capture | None] = []  # bodies[i]: what pending[i] sent and got
        self.observed: list[Observed] = []  # for the metrics, which a scrape reads
        self._unannounced = (0, 0)  # requests and errors flushed but not yet announced
        self._announced_at = 0.0  # monotonic
        self._full = asyncio.Event()  # set when BATCH_ROWS are pending
        self._pruned_at = -PRUNE_EVERY  # monotonic

    def start(self) -> None:
        """Start the flusher."""
        self.supervisor.spawn(self._flusher(), "request-history")

    def record(
        self,
        endpoint: str,
        model: str,
        node_id: str | None,
        status: int,
        stream: bool,
        started: float,
        latency_ms: float | None,
        error: str | None = None,
        known_model: bool = True,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        generation_ms: float | None = None,
        client: str | None = None,
        bodies: Capture | None = None,
    ) -> None:
        """Note one finished request (cheap: a dict appended to a list; `bodies` holds only
        references, read by the flusher). Only a model that exists names a metrics series:
        series are never freed."""
        if not known_model:  # a registered name is ours, bounded and storable already
            model = _storable(model, MAX_MODEL_CHARS)
        # Counted into Prometheus by the flusher, in one step per series (labels() and inc()
        # per request cost more than the whole tuple).
        self.observed.append((endpoint, model if known_model else "", status, latency_ms))
        if len(self.pending) >= MAX_PENDING:
            del self.pending[: MAX_PENDING // 10]
            del self.bodies[: MAX_PENDING // 10]
            del self.observed[: MAX_PENDING // 10]
        self.bodies.append(bodies)
        self.pending.append(
            {
                "at": time.time(),
                "endpoint": endpoint,
                "model": model,
                "node_id": node_id,
                "status": status,
                "stream": stream,
                "latency_ms": latency_ms,
                "duration_ms": (time.perf_counter() - started) * 1000,
                "error": None if error is None else _storable(error, MAX_ERROR_CHARS),
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "generation_ms": generation_ms,
                "client": client,
            }
        )
        if len(self.pending) == BATCH_ROWS:
            self._full.set()

    def count_observed(self) -> None:
        """Hand the requests finished since the last call to the metrics."""
        if self.observed:
            observed, self.observed = self.observed, []
            if self.metrics is not None:
                self.metrics.observe_many(observed)

    async def flush(self, throttle: bool = False) -> None:
        """Write what is pending, and fold it into the time series (which closes the minutes
        that ended, so this runs also when nothing is pending); announce it at once, or with
        `throttle` at most every ANNOUNCE_EVERY seconds."""
        batch, captures = self.pending, self.bodies
        self.pending, self.bodies = [], []
        self.count_observed()
        try:
            if batch:
                now = time.monotonic()
                prune = now - self._pruned_at >= PRUNE_EVERY
                written = self.writer is not None and await self.writer.write(
                    batch, captures, KEEP_SECONDS, prune
                )
                if not written:  # no writer process: the bodies are cut and assembled on the
                    # database thread, in the write's call
                    await self.store.add_many(
                        batch, KEEP_SECONDS, lambda: _texts(batch, captures), prune=prune
                    )
                if prune:
                    self._pruned_at = now
        finally:
            if self.stats is not None:
                await self._fold(batch, throttle)

    async def _fold(self, batch: list[HistoryRow], throttle: bool) -> None:
        assert self.stats is not None
        folded = await self.stats.flush(batch)
        requests, errors = self._unannounced
        requests, errors = requests + folded.requests, errors + folded.errors
        now = time.monotonic()
        if throttle and now - self._announced_at < ANNOUNCE_EVERY:
            self._unannounced = (requests, errors)
            return
        if requests and self.bus is not None:
            waiting = 0
            if self.dispatcher is not None:
                waiting = sum(len(q) for q in self.dispatcher.queues.values())
            self.bus.publish(TrafficRecorded(time.time(), requests, errors, waiting))
            self._announced_at = now
        self._unannounced = (0, 0)

    async def _last_flush(self) -> None:
        try:
            await self.flush()
        finally:
            try:
                if self.stats is not None:
                    await self.stats.close()  # the open minute too
            finally:
                if self.writer is not None:
                    await self.writer.close()

    async def _flusher(self) -> None:
        try:
            if self.writer is not None:
                await self.writer.start()
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FLUSH_EVERY):
                        await self._full.wait()
                self._full.clear()
                try:
                    await self.flush(throttle=True)
                except Exception:
                    log.exception("could not write the request history")
        finally:
            await asyncio.shield(self._last_flush())


def _storable(text: str, limit: int) -> str:
    """At most `limit` characters that SQLite can store: a lone surrogate from the client's
    JSON ("\\ud800") is written as its escape, so it cannot fail the whole batch."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")[:limit]


def _texts(rows: list[HistoryRow], captures: list[Capture | None]) -> list[StoredBodies | None]:
    """The stored text of each row's bodies (on the database thread: parsing, assembling)."""
    return [
        None if c is None else stored(c, row["status"], row["error"])
        for row, c in zip(rows, captures, strict=True)
    ]
