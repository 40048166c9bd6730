"""Which node gets a request: only live nodes with a free slot and the model ready, the
fastest for that model (measured tokens/s), least busy relative to their slots among equally
fast ones; the node that last served the same conversation prefix when it is not much busier
nor much slower; and a bounded FIFO queue per model when every capable node is full. Then
how that node is reached: its `Upstream`. Each request's `Ticket` says where it stands (the
live queue, GET /v0/queue), and each model's measured request time gives a waiter's ETA."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import aiohttp

from app.core.errors import TooManyRequests, UserFacingError
from app.core.settings import DEFAULT_QUEUE_LIMIT, DEFAULT_QUEUE_WAIT
from app.core.wire import QueueEntry, QueueJson, QueueModel
from app.server.node_view import UNLIMITED
from app.server.nodes import NodeRegistry, NodeView
from app.server.upstream import HttpUpstream, Upstream

if TYPE_CHECKING:
    from app.server.metrics import QueueMetrics

AFFINITY_ENTRIES = 10_000
AFFINITY_SLACK = 1  # requests in flight beyond the least busy node that affinity may accept
# Nodes at least this share of the fastest free node's tokens/s count as equally fast: the
# figures move with load and answer length, and equal machines must share the work.
SAME_SPEED = 0.8
# The conversation's node keeps it while at least this share of the fastest one's tokens/s:
# its prompt cache spares re-reading the whole conversation, which a modestly slower node
# repays; a node that generates at less than half the speed loses more than that on any
# answer of a few hundred tokens.
AFFINITY_SPEED = 0.5
DURATION_ALPHA = 0.2  # weight of the newest answer in a model's mean request time
POSITION_HEADER = "x-llmlb-queue-position"  # where a request joined the queue (1: next)
_ids = itertools.count(1)


class Ticket:
    """One request through dispatch, as the live queue shows it: waiting (with the position
    it joined at), then running on a node. Made per request: a few slots, no work."""

    __slots__ = ("client", "endpoint", "id", "model", "node_id", "position", "since", "started")

    def __init__(self, model: str, endpoint: str, client: str | None = None) -> None:
        self.id = next(_ids)
        self.model = model
        self.endpoint = endpoint
        self.client = client
        self.since = 0.0  # wall clock: when it began waiting, then running
        self.started = 0.0  # monotonic: when it began running (its duration's start)
        self.position: int | None = None  # its place when it joined the queue; None: no wait
        self.node_id: str | None = None

    def entry(self, position: int | None, eta: float | None) -> QueueEntry:
        """As GET /v0/queue lists it."""
        return {
            "id": str(self.id),
            "model": self.model,
            "endpoint": self.endpoint,
            "client": self.client,
            "since": self.since,
            "position": position,
            "eta_seconds": eta,
            "node_id": None if position is not None else self.node_id,
        }


class QueueFull(TooManyRequests):
    """Every capable node is busy and the model's queue is full."""

    code = "queue_full"


class QueueTimeout(UserFacingError):
    """A request waited in the queue longer than the limit."""

    status = 504
    code = "queue_timeout"
    type = "server_error"


def affinity_key(body: Mapping[str, object]) -> str | None:
    """The conversation's opening (system prompt + first user turn, or the prompt's start)."""
    messages = body.get("messages")
    prompt = body.get("prompt")
    head: object
    if isinstance(messages, list) and messages:
        head = messages[:2]
    elif isinstance(prompt, str):
        head = prompt[:2000]
    else:
        return None
    text = json.dumps([body.get("model"), head], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


class Dispatcher:
    """Hands out nodes for requests and takes them back."""

    def __init__(
        self,
        nodes: NodeRegistry,
        max_queue: int = DEFAULT_QUEUE_LIMIT,
        max_wait: float = DEFAULT_QUEUE_WAIT,
        metrics: QueueMetrics | None = None,
    ) -> None:
        self.nodes = nodes
        self.max_queue = max_queue
        self.max_wait = max_wait
        self.metrics = metrics
        self.queues: dict[str, deque[asyncio.Event]] = {}
        self._waiting: dict[asyncio.Event, Ticket] = {}  # a queued turn's request
        self.running: dict[int, Ticket] = {}  # by ticket id, from acquire to release
        self.durations: dict[str, float] = {}  # per model: mean seconds from acquire to release
        self.affinity: OrderedDict[str, str] = OrderedDict()
        # Nodes running in this process, by their URL: reached without HTTP.
        self._local: dict[str, Upstream] = {}

    def attach_local(self, url: str, upstream: Upstream) -> None:
        """The node at `url` runs in this process: requests go to `upstream`, not over HTTP
        (the composition root, which builds both, plugs it in)."""
        self._local[url] = upstream

    def detach_local(self, url: str) -> None:
        """Requests to the node at `url` go over HTTP again."""
        self._local.pop(url, None)

    def upstream(self, node: NodeView, http: aiohttp.ClientSession) -> Upstream:
        """How to reach `node`: in-process when it runs here, otherwise HTTP on `http`."""
        local = self._local.get(node.url)
        return local if local is not None else HttpUpstream(http, node)

    def waiting(self, model: str) -> int:
        """Requests queued for `model`."""
        return len(self.queues.get(model, ()))

    def _choose(self, free: list[NodeView], model: str, key: str | None) -> NodeView:
        """The node for one request among `free` ones (each has a slot free).

        Speed first: the nodes within SAME_SPEED of the fastest measured tokens/s for `model`,
        and among those the least busy relative to its slots, then the quickest to answer. A
        node never measured for `model` counts as fast as the fastest: it gets tried, and its
        first answers place it (a new GPU node is learnt at once; a node whose answers carry
        no usage block stays among the fastest, the least busy rule then sharing the work).
        Only free nodes compete: when the fastest is full, the next fastest free one takes the
        request rather than queueing behind it (how long the fast one stays full, and how long
        the answer will be, are unknown; every free slot working is the simple bet)."""
        if len(free) == 1:  # the usual case of one node: nothing to weigh
            return free[0]
        rates = [n.speed.of(model) for n in free]
        fastest = max((r for r in rates if r is not None), default=None)
        pool = free
        if fastest is not None:
            pool = [
                n
                for n, r in zip(free, rates, strict=True)
                if r is None or r >= fastest * SAME_SPEED
            ]
        best = min(pool, key=lambda n: (n.inflight / n.capacity, n.ewma_ms or 0.0))
        sticky = self.affinity.get(key) if key is not None else None
        for node, rate in zip(free, rates, strict=True):
            if (
                node.id == sticky
                and node.inflight <= best.inflight + AFFINITY_SLACK
                and (rate is None or fastest is None or rate >= fastest * AFFINITY_SPEED)
            ):
                return node
        return best

    async def acquire(
        self,
        model: str,
        exclude: set[str],
        key: str | Callable[[], str | None] | None = None,
        ticket: Ticket | None = None,
    ) -> NodeView:
        """A node for `model`; waits its turn (FIFO) while every capable node is full.
        `key` is the conversation's affinity key, or how to compute it: only done when more
        than one node could take the request (hashing the conversation costs a few µs that a
        single node never repays). `ticket` (the request's, when the live queue is to show
        it) is then running there.

        Raises LookupError when no live node has the model at all (the caller says why),
        QueueFull when the queue is full, QueueTimeout after the wait limit (both with the
        queue position header)."""
        deadline = time.monotonic() + self.max_wait
        queue = self.queues.setdefault(model, deque())
        turn: asyncio.Event | None = None
        joined = 0.0
        place = 0  # where this request joined the queue
        try:
            while True:
                capable = self.nodes.candidates(model)
                untried = [n for n in capable if n.id not in exclude] if exclude else capable
                if not untried:
                    raise LookupError(model)
                free = [n for n in untried if n.inflight < n.capacity]
                first = not queue or queue[0] is turn
                if free and first:
                    if callable(key):
                        key = key() if len(capable) > 1 else None
                    node = self._choose(free, model, key)
                    node.inflight += 1
                    self._remember(key, node)
                    if turn is not None:
                        queue.popleft()
                        self._left(model, turn, joined)
                        turn = None
                        if any(n.inflight < n.capacity for n in free):
                            # Room for the next one too (several slots may have freed while
                            # this one waited to run: their wake-ups all landed on it).
                            self._wake(model)
                    if ticket is not None:
                        ticket.node_id = node.id
                        ticket.since, ticket.started = time.time(), time.monotonic()
                        self.running[ticket.id] = ticket
                    return node
                if turn is None:
                    if len(queue) >= self.max_queue:
                        raise QueueFull(
                            f"every node serving '{model}' is busy and {len(queue)} requests "
                            "are waiting; try again shortly",
                            headers={"Retry-After": "2", POSITION_HEADER: str(len(queue) + 1)},
                        )
                    turn = asyncio.Event()
                    queue.append(turn)
                    place = len(queue) if ticket is None else ticket.position or len(queue)
                    joined = self._joined(model, turn, len(queue), ticket)
                    if free:
                        self._wake(model)  # a node is free: the head of the queue goes first
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueueTimeout(
                        f"waited {self.max_wait:.0f} s for a free node serving '{model}'",
                        headers={POSITION_HEADER: str(place)},
                    )
                try:
                    async with asyncio.timeout(remaining):
                        await turn.wait()
                except TimeoutError:
                    continue  # the deadline check above answers
                turn.clear()
        finally:
            if turn is not None and turn in queue:
                was_head = queue[0] is turn
                queue.remove(turn)
                self._left(model, turn, joined)
                if was_head:
                    self._wake(model)  # we leave: the next one may go

    def _joined(
        self, model: str, turn: asyncio.Event, position: int, ticket: Ticket | None
    ) -> float:
        """A request joined `model`'s queue at `position`; when (monotonic)."""
        if ticket is not None:
            if ticket.position is None:  # a retry on another node keeps the first place
                ticket.position = position
            ticket.since = time.time()
            self._waiting[turn] = ticket
        if self.metrics is not None:
            self.metrics.joined(model)
        return time.monotonic()

    def _left(self, model: str, turn: asyncio.Event, joined: float) -> None:
        self._waiting.pop(turn, None)
        if self.metrics is not None:
            self.metrics.left(model, time.monotonic() - joined)

    def _remember(self, key: str | None, node: NodeView) -> None:
        if key is None:
            return
        self.affinity[key] = node.id
        self.affinity.move_to_end(key)
        while len(self.affinity) > AFFINITY_ENTRIES:
            self.affinity.popitem(last=False)

    def release(self, node: NodeView, ticket: Ticket | None = None, ok: bool = False) -> None:
        """A request on `node` ended: the head of a queue for one of its models may go. `ok`:
        it was answered (200), and its time counts in the model's mean request time."""
        node.inflight -= 1
        if ticket is not None:
            self.running.pop(ticket.id, None)
            if ok:
                took = time.monotonic() - ticket.started
                mean = self.durations.get(ticket.model)
                self.durations[ticket.model] = (
                    took if mean is None else mean + DURATION_ALPHA * (took - mean)
                )
        for model in node.models:
            if self._wake(model):
                return

    def _wake(self, model: str) -> bool:
        queue = self.queues.get(model)
        if queue:
            queue[0].set()
            return True
        return False

    def snapshot(self) -> QueueJson:
        """The live queue: each model's waiting requests in order, with their ETA (the
        turns of all the model's slots ahead of them, at its mean request time; None before
        one was measured), the running ones, and each busy model's numbers."""
        waiting: list[QueueEntry] = []
        counts: dict[str, list[int]] = {}  # model -> [waiting, running]
        for running in self.running.values():
            counts.setdefault(running.model, [0, 0])[1] += 1
        for model, queue in self.queues.items():
            if not queue:
                continue
            counts.setdefault(model, [0, 0])[0] = len(queue)
            slots = self.slots(model)
            mean = self.durations.get(model)
            for position, turn in enumerate(queue, 1):
                if (waiter := self._waiting.get(turn)) is not None:
                    eta = None if mean is None or not slots else math.ceil(position / slots) * mean
                    waiting.append(waiter.entry(position, eta))
        models: list[QueueModel] = [
            {"model": m, "waiting": w, "running": r, "slots": self.slots(m)}
            for m, (w, r) in sorted(counts.items())
        ]
        return {
            "waiting": waiting,
            "running": [t.entry(None, None) for t in self.running.values()],
            "models": models,
        }

    def slots(self, model: str) -> int:
        """Requests the live nodes with `model` ready run at once (a server that sets no limit
        counts as UNLIMITED)."""
        return min(UNLIMITED, sum(n.capacity for n in self.nodes.candidates(model)))
