"""llama.cpp models, each on its own thread: load on first use, generate as a stream, embed.

Requests to one model run one at a time in arrival order (FIFO); a stream never interrupts
another. Generation is our own loop over `Llama.generate`, so token counts are exact and a
cancelled request stops within one token.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter
from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

from app.core.errors import BadRequest, UserFacingError
from app.core.settings import (
    DEFAULT_CONTEXT_SIZE,
    DEFAULT_FLASH_ATTN,
    DEFAULT_GPU_LAYERS,
    DEFAULT_SLOTS,
    DEFAULT_STREAM_INTERVAL,
)
from app.core.system import memory_info
from app.node import llama_log
from app.node.channel import Channel, one_by_one

log = logging.getLogger(__name__)

R = TypeVar("R")


class EngineError(UserFacingError):
    """A model cannot run: bad file, not enough memory, llama.cpp refused it."""

    status = 500
    code = "model_load_failed"
    type = "server_error"


@dataclass(frozen=True)
class EngineOptions:
    """How models are loaded on this node."""

    n_ctx: int = DEFAULT_CONTEXT_SIZE  # per sequence
    n_threads: int | None = None
    n_gpu_layers: int = DEFAULT_GPU_LAYERS
    slots: int = DEFAULT_SLOTS  # sequences decoded together (continuous batching)
    flash_attn: bool = DEFAULT_FLASH_ATTN  # off: batched greedy output equals the output alone
    stream_interval: float = DEFAULT_STREAM_INTERVAL  # seconds tokens gather before sending


@dataclass(frozen=True)
class Sampling:
    """Per-request generation parameters (OpenAI names mapped to llama.cpp's)."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 40
    min_p: float = 0.05
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_penalty: float = 1.0
    grammar: str | None = None  # GBNF text
    json_schema: str | None = None
    logit_bias: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Delta:
    """Text generated since the last delta."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The end of a generation, with exact token counts."""

    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int


Item = Delta | Finished


Emit = Callable[[Item | BaseException], None]


def item_channel(
    cancel: threading.Event, interval: float
) -> tuple[Channel[Item | BaseException], Emit]:
    """A channel from an engine thread to the running loop, and the engine's emit into it (if
    the consumer's loop is gone, emit sets `cancel`: generation stops).

    Text deltas reach the consumer at most once per `interval` seconds (the first at once); the
    end of a generation or an error goes at once, with everything before it."""
    channel: Channel[Item | BaseException] = Channel(asyncio.get_running_loop(), interval)

    def emit(item: Item | BaseException) -> None:
        try:
            channel.put(item, flush=not isinstance(item, Delta))
        except RuntimeError:
            cancel.set()

    return channel, emit


async def item_batches(
    channel: Channel[Item | BaseException],
) -> AsyncGenerator[list[Item], None]:
    """What an engine thread put in `channel`, a batch at a time, up to its Finished.

    Consecutive deltas in a batch (the loop fell behind the engine) become one; an exception
    put in the channel is raised after the items before it."""
    while True:
        batch: list[Item] = []
        for item in await channel.take():
            if isinstance(item, BaseException):
                if batch:
                    yield batch
                raise item
            if batch and isinstance(item, Delta) and isinstance(batch[-1], Delta):
                batch[-1] = Delta(batch[-1].text + item.text)
            else:
                batch.append(item)
            if isinstance(item, Finished):
                yield batch
                return
        yield batch


def check_gguf(path: Path) -> None:
    """Raise EngineError with a readable reason if `path` cannot be a loadable GGUF."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise EngineError(f"cannot read the model file {path.name}: {exc.strerror}") from exc
    if magic != b"GGUF":
        raise EngineError(f"{path.name} is not a GGUF file (its header is {magic!r})")
    memory = memory_info()
    available = memory.available_bytes if memory else None
    if available is not None and size > available:
        raise EngineError(
            f"{path.name} needs {size / 2**30:.1f} GiB of memory; "
            f"this machine has {available / 2**30:.1f} GiB available"
        )


def open_llama(path: Path, **kwargs: Any) -> tuple[llama_cpp.Llama, Jinja2ChatFormatter]:
    """Load a GGUF with llama.cpp (its own error line as the reason on failure), and the
    chat formatter from its template (ChatML when it has none)."""
    check_gguf(path)
    llama_log.install()
    llama_log.recent_problems()
    try:
        llm = llama_cpp.Llama(model_path=str(path), verbose=False, **kwargs)
    except (ValueError, RuntimeError, OSError) as exc:
        problems = [p for p in llama_log.recent_problems() if p]
        reason = problems[-1] if problems else str(exc)
        raise EngineError(f"llama.cpp could not load {path.name}: {reason}") from exc
    template = llm.metadata.get("tokenizer.chat_template") or CHATML_CHAT_TEMPLATE
    bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
    eos = llm._model.token_get_text(llm.token_eos()) if llm.token_eos() != -1 else ""
    return llm, Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)


def render_chat(
    llm: llama_cpp.Llama,
    formatter: Jinja2ChatFormatter,
    messages: list[dict[str, Any]],
    tools: list[Any] | None,
    tool_choice: Any,
) -> tuple[list[int], tuple[str, ...]]:
    """Messages through the model's chat template: (prompt tokens, the template's stops)."""
    try:
        rendered = formatter(
            messages=messages,  # type: ignore[arg-type]
            tools=tools,
            tool_choice=tool_choice,
        )
    except Exception as exc:  # the model's own template rejected the conversation
        raise BadRequest(f"the model's chat template rejected the messages: {exc}") from exc
    tokens = llm.tokenize(
        rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
    )
    return tokens, tuple(s for s in (rendered.stop or []) if isinstance(s, str) and s)


class LlamaRunner(ABC):
    """What both runners share: a llama-cpp-python model, loaded on first use, that renders
    chat prompts and tokenizes text on the runner's executor; `stream` over `batches`."""

    _llm: llama_cpp.Llama | None
    _formatter: Jinja2ChatFormatter | None

    @abstractmethod
    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        """`fn(*args)` off the event loop, where this runner runs llama.cpp calls."""

    @abstractmethod
    def _load(self) -> None:
        """Load the model (no-op when loaded); on the runner's executor."""

    @abstractmethod
    def batches(
        self, tokens: list[int], sampling: Sampling, cancel: threading.Event
    ) -> AsyncGenerator[list[Item], None]:
        """As `stream`, in batches: what was generated since the consumer last asked."""

    # -- prompts ----------------------------------------------------------------
    async def chat_prompt(
        self,
        messages: list[dict[str, Any]],
        tools: list[Any] | None = None,
        tool_choice: Any = None,
    ) -> tuple[list[int], tuple[str, ...]]:
        """Render messages with the model's chat template; (prompt tokens, template stops)."""
        return await self._run(self._chat_prompt, messages, tools, tool_choice)

    def _chat_prompt(
        self, messages: list[dict[str, Any]], tools: list[Any] | None, tool_choice: Any
    ) -> tuple[list[int], tuple[str, ...]]:
        self._load()
        assert self._llm is not None and self._formatter is not None
        return render_chat(self._llm, self._formatter, messages, tools, tool_choice)

    async def text_prompt(self, prompt: str) -> list[int]:
        """Tokenize a plain completion prompt (with BOS)."""
        return await self._run(self._text_prompt, prompt)

    def _text_prompt(self, prompt: str) -> list[int]:
        self._load()
        assert self._llm is not None
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)

    # -- generation -------------------------------------------------------------
    def stream(
        self, tokens: list[int], sampling: Sampling, cancel: threading.Event
    ) -> AsyncGenerator[Item, None]:
        """Generate; yields deltas, then one Finished."""
        return one_by_one(self.batches(tokens, sampling, cancel))


class ModelRunner(LlamaRunner):
    """One model file, its llama.cpp context and the one thread that touches it."""

    def __init__(self, name: str, path: Path, options: EngineOptions, embedding: bool) -> None:
        self.name = name
        self.path = path
        self.options = options
        self.embedding = embedding
        self.last_used = time.monotonic()
        self.active = 0  # requests waiting or running
        self.generated_tokens = 0  # lifetime counter, for status and tests
        self.cancelled_requests = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{name}")
        self._llm: llama_cpp.Llama | None = None
        self._formatter: Jinja2ChatFormatter | None = None

    @property
    def loaded(self) -> bool:
        """True once the model is in memory."""
        return self._llm is not None

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        self.last_used = time.monotonic()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def load(self) -> None:
        """Load the model on its thread (no-op when loaded)."""
        await self._run(self._load)

    def _load(self) -> None:
        if self._llm is not None:
            return
        started = time.monotonic()
        self._llm, self._formatter = open_llama(
            self.path,
            n_ctx=self.options.n_ctx,
            n_threads=self.options.n_threads or max(1, (os.cpu_count() or 2)),
            n_gpu_layers=self.options.n_gpu_layers,
            embedding=self.embedding,
            flash_attn=self.options.flash_attn and not self.embedding,
        )
        log.info("loaded %s in %.2f s", self.name, time.monotonic() - started)

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
        self, tokens: list[int], sampling: Sampling, cancel: threading.Event
    ) -> AsyncGenerator[list[Item], None]:
        """As `stream`, in batches: what was generated since the consumer last asked."""
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
        if len(tokens) >= n_ctx:
            raise BadRequest(
                f"the prompt is {len(tokens)} tokens; this model's context holds {n_ctx}",
                code="context_length_exceeded",
                param="messages",
            )
        limit = n_ctx - len(tokens)
        if s.max_tokens is not None:
            limit = min(limit, s.max_tokens)
        grammar = None
        if s.json_schema is not None:
            grammar = LlamaGrammar.from_json_schema(s.json_schema, verbose=False)
        elif s.grammar is not None:
            grammar = LlamaGrammar.from_string(s.grammar, verbose=False)
        processors = None
        if s.logit_bias:
            ids = np.array(list(s.logit_bias), dtype=np.intc)
            bias = np.array(list(s.logit_bias.values()), dtype=np.single)

            def apply_bias(_ids: Any, scores: Any) -> Any:
                scores[ids] += bias
                return scores

            processors = llama_cpp.LogitsProcessorList([apply_bias])
        llm.set_seed(s.seed if s.seed is not None else int.from_bytes(os.urandom(4), "little"))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = tuple(x for x in s.stop if x)
        holdback = max((len(x) for x in stops), default=1) - 1
        text = ""  # decoded text not yet emitted
        count = 0
        finish = "length"
        if limit <= 0:
            emit(Finished("length", len(tokens), 0))
            return
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
            count += 1
            self.generated_tokens += 1
            text += decoder.decode(llm.detokenize([token]))
            if stops:
                hit = min((i for x in stops if (i := text.find(x)) >= 0), default=-1)
                if hit >= 0:
                    text = text[:hit]
                    finish = "stop"
                    break
                safe = len(text) - holdback
                if safe > 0:
                    emit(Delta(text[:safe]))
                    text = text[safe:]
            elif text:
                emit(Delta(text))
                text = ""
            if count >= limit:
                break
        text += decoder.decode(b"", final=True)
        if text:
            emit(Delta(text))
        emit(Finished(finish, len(tokens), count))

    # -- embeddings -------------------------------------------------------------
    async def embed(self, inputs: list[str]) -> tuple[list[list[float]], int]:
        """Normalized embeddings for each input, and the tokens they took."""
        return await self._run(self._embed, inputs)

    def _embed(self, inputs: list[str]) -> tuple[list[list[float]], int]:
        self._load()
        assert self._llm is not None
        vectors, count = self._llm.embed(inputs, normalize=True, return_count=True)
        return [list(map(float, v)) for v in vectors], int(count)


JSON_GRAMMAR = JSON_GBNF
