"""What the request path pays for the request history's bodies and the live queue, per request.

`python -m bench.request_capture`: record() without and with a body capture (the client's body
and the answer kept by reference), acquire()+release() without and with a queue ticket, each
timed over 2,000 requests, 40 runs interleaved A/B (the machine is shared: the best run of each
is the cost), 80,000 requests per variant; the per-buffer cost of keeping a stream's buffers;
then what the flusher does once a second for 1,000 requests, on the database thread.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from app.core.events import EventBus
from app.core.tasks import TaskSupervisor
from app.core.types import ModelState, NodeModelState, NodeStatus
from app.core.wire import NodeInfo
from app.db.request_store import RequestStore
from app.db.store import Store
from app.server.bodies import RAW_STREAM_CAP, Capture
from app.server.dispatch import Dispatcher, Ticket
from app.server.history import RequestHistory
from app.server.metrics import Metrics
from app.server.nodes import NodeRegistry, NodeView

N = 2_000  # requests per timed run
RUNS = 40
REQUEST = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi " * 80}]}).encode()
ANSWER = b'{"choices":[{"message":{"content":"hello"}}]}' * 10
CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"tok"}}]}\n\n'


def _registry() -> NodeRegistry:
    reg = NodeRegistry(None, EventBus(), TaskSupervisor("bench"), "admin")  # type: ignore[arg-type]
    view = NodeView(
        id="a",
        name="a",
        url="http://a",
        token_hash="a",
        status=NodeStatus.ONLINE,
        info=NodeInfo(slots=10**6),
    )
    view.models["m"] = NodeModelState("m", ModelState.READY, node_id="a", node_online=True)
    reg.nodes["a"] = view
    return reg


def _pair(a: Callable[[], None], b: Callable[[], None]) -> tuple[float, float]:
    """Best µs per request of `a` and of `b`, their runs interleaved."""
    best = [float("inf"), float("inf")]
    for _ in range(RUNS):
        for i, f in enumerate((a, b)):
            start = time.perf_counter()
            f()
            best[i] = min(best[i], (time.perf_counter() - start) / N * 1e6)
    return best[0], best[1]


def _record(history: RequestHistory, bodies: bool) -> Callable[[], None]:
    def run() -> None:
        for _ in range(N):
            started = time.perf_counter()
            capture = None
            if bodies:
                capture = Capture()
                capture.keep_request(REQUEST)
                capture.keep_response(ANSWER)
            history.record(
                "/v1/chat/completions", "m", "a", 200, False, started, 1.0, client="alice",
                tokens_in=3, tokens_out=5, generation_ms=2.0, bodies=capture,
            )  # fmt: skip
        history.pending.clear()
        history.bodies.clear()

    return run


def _dispatch(d: Dispatcher, ticketed: bool) -> Callable[[], None]:
    def run() -> None:
        for _ in range(N):
            ticket = Ticket("m", "/v1/chat/completions", "alice") if ticketed else None
            step = d.acquire("m", set(), None, ticket)
            try:
                step.send(None)  # a free slot: acquire returns without waiting
                raise AssertionError("acquire waited")
            except StopIteration as done:
                d.release(done.value, ticket, True)

    return run


def _buffers() -> None:
    for _ in range(N):
        parts: list[bytes] = []
        size = 0
        for _ in range(64):  # as _stream keeps each relayed buffer
            if size < RAW_STREAM_CAP:
                parts.append(CHUNK)
                size += len(CHUNK)


async def _flush_ms(kind: str) -> float:
    """The flusher's write of 1,000 requests (best of 5)."""
    events = [
        b'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
        b'"delta":{"content":"w%d "},"finish_reason":null}]}\n\n' % i
        for i in range(64)
    ] + [b"data: [DONE]\n\n"]
    best = float("inf")
    for _ in range(5):
        store = Store(Path(tempfile.mkdtemp()) / "bench.db")
        await store.open()
        history = RequestHistory(RequestStore(store), TaskSupervisor("bench"))
        for _ in range(1000):
            capture = None
            if kind != "none":
                capture = Capture()
                capture.keep_request(REQUEST)
                if kind == "plain":
                    capture.keep_response(ANSWER)
                else:
                    capture.parts = list(events)
            history.record(
                "/v1/chat/completions", "m", "a", 200, kind != "plain", 0.0, 1.0, bodies=capture
            )
        start = time.perf_counter()
        await history.flush()
        best = min(best, (time.perf_counter() - start) * 1000)
        await store.close()
    return best


async def main() -> None:
    """Print the costs."""
    store = Store(Path(tempfile.mkdtemp()) / "bench.db")
    await store.open()
    reg = _registry()
    metrics = Metrics(reg)
    history = RequestHistory(RequestStore(store), TaskSupervisor("bench"), metrics)
    d = Dispatcher(reg, metrics=metrics.queue)
    plain, kept = _pair(_record(history, False), _record(history, True))
    bare, ticketed = _pair(_dispatch(d, False), _dispatch(d, True))
    buffer_ns = min(_timed(_buffers) for _ in range(RUNS)) / 64 * 1000
    await store.close()
    print(f"record():            {plain:6.2f} µs -> with bodies {kept:6.2f} (+{kept - plain:.2f})")
    print(
        f"acquire()+release(): {bare:6.2f} µs -> with ticket {ticketed:6.2f} "
        f"(+{ticketed - bare:.2f})"
    )
    print(f"a stream's buffer kept: {buffer_ns:.0f} ns each")
    print(f"added per request: {kept - plain + ticketed - bare:.2f} µs (+ the buffers of a stream)")
    for kind in ("none", "plain", "stream64"):
        print(f"flush of 1,000 requests, bodies {kind:8s}: {await _flush_ms(kind):6.1f} ms")


def _timed(f: Callable[[], None]) -> float:
    start = time.perf_counter()
    f()
    return (time.perf_counter() - start) / N * 1e6


if __name__ == "__main__":
    asyncio.run(main())
