"""Which node gets a request: only live nodes with a free slot and the model ready, the
fastest for that model (measured tokens/s), least busy relative to their slots among equally
fast ones; the node that last served the same conversation prefix when it is not much busier
nor much slower; and a bounded FIFO queue per model when every capable node is full. Then
how that node is reached: its `Upstream`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict, deque
from collections.abc import Mapping

import aiohttp

from app.core.errors import TooManyRequests, UserFacingError
from app.core.settings import DEFAULT_QUEUE_LIMIT, DEFAULT_QUEUE_WAIT
from app.server.nodes import NodeRegistry, NodeView
from app.server.upstream import HttpUpstream, Upstream

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
    ) -> None:
        self.nodes = nodes
        self.max_queue = max_queue
        self.max_wait = max_wait
        self.queues: dict[str, deque[asyncio.Event]] = {}
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

    def _free(self, model: str, exclude: set[str]) -> list[NodeView]:
        return [
            n
            for n in self.nodes.candidates(model)
            if n.id not in exclude and n.inflight < n.capacity
        ]

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

    async def acquire(self, model: str, exclude: set[str], key: str | None = None) -> NodeView:
        """A node for `model`; waits its turn (FIFO) while every capable node is full.

        Raises LookupError when no live node has the model at all (the caller says why),
        QueueFull when the queue is full, QueueTimeout after the wait limit."""
        deadline = time.monotonic() + self.max_wait
        queue = self.queues.setdefault(model, deque())
        turn: asyncio.Event | None = None
        try:
            while True:
                if not any(n.id not in exclude for n in self.nodes.candidates(model)):
                    raise LookupError(model)
                free = self._free(model, exclude)
                first = not queue or queue[0] is turn
                if free and first:
                    node = self._choose(free, model, key)
                    node.inflight += 1
                    self._remember(key, node)
                    if turn is not None:
                        queue.popleft()
                        turn = None
                        if any(n.inflight < n.capacity for n in free):
                            # Room for the next one too (several slots may have freed while
                            # this one waited to run: their wake-ups all landed on it).
                            self._wake(model)
                    return node
                if turn is None:
                    if len(queue) >= self.max_queue:
                        raise QueueFull(
                            f"every node serving '{model}' is busy and {len(queue)} requests "
                            "are waiting; try again shortly",
                            headers={"Retry-After": "2"},
                        )
                    turn = asyncio.Event()
                    queue.append(turn)
                    if free:
                        self._wake(model)  # a node is free: the head of the queue goes first
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueueTimeout(
                        f"waited {self.max_wait:.0f} s for a free node serving '{model}'"
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
                if was_head:
                    self._wake(model)  # we leave: the next one may go

    def _remember(self, key: str | None, node: NodeView) -> None:
        if key is None:
            return
        self.affinity[key] = node.id
        self.affinity.move_to_end(key)
        while len(self.affinity) > AFFINITY_ENTRIES:
            self.affinity.popitem(last=False)

    def release(self, node: NodeView) -> None:
        """A request on `node` ended: the head of a queue for one of its models may go."""
        node.inflight -= 1
        for model in node.models:
            if self._wake(model):
                return

    def _wake(self, model: str) -> bool:
        queue = self.queues.get(model)
        if queue:
            queue[0].set()
            return True
        return False
