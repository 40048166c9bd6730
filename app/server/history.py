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
from collections.abc import Iterator

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
# Bytes of bodies kept for requests not yet written. Past it (a flood of big answers faster
# than the writer stores them: bench/proxy.py's synthetic streams, ~1,500 answers of 173 KB
# a second), further requests are recorded without their bodies until it catches up: memory
# stays bounded, and the loop never pickles a backlog of hundreds of MB at once.
BODIES_BUDGET = 16 * 1024 * 1024
CHUNK_BYTES = 2 * 1024 * 1024  # bodies written in one go (and the loop free between chunks)
UNKEPT_WARN_EVERY = 60.0  # seconds between warnings that bodies were not kept
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
        # A flush that lists what was answered must find the batches taken before its own
        # written, even one that the writer process left to this process by dying.
        self._writing = asyncio.Lock()
        self._kept = 0  # bytes of the bodies pending or being written (BODIES_BUDGET)
        self._unkept = 0  # requests recorded without their bodies since the last warning
        self._warned_at = -UNKEPT_WARN_EVERY  # monotonic

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
            self._kept -= _size(self.bodies[: MAX_PENDING // 10])
            del self.pending[: MAX_PENDING // 10]
            del self.bodies[: MAX_PENDING // 10]
            del self.observed[: MAX_PENDING // 10]
        if bodies is not None:
            size = bodies.size
            if self._kept + size > BODIES_BUDGET:
                bodies = None  # the writer is behind: the request is recorded, not its bodies
                self._unkept += 1
            else:
                self._kept += size
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
                pruning = now - self._pruned_at >= PRUNE_EVERY
                prune = pruning  # with the first chunk
                async with self._writing:  # in order: a batch waits for the one before
                    for rows, kept in _chunks(batch, captures):
                        await self._write(rows, kept, prune)
                        prune = False
                if pruning:
                    self._pruned_at = now
        finally:
            self._kept -= _size(captures)
            self._warn_unkept()
            if self.stats is not None:
                await self._fold(batch, throttle)

    async def _write(
        self, rows: list[HistoryRow], captures: list[Capture | None], prune: bool
    ) -> None:
        """One chunk, by the writer process, or where it cannot: on the database thread (which
        then cuts the bodies and assembles streams, in the write's call)."""
        if self.writer is not None and await self.writer.write(rows, captures, KEEP_SECONDS, prune):
            return
        await self.store.add_many(rows, KEEP_SECONDS, lambda: _texts(rows, captures), prune=prune)

    def _warn_unkept(self) -> None:
        now = time.monotonic()
        if self._unkept and now - self._warned_at >= UNKEPT_WARN_EVERY:
            log.warning(
                "%d requests were recorded without their bodies: more than %d MB of bodies "
                "were waiting to be written",
                self._unkept,
                BODIES_BUDGET // (1024 * 1024),
            )
            self._unkept, self._warned_at = 0, now

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
                try:
                    await self.writer.start()
                except Exception:  # the history is then written on the database thread
                    log.exception("the request history's writer process did not start")
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


def _size(captures: list[Capture | None]) -> int:
    return sum(c.size for c in captures if c is not None)


def _chunks(
    rows: list[HistoryRow], captures: list[Capture | None]
) -> Iterator[tuple[list[HistoryRow], list[Capture | None]]]:
    """The batch in chunks of at most BATCH_ROWS rows and about CHUNK_BYTES of bodies."""
    start, size = 0, 0
    for i, capture in enumerate(captures):
        size += 0 if capture is None else capture.size
        if i + 1 - start >= BATCH_ROWS or size >= CHUNK_BYTES:
            yield rows[start : i + 1], captures[start : i + 1]
            start, size = i + 1, 0
    if start < len(rows):
        yield rows[start:], captures[start:]


def _texts(rows: list[HistoryRow], captures: list[Capture | None]) -> list[StoredBodies | None]:
    """The stored text of each row's bodies (on the database thread: parsing, assembling)."""
    return [
        None if c is None else stored(c, row["status"], row["error"])
        for row, c in zip(rows, captures, strict=True)
    ]
