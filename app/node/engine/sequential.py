"""The sequential runner: one llama.cpp model on its own thread, one request at a time.

Requests to one model run one at a time in arrival order (FIFO); a stream never interrupts
another. Generation is our own loop over `Llama.generate`, so token counts are exact and a
cancelled request stops within one token. Embeddings, and generation with LLMLB_SLOTS=0, run
here; generation otherwise runs on the batched runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import llama_cpp

from app.core.errors import BadRequest
from app.node.engine import pooling
from app.node.engine.base import LlamaRunner, check_prompt, completion_limit
from app.node.engine.channel import Emit, item_batches, item_channel
from app.node.engine.llama import load_model
from app.node.engine.sampler import (
    llama_grammar,
    logit_bias_processors,
    random_seed,
    token_logprob,
)
from app.node.engine.tail import TextTail
from app.node.engine.types import EngineOptions, Finished, Item, Sampling

log = logging.getLogger(__name__)

R = TypeVar("R")


class ModelRunner(LlamaRunner):
    """One model file, its llama.cpp context and the one thread that touches it."""

    def __init__(self, name: str, path: Path, options: EngineOptions, embedding: bool) -> None:
        super().__init__(name, path, embedding)
        self.options = options
        self.n_gpu_layers = options.n_gpu_layers
        self.asked_ctx = options.n_ctx or None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{name}")

    @property
    def loaded(self) -> bool:
        """True once the model is in memory."""
        return self._llm is not None

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        self.last_used = time.monotonic()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _load(self) -> None:
        if self._llm is not None:
            return
        started = time.monotonic()
        _context, self.placement, self._llm, self._formatter = load_model(
            self.name,
            self.path,
            slots=1,
            asked_ctx=self.asked_ctx,
            requested=self.options.n_gpu_layers,
            n_threads=self.options.n_threads or max(1, (os.cpu_count() or 2)),
            embedding=self.embedding,
            flash_attn=self.options.flash_attn and not self.embedding,
        )
        log.info("loaded %s in %.2f s", self.name, time.monotonic() - started)

    @property
    def context_length(self) -> int | None:
        """The most tokens one conversation may hold, once loaded."""
        return self._llm.n_ctx() if self._llm is not None else None

    async def unload(self) -> None:
        """Free the model's memory (it loads again on the next request)."""
        await self._run(self._unload)

    def _unload(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
            log.info("unloaded %s", self.name)

    async def close(self) -> None:
        """Unload and stop the thread."""
        try:
            await self.unload()
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- generation -------------------------------------------------------------
    async def batches(
        self, tokens: list[int], sampling: Sampling, cancel: threading.Event, media: Any = None
    ) -> AsyncGenerator[list[Item], None]:
        """As `stream`, in batches: what was generated since the consumer last asked."""
        if media is not None:  # images are prefilled through a slot of the batched engine
            raise BadRequest(
                "images need the batched engine; this node runs one request at a time "
                "(LLMLB_SLOTS=0)",
                param="messages",
                code="model_not_vision",
            )
        loop = asyncio.get_running_loop()
        channel, emit = item_channel(cancel, self.options.stream_interval)
        self.active += 1
        future = loop.run_in_executor(
            self._executor, self._generate_safely, tokens, sampling, cancel, emit
        )
        try:
            async with contextlib.aclosing(item_batches(channel)) as items:
                async for batch in items:
                    yield batch
        finally:
            cancel.set()  # the consumer left early (client gone): stop within one token
            self.active -= 1
            self.last_used = time.monotonic()
            future.add_done_callback(lambda f: f.exception())

    def _generate_safely(
        self,
        tokens: list[int],
        sampling: Sampling,
        cancel: threading.Event,
        emit: Emit,
    ) -> None:
        try:
            self._generate(tokens, sampling, cancel, emit)
        except BaseException as exc:
            emit(exc)

    def _generate(
        self,
        tokens: list[int],
        s: Sampling,
        cancel: threading.Event,
        emit: Emit,
    ) -> None:
        self._load()
        llm = self._llm
        assert llm is not None
        if cancel.is_set():
            self.cancelled_requests += 1
            return
        n_ctx = llm.n_ctx()
        check_prompt(len(tokens), n_ctx)
        limit = completion_limit(len(tokens), n_ctx, s.max_tokens)
        grammar = llama_grammar(s)
        processors = logit_bias_processors(s.logit_bias)
        llm.set_seed(s.seed if s.seed is not None else random_seed())
        if limit <= 0:
            emit(Finished("length", len(tokens), 0))
            return
        tail = TextTail(s.stop, limit, emit)
        finish = "length"
        for token in llm.generate(
            tokens,
            top_k=s.top_k,
            top_p=s.top_p,
            min_p=s.min_p,
            temp=s.temperature,
            repeat_penalty=s.repeat_penalty,
            frequency_penalty=s.frequency_penalty,
            presence_penalty=s.presence_penalty,
            grammar=grammar,
            logits_processor=processors,
            reset=True,
        ):
            if cancel.is_set():
                self.cancelled_requests += 1
                return
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                finish = "stop"
                break
            self.generated_tokens += 1
            logprob = None
            if s.logprobs is not None:  # the logits it was sampled from are the last decoded
                logits = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
                logprob = token_logprob(logits, llm.n_vocab(), token, s.logprobs, self._token_bytes)
            ended = tail.add(self._token_bytes(token), logprob)
            if ended is not None:
                finish = ended
                break
        emit(tail.finish(finish, len(tokens)))

    # -- pooled outputs: embeddings, reranking ----------------------------------
    @property
    def embedding_size(self) -> int | None:
        """The length of the model's embeddings, once loaded."""
        return self._llm.n_embd() if self._llm is not None else None

    async def embed(self, inputs: list[str | list[int]]) -> tuple[list[list[float]], int]:
        """Unit-length embeddings of texts or token lists, and the tokens they took;
        BadRequest for an input beyond the context (never cut)."""
        return await self._run(self._pooled, pooling.embed, inputs)

    async def rerank(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        """The score of each (query, document) pair, and the tokens they took."""
        return await self._run(self._pooled, pooling.rerank, query, documents)

    def _pooled(self, fn: Callable[..., R], *args: Any) -> R:
        self._load()
        assert self._llm is not None
        return fn(self._llm, *args)
