"""Continuous batching on llama.cpp's low-level API: one decode step serves several sequences.

`BatchedRunner` loads a model once and gives it one llama.cpp context with `n_slots` sequences
(like llama-server's ``-np N``). One engine thread runs the scheduler: each step it admits
waiting requests into free slots, builds ONE `llama_batch` with the next token of every
generating sequence plus a chunk of prompt tokens of sequences still being prefilled, calls
`llama_decode` once, and samples each sequence whose last token produced logits with that
sequence's own sampler chain. A long prompt is prefilled in chunks, so it never stalls the
sequences already generating.

`BatchedRunner.stream` has the same contract as `ModelRunner.stream`: `Delta` items, then one
`Finished` with exact token counts; stop strings are held back and cut; UTF-8 is decoded
incrementally; a set `cancel` event stops the sequence (and frees its slot) within one step.

Flash attention is on by default, as in llama-server: on a CPU it decodes a 25M f32 model
about 1.3x faster alone and 1.5x faster with four streams. Its llama.cpp kernels add up a
row's attention in a different order for different batch shapes (one sequence alone, several
together, long contexts), so a near-tied greedy choice can differ between a sequence run alone
and in a batch, exactly as it does in llama-server. With `flash_attn=False` greedy output in a
batch is token-for-token the output alone and the output of `ModelRunner` with the same
setting.

A finished sequence leaves its tokens in its slot's KV cache; a later prompt that starts with
the same tokens (a chat continuing) is admitted into that slot and decodes only the rest.

Not done: embeddings; moving a cached prefix between slots (each slot is its own KV stream).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import json_schema_to_gbnf

from app.core.errors import BadRequest
from app.core.settings import DEFAULT_FLASH_ATTN, DEFAULT_GPU_LAYERS, DEFAULT_SLOTS
from app.node import llama_log
from app.node.engine import (
    Delta,
    Emit,
    EngineError,
    Finished,
    Item,
    LlamaRunner,
    Sampling,
    item_batches,
    item_channel,
    open_llama,
)

log = logging.getLogger(__name__)

R = TypeVar("R")

_EOG = b"\x00<end of generation>"  # a token's cached piece: it ends the sequence

PENALTY_LAST_N = 64  # what llama_cpp.Llama uses (last_n_tokens_size), for the same results


@dataclass
class _Request:
    """A stream waiting for a slot."""

    tokens: list[int]
    sampling: Sampling
    cancel: threading.Event
    emit: Emit


@dataclass
class _Sequence:
    """A request running in a slot: its sampler, prompt still to prefill and output state."""

    request: _Request
    sampler: Any  # llama_sampler_p (owned; freed when the sequence ends)
    limit: int  # completion tokens allowed
    stops: tuple[str, ...]
    holdback: int
    pending: deque[int]  # prompt tokens not decoded yet
    n_past: int = 0  # tokens of this sequence in the KV cache
    history: list[int] = field(default_factory=list)  # those tokens, in order
    next_token: int | None = None  # sampled, to decode in the next step
    count: int = 0  # completion tokens
    text: str = ""  # decoded, not yet emitted
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )


class BatchedRunner(LlamaRunner):
    """One model, one llama.cpp context with `n_slots` sequences, one scheduler thread.

    Args:
        name: Model name, for logs and thread names.
        path: The GGUF file.
        n_slots: Sequences decoded together (llama.cpp `n_seq_max`).
        ctx_per_slot: Tokens (prompt + completion) one sequence may hold.
        n_threads: CPU threads for decoding (default: all cores).
        n_gpu_layers: Layers to offload (-1: all), as for `llama_cpp.Llama`.
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
        ctx_per_slot: int = 2048,
        n_threads: int | None = None,
        n_gpu_layers: int = DEFAULT_GPU_LAYERS,
        prefill_chunk: int = 256,
        kv_unified: bool = False,
        flash_attn: bool = DEFAULT_FLASH_ATTN,
        prompt_cache: bool = True,
        stream_interval: float = 0.0,
    ) -> None:
        self.name = name
        self.path = path
        self.n_slots = n_slots
        self.ctx_per_slot = ctx_per_slot
        self.n_threads = n_threads or max(1, os.cpu_count() or 2)
        self.n_gpu_layers = n_gpu_layers
        self.prefill_chunk = max(1, prefill_chunk)
        self.kv_unified = kv_unified
        self.flash_attn = flash_attn
        self.prompt_cache = prompt_cache
        self.stream_interval = stream_interval
        self.last_used = time.monotonic()
        self.active = 0  # streams waiting or running
        self.prefilled_tokens = 0  # lifetime counters, for status and tests
        self.generated_tokens = 0
        self.cancelled_requests = 0
        self.decode_steps = 0
        self.reused_tokens = 0  # prompt tokens found already in a slot's KV cache
        self._lock = threading.Condition()
        self._waiting: deque[_Request] = deque()
        self._slots: list[_Sequence | None] = [None] * n_slots
        # What each free slot's KV cache still holds, and when it was freed (for reuse).
        self._cached: list[list[int]] = [[] for _ in range(n_slots)]
        self._freed_at: list[float] = [0.0] * n_slots
        self._closed = False
        self._thread: threading.Thread | None = None
        self._llm: llama_cpp.Llama | None = None
        self._formatter: Jinja2ChatFormatter | None = None
        self._ctx: Any = None  # llama_context_p
        self._mem: Any = None  # llama_memory_t
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
    def slots(self) -> int:
        """How many sequences decode together."""
        return self.n_slots

    @property
    def free_slots(self) -> int:
        """Slots not holding a sequence right now."""
        with self._lock:
            return sum(1 for s in self._slots if s is None)

    # -- lifecycle --------------------------------------------------------------
    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def load(self) -> None:
        """Load the model and start the scheduler thread (no-op when loaded)."""
        await self._run(self._load)

    def _load(self) -> None:
        with self._load_lock:
            if self._ctx is not None:
                return
            if self._closed:
                raise EngineError(f"{self.name} is closed")
            started = time.monotonic()
            # The high-level object gives us the model, vocabulary, tokenizer and chat
            # template; its own context stays small and unused.
            llm, formatter = open_llama(
                self.path,
                n_ctx=min(256, self.ctx_per_slot),
                n_batch=min(256, self.ctx_per_slot),
                n_threads=self.n_threads,
                n_gpu_layers=self.n_gpu_layers,
            )
            self._batch_size = max(512, self.prefill_chunk + self.n_slots)
            params = llama_cpp.llama_context_default_params()
            params.n_ctx = self.n_slots * self.ctx_per_slot
            params.n_batch = self._batch_size
            params.n_ubatch = 512
            params.n_seq_max = self.n_slots
            params.n_threads = self.n_threads
            params.n_threads_batch = self.n_threads
            params.no_perf = True
            # Not unified: each slot has its own KV stream of ctx_per_slot cells.
            params.kv_unified = self.kv_unified
            # AUTO, as llama-server: on wherever the device's kernels support it.
            params.flash_attn_type = (
                llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
                if self.flash_attn
                else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
            ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
            if not ctx:
                llm.close()
                problems = [p for p in llama_log.recent_problems() if p]
                reason = problems[-1] if problems else "llama_init_from_model failed"
                raise EngineError(f"llama.cpp could not create a context for {self.name}: {reason}")
            self._ctx = ctx
            self._mem = llama_cpp.llama_get_memory(ctx)
            self._vocab = llm._model.vocab
            self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
            self._batch = llama_cpp.llama_batch_init(self._batch_size, 0, 1)
            self._formatter = formatter
            self._llm = llm
            self._thread = threading.Thread(
                target=self._loop, name=f"batch-engine-{self.name}", daemon=True
            )
            self._thread.start()
            log.info(
                "loaded %s (%d slots of %d tokens) in %.2f s",
                self.name,
                self.n_slots,
                self.ctx_per_slot,
                time.monotonic() - started,
            )

    async def unload(self) -> None:
        """Free the model's memory when idle; the next request loads it again."""
        await self._run(self._unload)

    def _unload(self) -> None:
        self._close()
        with self._lock:
            self._closed = False
            self._cached = [[] for _ in range(self.n_slots)]

    async def close(self) -> None:
        """Stop the scheduler, fail waiting requests and free the model."""
        await self._run(self._close)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._load_lock:
            if self._batch is not None:
                llama_cpp.llama_batch_free(self._batch)
                self._batch = None
            if self._ctx is not None:
                llama_cpp.llama_free(self._ctx)
                self._ctx = None
                self._mem = None
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    # -- generation -------------------------------------------------------------
    async def batches(
        self, tokens: list[int], sampling: Sampling, cancel: threading.Event
    ) -> AsyncGenerator[list[Item], None]:
        """As `stream`, in batches: what was generated since the consumer last asked."""
        loop = asyncio.get_running_loop()
        # a gone loop stops this sequence only
        channel, emit = item_channel(cancel, self.stream_interval)
        self.active += 1
        self.last_used = time.monotonic()
        try:
            if len(tokens) >= self.ctx_per_slot:
                raise BadRequest(
                    f"the prompt is {len(tokens)} tokens; this model's context holds "
                    f"{self.ctx_per_slot}",
                    code="context_length_exceeded",
                    param="messages",
                )
            if not tokens:
                raise BadRequest("the prompt is empty", param="messages")
            if self._ctx is None:
                await loop.run_in_executor(None, self._load)
            with self._lock:
                if self._closed:
                    raise EngineError(f"{self.name} is closed")
                self._waiting.append(_Request(list(tokens), sampling, cancel, emit))
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
        while True:
            with self._lock:
                while (
                    not self._closed and not self._waiting and all(s is None for s in self._slots)
                ):
                    self._lock.wait()
                if self._closed:
                    break
                self._drop_cancelled()
                self._admit()
            try:
                self._step()
            except Exception as exc:  # a failed decode: fail every running sequence
                log.exception("batch step failed for %s", self.name)
                with self._lock:
                    for i, seq in enumerate(self._slots):
                        if seq is not None:
                            seq.request.emit(exc)
                            self._free(i, keep=False)
        with self._lock:
            for i, seq in enumerate(self._slots):
                if seq is not None:
                    seq.request.emit(EngineError(f"{self.name} was closed"))
                    self._free(i)
            while self._waiting:
                self._waiting.popleft().emit(EngineError(f"{self.name} was closed"))

    def _drop_cancelled(self) -> None:
        """Forget waiting requests and free slots whose cancel event is set (lock held)."""
        kept = deque(r for r in self._waiting if not r.cancel.is_set())
        self.cancelled_requests += len(self._waiting) - len(kept)
        self._waiting = kept
        for i, seq in enumerate(self._slots):
            if seq is not None and seq.request.cancel.is_set():
                self.cancelled_requests += 1
                self._free(i)

    def _admit(self) -> None:
        """Move waiting requests into free slots, in arrival order (lock held).

        Each request gets the free slot whose cached tokens share the longest prefix with its
        prompt (ties: the slot freed longest ago), and only the rest of the prompt is decoded.
        """
        while self._waiting:
            free = [i for i, seq in enumerate(self._slots) if seq is None]
            if not free:
                return
            request = self._waiting.popleft()
            best = max(free, key=lambda i: (self._common(i, request.tokens), -self._freed_at[i]))
            try:
                self._slots[best] = self._start(best, request)
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

    def _reuse(self, slot: int, tokens: list[int]) -> int:
        """Trim slot `slot`'s KV cache to the prompt's cached prefix; how many tokens it kept."""
        keep = min(self._common(slot, tokens), len(tokens) - 1)  # decode one: we need logits
        if keep < len(self._cached[slot]) and not llama_cpp.llama_memory_seq_rm(
            self._mem, slot, keep, -1
        ):
            llama_cpp.llama_memory_seq_rm(self._mem, slot, -1, -1)
            keep = 0
        self._cached[slot] = []
        self.reused_tokens += keep
        return keep

    def _start(self, slot: int, request: _Request) -> _Sequence | None:
        s = request.sampling
        limit = self.ctx_per_slot - len(request.tokens)
        if s.max_tokens is not None:
            limit = min(limit, s.max_tokens)
        if limit <= 0:
            request.emit(Finished("length", len(request.tokens), 0))
            return None
        stops = tuple(x for x in s.stop if x)
        sampler = self._make_sampler(s)
        keep = self._reuse(slot, request.tokens)
        return _Sequence(
            request=request,
            sampler=sampler,
            limit=limit,
            stops=stops,
            holdback=max((len(x) for x in stops), default=1) - 1,
            pending=deque(request.tokens[keep:]),
            n_past=keep,
            history=request.tokens[:keep],
        )

    def _make_sampler(self, s: Sampling) -> Any:
        """A sampler chain like llama_cpp.Llama's, for one sequence."""
        grammar: str | None = None
        if s.json_schema is not None:
            try:
                grammar = json_schema_to_gbnf(s.json_schema)
            except Exception as exc:
                raise BadRequest(
                    f"unsupported JSON schema: {exc}", param="response_format"
                ) from exc
        elif s.grammar is not None:
            grammar = s.grammar
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        try:
            if s.logit_bias:
                biases = (llama_cpp.llama_logit_bias * len(s.logit_bias))(
                    *(llama_cpp.llama_logit_bias(int(t), float(b)) for t, b in s.logit_bias.items())
                )
                add = llama_cpp.llama_sampler_init_logit_bias(
                    self._n_vocab, len(s.logit_bias), biases
                )
                llama_cpp.llama_sampler_chain_add(chain, add)
            if s.repeat_penalty != 1.0 or s.frequency_penalty or s.presence_penalty:
                llama_cpp.llama_sampler_chain_add(
                    chain,
                    llama_cpp.llama_sampler_init_penalties(
                        self._n_vocab,
                        PENALTY_LAST_N,
                        s.repeat_penalty,
                        s.frequency_penalty,
                        s.presence_penalty,
                    ),
                )
            if grammar is not None:
                g = llama_cpp.llama_sampler_init_grammar(
                    self._vocab, grammar.encode("utf-8"), b"root"
                )
                if not g:
                    raise BadRequest("the grammar does not parse", param="grammar")
                llama_cpp.llama_sampler_chain_add(chain, g)
            if s.temperature == 0.0:
                llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
            else:
                seed = s.seed if s.seed is not None else int.from_bytes(os.urandom(4), "little")
                seed &= 0xFFFFFFFF
                if s.temperature > 0.0:
                    for part in (
                        llama_cpp.llama_sampler_init_top_k(s.top_k),
                        llama_cpp.llama_sampler_init_typical(1.0, 1),
                        llama_cpp.llama_sampler_init_top_p(s.top_p, 1),
                        llama_cpp.llama_sampler_init_min_p(s.min_p, 1),
                        llama_cpp.llama_sampler_init_temp(s.temperature),
                    ):
                        llama_cpp.llama_sampler_chain_add(chain, part)
                llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed))
        except BaseException:
            llama_cpp.llama_sampler_free(chain)
            raise
        return chain

    def _free(self, i: int, keep: bool = True) -> None:
        """End the sequence in slot `i` and free its sampler (lock held).

        Its KV cells stay for a later prompt with the same prefix (`keep` and prompt_cache),
        otherwise they are dropped.
        """
        seq = self._slots[i]
        if seq is None:
            return
        self._slots[i] = None
        self._freed_at[i] = time.monotonic()
        if keep and self.prompt_cache:
            self._cached[i] = seq.history
        else:
            self._cached[i] = []
            llama_cpp.llama_memory_seq_rm(self._mem, i, -1, -1)
        llama_cpp.llama_sampler_free(seq.sampler)

    def _step(self) -> None:
        """One llama_decode for every running sequence, then sampling and output."""
        batch = self._batch
        assert batch is not None
        with self._lock:
            running = [(i, s) for i, s in enumerate(self._slots) if s is not None]
        if not running:
            return
        n = 0
        outputs: list[tuple[int, _Sequence, int]] = []  # (slot, sequence, batch index)

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
            raise EngineError(f"llama_decode failed ({rc}) for {self.name}")
        self.decode_steps += 1
        self.prefilled_tokens += prefilled
        for i, seq, index in outputs:
            if seq.request.cancel.is_set():
                continue  # freed at the start of the next step
            token = llama_cpp.llama_sampler_sample(seq.sampler, self._ctx, index)
            finished = self._accept(seq, token)
            if finished is not None:
                with self._lock:
                    self._free(i)  # before Finished goes out: its consumer sees a free slot
                seq.request.emit(finished)

    def _accept(self, seq: _Sequence, token: int) -> Finished | None:
        """Handle one sampled token; the Finished item (not yet sent) when the sequence ends."""
        emit = seq.request.emit
        finish: str | None = None
        piece = self._pieces.get(token)
        if piece is None:  # first time this token is generated: ask llama.cpp once
            piece = self._pieces[token] = self._piece(token)
        if piece is _EOG:
            finish = "stop"
        else:
            seq.count += 1
            self.generated_tokens += 1
            seq.text += seq.decoder.decode(piece)
            if seq.stops:
                hit = min((j for x in seq.stops if (j := seq.text.find(x)) >= 0), default=-1)
                if hit >= 0:
                    seq.text = seq.text[:hit]
                    finish = "stop"
                else:
                    safe = len(seq.text) - seq.holdback
                    if safe > 0:
                        emit(Delta(seq.text[:safe]))
                        seq.text = seq.text[safe:]
            elif seq.text:
                emit(Delta(seq.text))
                seq.text = ""
            if finish is None and seq.count >= seq.limit:
                finish = "length"
        if finish is None:
            seq.next_token = token
            return None
        seq.text += seq.decoder.decode(b"", final=True)
        if seq.text:
            emit(Delta(seq.text))
        return Finished(finish, len(seq.request.tokens), seq.count)

    def _piece(self, token: int) -> bytes:
        """The bytes of one generated token, exactly as ModelRunner decodes them (`_EOG` for an
        end-of-generation token)."""
        assert self._llm is not None
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            return _EOG
        return self._llm.detokenize([token])
