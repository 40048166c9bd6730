"""Continuous batching on llama.cpp's low-level API: one decode step serves several sequences.

`BatchedRunner` loads a model once and gives it one llama.cpp context with `n_slots` sequences
(like llama-server's ``-np N``). One engine thread runs the scheduler: each step it admits
waiting requests into free slots, builds ONE `llama_batch` with the next token of every
generating sequence plus a chunk of prompt tokens of sequences still being prefilled, calls
`llama_decode` once, and samples each sequence whose last token produced logits with that
sequence's own sampler chain. A long prompt is prefilled in chunks, so it never stalls the
sequences already generating.

`BatchedRunner.stream` has the same contract as `ModelRunner.stream`: `Delta` items, then one
`Finished` with exact token counts; stop strings are held back and cut and UTF-8 is decoded
incrementally (by the same `TextTail`); a set `cancel` event stops the sequence (and frees its
slot) within one step. Which request runs in which slot is `slots.Slots`' business; the sampler
chain comes from `sampler`.

Flash attention is on by default, as in llama-server (1.3x-1.5x faster on a CPU). Its kernels
sum attention in a batch-shape-dependent order, so a near-tied greedy choice can differ between
a sequence alone and in a batch, as in llama-server; with `flash_attn=False` greedy output in a
batch is token-for-token the output alone.

A finished sequence leaves its tokens in its slot's KV cache; a later prompt that starts with
the same tokens (a chat continuing) is admitted into that slot and decodes only the rest. Sized
to a memory that caps it, the slots share one KV cache, whose cells cached prompts give
up first when a conversation needs them. Not done: embeddings; moving a prefix between slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any, TypeVar

import llama_cpp

from app.core.errors import BadRequest
from app.core.settings import DEFAULT_FLASH_ATTN, DEFAULT_SLOTS
from app.node.engine.base import LlamaRunner, check_prompt, completion_limit
from app.node.engine.channel import item_batches, item_channel
from app.node.engine.llama import decode_error, load_model, open_batch_context
from app.node.engine.offload import Context
from app.node.engine.sampler import logprob_at, sampler_chain
from app.node.engine.slots import Request, Sequence, Slots
from app.node.engine.tail import TextTail
from app.node.engine.types import EngineError, Finished, Item, Logprob, Sampling
from app.node.engine.vision import VisionMixin

log = logging.getLogger(__name__)

R = TypeVar("R")

_EOG = b"\x00<end of generation>"  # a token's cached piece: it ends the sequence


class BatchedRunner(VisionMixin, LlamaRunner):
    """One model, one llama.cpp context with `n_slots` sequences, one scheduler thread.

    Args:
        name: Model name, for logs and thread names.
        path: The GGUF file.
        n_slots: Sequences decoded together (llama.cpp `n_seq_max`).
        ctx_per_slot: Tokens (prompt + completion) one sequence may hold, each slot its own
            cells; None: sized at load to the model's trained context and the memory left
            (the slots share one KV cache when memory caps it: llama.cpp's unified cache).
        n_threads: CPU threads for decoding (default: all cores).
        n_gpu_layers: Layers to offload (-1: all, None: as many as fit the GPU's memory).
        prefill_chunk: At most this many prompt tokens go into one decode step.
        kv_unified: One KV buffer shared by all slots instead of one stream per slot.
        flash_attn: Use flash attention (faster; see the module notes on exactness).
        prompt_cache: Keep a finished sequence's KV cells to reuse a shared prompt prefix.
        stream_interval: Seconds a stream's tokens gather before its consumer is woken (0:
            every token wakes it; the first token and the end never wait).
    """

    def __init__(
        self,
        name: str,
        path: Path,
        n_slots: int = DEFAULT_SLOTS,
        ctx_per_slot: int | None = 2048,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        prefill_chunk: int = 256,
        kv_unified: bool = False,
        flash_attn: bool = DEFAULT_FLASH_ATTN,
        prompt_cache: bool = True,
        stream_interval: float = 0.0,
    ) -> None:
        super().__init__(name, path)
        self.n_slots = n_slots
        self.asked_ctx = ctx_per_slot or None  # None: sized to the model and the memory
        self.ctx_per_slot = ctx_per_slot or 0  # known once loaded when sized
        self.context: Context | None = None
        self.n_threads = n_threads or max(1, os.cpu_count() or 2)
        self.n_gpu_layers = n_gpu_layers
        self.prefill_chunk = max(1, prefill_chunk)
        self.kv_unified = kv_unified
        self.flash_attn = flash_attn
        self.prompt_cache = prompt_cache
        self.stream_interval = stream_interval
        self.prefilled_tokens = 0  # lifetime counters of the batched engine alone
        self.decode_steps = 0
        self.reused_tokens = 0  # prompt tokens found already in a slot's KV cache
        self._lock = threading.Condition()  # guards _slots and _closed
        self._slots = Slots(n_slots, prompt_cache)
        self._closed = False
        self._thread: threading.Thread | None = None
        self._ctx: Any = None  # llama_context_p
        self._vocab: Any = None  # llama_vocab_p
        self._pieces: dict[int, bytes] = {}  # token -> its bytes, or _EOG (asked once each)
        self._n_vocab = 0
        self._batch: llama_cpp.llama_batch | None = None
        self._batch_size = 0
        self._load_lock = threading.Lock()

    # -- properties -------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """True once the model is in memory."""
        return self._ctx is not None

    @property
    def context_length(self) -> int | None:
        """The most tokens one conversation may hold, once loaded."""
        return self.ctx_per_slot if self._ctx is not None else None

    @property
    def free_slots(self) -> int:
        """Slots not holding a sequence right now."""
        with self._lock:
            return self._slots.free_count()

    # -- lifecycle --------------------------------------------------------------
    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def _load(self) -> None:
        with self._load_lock:
            if self._ctx is not None:
                return
            if self._closed:
                raise EngineError(f"{self.name} is closed")
            started = time.monotonic()
            # The high-level object gives us the model, vocabulary, tokenizer and chat
            # template; its own context stays small and unused.
            self.context, self.placement, llm, formatter = load_model(
                self.name,
                self.path,
                slots=self.n_slots,
                asked_ctx=self.asked_ctx,
                requested=self.n_gpu_layers,
                own_ctx=256,
                n_threads=self.n_threads,
            )
            self.ctx_per_slot = self.context.per_sequence
            self._batch_size = max(512, self.prefill_chunk + self.n_slots)
            try:
                ctx = open_batch_context(
                    llm,
                    self.name,
                    self.placement,
                    n_slots=self.n_slots,
                    n_ctx=self.context.total,
                    n_batch=self._batch_size,
                    n_threads=self.n_threads,
                    kv_unified=self.kv_unified or self.context.unified,
                    flash_attn=self.flash_attn,
                )
            except BaseException:
                llm.close()
                raise
            self._ctx = ctx
            self._slots.mem = llama_cpp.llama_get_memory(ctx)
            self._vocab = llm._model.vocab
            self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
            self._batch = llama_cpp.llama_batch_init(self._batch_size, 0, 1)
            self._formatter = formatter
            self._llm = llm
            self._thread = threading.Thread(
                target=self._loop, name=f"batch-engine-{self.name}", daemon=True
            )
            self._thread.start()
            took = time.monotonic() - started
            log.info("loaded %s (%d slots) in %.2f s", self.name, self.n_slots, took)

    async def unload(self) -> None:
        """Free the model's memory when idle; the next request loads it again."""
        await self._run(self._unload)

    def _unload(self) -> None:
        self._close()
        with self._lock:
            self._closed = False
            self._slots.forget_cache()

    async def close(self) -> None:
        """Stop the scheduler, fail waiting requests and free the model."""
        await self._run(self._close)

    def _close(self) -> None:
        # Under the load lock: an unload racing a load waits for the load to finish (its
        # thread then exists and has started) instead of joining a thread not yet started.
        with self._load_lock:
            with self._lock:
                self._closed = True
                self._lock.notify_all()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            if self._batch is not None:
                llama_cpp.llama_batch_free(self._batch)
                self._batch = None
            self._close_projector()
            if self._ctx is not None:
                llama_cpp.llama_free(self._ctx)
                self._ctx = None
                self._slots.mem = None
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    # -- generation -------------------------------------------------------------
    async def batches(
        self, tokens: list[int], sampling: Sampling, cancel: threading.Event, media: Any = None
    ) -> AsyncGenerator[list[Item], None]:
        """As `stream`, in batches: what was generated since the consumer last asked."""
        loop = asyncio.get_running_loop()
        # a gone loop stops this sequence only
        channel, emit = item_channel(cancel, self.stream_interval)
        self.active += 1
        self.last_used = time.monotonic()
        try:
            if not tokens:
                raise BadRequest("the prompt is empty", param="messages")
            if self._ctx is None:
                await loop.run_in_executor(None, self._load)
            check_prompt(len(tokens), self.ctx_per_slot)
            with self._lock:
                if self._closed:
                    raise EngineError(f"{self.name} is closed")
                self._slots.waiting.append(Request(list(tokens), sampling, cancel, emit, media))
                self._lock.notify_all()
            async with contextlib.aclosing(item_batches(channel)) as items:
                async for batch in items:
                    yield batch
        finally:
            cancel.set()  # the consumer left early (client gone): the slot frees next step
            with self._lock:
                self._lock.notify_all()
            self.active -= 1
            self.last_used = time.monotonic()

    # -- the scheduler thread ---------------------------------------------------
    def _loop(self) -> None:
        slots = self._slots
        while True:
            with self._lock:
                while not self._closed and slots.idle():
                    self._lock.wait()
                if self._closed:
                    break
                self.cancelled_requests += slots.drop_cancelled()
                slots.admit(self._start)
            try:
                self._step()
            except Exception as exc:  # a failed decode: fail every running sequence
                log.exception("batch step failed for %s", self.name)
                with self._lock:
                    for i, seq in enumerate(slots.running):
                        if seq is not None:
                            seq.request.emit(exc)
                            slots.free(i, keep=False)
        with self._lock:
            for i, seq in enumerate(slots.running):
                if seq is not None:
                    seq.request.emit(self._gone())
                    slots.free(i)
            while slots.waiting:
                slots.waiting.popleft().emit(self._gone())

    def _gone(self) -> EngineError:
        """What a request still running or waiting is told when the model is closed."""
        return EngineError(
            f"the model '{self.name}' was unloaded before it finished answering (it was "
            "deleted, or the node is stopping); ask again"
        )

    def _start(self, slot: int, request: Request) -> Sequence | None:
        """A sequence for `request` in slot `slot`, reusing what the slot's cache holds of its
        prompt (None when the request is over before it starts: no room for a token)."""
        s = request.sampling
        limit = completion_limit(len(request.tokens), self.ctx_per_slot, s.max_tokens)
        if limit <= 0:
            request.emit(Finished("length", len(request.tokens), 0))
            return None
        sampler = sampler_chain(s, self._vocab, self._n_vocab)
        keep = self._slots.reuse(slot, request.tokens)
        self.reused_tokens += keep
        return Sequence(
            request=request,
            sampler=sampler,
            tail=TextTail(s.stop, limit, request.emit),
            pending=deque(request.tokens[keep:]),
            n_past=keep,
            history=request.tokens[:keep],
        )

    def _step(self) -> None:
        """One llama_decode for every running sequence, then sampling and output."""
        batch = self._batch
        assert batch is not None
        with self._lock:
            if self.context is not None and self.context.unified:
                self._slots.make_room(
                    self.context.total, self.prefill_chunk, self._batch_size, self.name
                )
            running = [(i, s) for i, s in enumerate(self._slots.running) if s is not None]
        if not running:
            return
        self._prefill_media(running)
        n = 0
        outputs: list[tuple[int, Sequence, int]] = []  # (slot, sequence, batch index)

        def add(slot: int, token: int, pos: int, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = pos  # type: ignore[call-overload]  # mistyped in llama_cpp
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = slot
            batch.logits[n] = logits
            n += 1

        for i, seq in running:  # generating sequences first: one token each
            if seq.next_token is not None:
                add(i, seq.next_token, seq.n_past, True)
                seq.history.append(seq.next_token)
                seq.n_past += 1
                seq.next_token = None
                outputs.append((i, seq, n - 1))
        budget = min(self.prefill_chunk, self._batch_size - n)
        prefilled = 0
        for i, seq in running:  # then prompt chunks, lowest slot first, within the budget
            while seq.pending and budget > 0:
                token = seq.pending.popleft()
                last = not seq.pending
                add(i, token, seq.n_past, last)
                seq.history.append(token)
                seq.n_past += 1
                budget -= 1
                prefilled += 1
                if last:
                    outputs.append((i, seq, n - 1))
        if n == 0:
            return
        batch.n_tokens = n
        rc = llama_cpp.llama_decode(self._ctx, batch)
        if rc != 0:
            raise decode_error(self.name, rc, self.placement)
        self.decode_steps += 1
        self.prefilled_tokens += prefilled
        for i, seq, index in outputs:
            if seq.request.cancel.is_set():
                continue  # freed at the start of the next step
            token = llama_cpp.llama_sampler_sample(seq.sampler, self._ctx, index)
            finished = self._accept(seq, token, logprob_at(self, seq, index, token))
            if finished is not None:
                with self._lock:
                    self._slots.free(i)  # before Finished goes out: its consumer sees a free slot
                seq.request.emit(finished)

    def _accept(self, seq: Sequence, token: int, logprob: Logprob = None) -> Finished | None:
        """Handle one sampled token; the Finished item (not yet sent) when the sequence ends."""
        piece = self._pieces.get(token)
        if piece is None:  # first time this token is generated: ask llama.cpp once
            piece = self._pieces[token] = self._piece(token)
        if piece is _EOG:
            finish = "stop"
        else:
            self.generated_tokens += 1
            ended = seq.tail.add(piece, logprob)
            if ended is None:
                seq.next_token = token
                return None
            finish = ended
        return seq.tail.finish(finish, len(seq.request.tokens))

    def _piece(self, token: int) -> bytes:
        """The bytes of one generated token, exactly as ModelRunner decodes them (`_EOG` for an
        end-of-generation token)."""
        assert self._llm is not None
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            return _EOG
        return self._token_bytes(token)
