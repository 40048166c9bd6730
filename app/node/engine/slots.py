"""The batched runner's bookkeeping: requests waiting for a slot, the sequence in each slot, and
what each free slot's KV cache still holds, so a prompt that starts the same way (a chat
continuing) goes into that slot and decodes only the rest.

Every method runs with the runner's lock held; none calls llama.cpp except to trim or drop a
slot's KV cells and free a finished sequence's sampler.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llama_cpp

from app.node.engine.channel import Emit
from app.node.engine.tail import TextTail
from app.node.engine.types import OutOfMemory, Sampling


@dataclass
class Request:
    """A stream waiting for a slot."""

    tokens: list[int]
    sampling: Sampling
    cancel: threading.Event
    emit: Emit
    media: Any = None  # vision.Media: a prompt with images, prefilled through libmtmd


@dataclass
class Sequence:
    """A request running in a slot: its sampler, prompt still to prefill and output text."""

    request: Request
    sampler: Any  # llama_sampler_p (owned; freed when the sequence ends)
    tail: TextTail
    pending: deque[int]  # prompt tokens not decoded yet
    n_past: int = 0  # tokens of this sequence in the KV cache
    history: list[int] = field(default_factory=list)  # those tokens, in order
    next_token: int | None = None  # sampled, to decode in the next step
    reusable: bool = True  # False when the KV cells hold images: no later prompt shares them


class Slots:
    """Which sequence runs in each of a context's `n` slots, and who waits for one."""

    def __init__(self, n: int, prompt_cache: bool) -> None:
        self.prompt_cache = prompt_cache
        self.waiting: deque[Request] = deque()
        self.running: list[Sequence | None] = [None] * n
        # What each free slot's KV cache still holds, and when it was freed (for reuse).
        self._cached: list[list[int]] = [[] for _ in range(n)]
        self._freed_at: list[float] = [0.0] * n
        self.mem: Any = None  # llama_memory_t of the loaded context

    def idle(self) -> bool:
        """Nothing waits and nothing runs."""
        return not self.waiting and all(s is None for s in self.running)

    def free_count(self) -> int:
        """Slots not holding a sequence right now."""
        return sum(1 for s in self.running if s is None)

    def forget_cache(self) -> None:
        """The context is gone: no slot holds reusable tokens any more."""
        self._cached = [[] for _ in self.running]

    def cells_in_use(self) -> int:
        """KV cells held: the running sequences' tokens and what free slots keep cached."""
        running = sum(len(s.history) for s in self.running if s is not None)
        return running + sum(len(c) for c in self._cached)

    def evict_cached(self, need: int, total: int) -> bool:
        """Drop free slots' cached tokens, oldest first, until `need` more cells fit in
        `total` (a unified KV cache: the slots share its cells); whether they now fit."""
        order = sorted(range(len(self.running)), key=lambda i: self._freed_at[i])
        for i in order:
            if self.cells_in_use() + need <= total:
                break
            if self.running[i] is None and self._cached[i]:
                self._cached[i] = []
                llama_cpp.llama_memory_seq_rm(self.mem, i, -1, -1)
        return self.cells_in_use() + need <= total

    def make_room(self, total: int, prefill_chunk: int, batch_size: int, name: str) -> None:
        """In a shared KV cache of `total` cells, room for the next step's tokens: free slots'
        cached prompts go first; if the running conversations alone outgrow it, the one with
        the most prompt still to read (the newest, usually) is told the context is full."""
        while True:
            running = [(i, s) for i, s in enumerate(self.running) if s is not None]
            generating = sum(1 for _, s in running if s.next_token is not None)
            budget = min(prefill_chunk, batch_size - generating)
            need = generating + min(budget, sum(len(s.pending) for _, s in running))
            if not running or self.evict_cached(need, total):
                return
            i, victim = max(running, key=lambda r: (len(r[1].pending), -len(r[1].history)))
            victim.request.emit(
                OutOfMemory(
                    f"{name}'s context is full: the conversations running hold "
                    f"{self.cells_in_use()} of its {total} tokens; ask again"
                )
            )
            self.free(i, keep=False)

    def drop_cancelled(self) -> int:
        """Forget waiting requests and free slots whose cancel event is set; how many."""
        kept = deque(r for r in self.waiting if not r.cancel.is_set())
        dropped = len(self.waiting) - len(kept)
        self.waiting = kept
        for i, seq in enumerate(self.running):
            if seq is not None and seq.request.cancel.is_set():
                dropped += 1
                self.free(i)
        return dropped

    def admit(self, start: Callable[[int, Request], Sequence | None]) -> None:
        """Move waiting requests into free slots, in arrival order, `start`ing each.

        Each request gets the free slot whose cached tokens share the longest prefix with its
        prompt (ties: the slot freed longest ago); `start` may use `reuse` to keep that prefix.
        A request `start` fails gets the exception as its answer.
        """
        while self.waiting:
            free = [i for i, seq in enumerate(self.running) if seq is None]
            if not free:
                return
            request = self.waiting.popleft()
            best = max(free, key=lambda i: (self._common(i, request.tokens), -self._freed_at[i]))
            try:
                self.running[best] = start(best, request)
            except BaseException as exc:
                request.emit(exc)

    def _common(self, slot: int, tokens: list[int]) -> int:
        """How many leading tokens of `tokens` slot `slot` still has in its KV cache."""
        if not self.prompt_cache:
            return 0
        n = 0
        for a, b in zip(self._cached[slot], tokens, strict=False):
            if a != b:
                break
            n += 1
        return n

    def reuse(self, slot: int, tokens: list[int]) -> int:
        """Trim slot `slot`'s KV cache to the prompt's cached prefix; how many tokens it kept."""
        keep = min(self._common(slot, tokens), len(tokens) - 1)  # decode one: we need logits
        if keep < len(self._cached[slot]) and not llama_cpp.llama_memory_seq_rm(
            self.mem, slot, keep, -1
        ):
            llama_cpp.llama_memory_seq_rm(self.mem, slot, -1, -1)
            keep = 0
        self._cached[slot] = []
        return keep

    def free(self, i: int, keep: bool = True) -> None:
        """End the sequence in slot `i` and free its sampler.

        Its KV cells stay for a later prompt with the same prefix (`keep` and prompt_cache),
        otherwise they are dropped.
        """
        seq = self.running[i]
        if seq is None:
            return
        self.running[i] = None
        self._freed_at[i] = time.monotonic()
        if keep and self.prompt_cache and seq.reusable:
            self._cached[i] = seq.history
        else:
            self._cached[i] = []
            llama_cpp.llama_memory_seq_rm(self.mem, i, -1, -1)
        llama_cpp.llama_sampler_free(seq.sampler)
