"""What every runner is: one model file, its counters, prompts rendered and tokenized on the
runner's own thread, and `stream` over the runner's `batches`."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from app.core.errors import BadRequest
from app.node.engine.channel import one_by_one
from app.node.engine.llama import control_tokens, render_chat
from app.node.engine.offload import Plan
from app.node.engine.types import Item, Sampling
from app.node.reasoning import MARKER_TEXTS

R = TypeVar("R")
# Up to this many bytes per context token a prompt is tokenized without the size check (only
# a vocabulary whose longest piece is shorter could refuse it by size, and then the token
# count refuses it anyway): the vocabulary is measured only for a very large prompt.
_CHEAP_TOKEN_BYTES = 16


def check_prompt(n_tokens: int, n_ctx: int) -> None:
    """BadRequest when a prompt of `n_tokens` leaves no room in a context of `n_ctx`."""
    if n_tokens >= n_ctx:
        raise BadRequest(
            f"the prompt is {n_tokens} tokens; this model's context holds {n_ctx}",
            code="context_length_exceeded",
            param="messages",
        )


def completion_limit(n_prompt: int, n_ctx: int, max_tokens: int | None) -> int:
    """How many tokens a completion may have: what the context has left, at most max_tokens."""
    limit = n_ctx - n_prompt
    return limit if max_tokens is None else min(limit, max_tokens)


def split_prefill(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """A conversation that ends with an assistant message is a prefill: that message is the
    start of the answer, to be continued, not a turn to close and answer anew: (the messages
    before it, its text); (all messages, "") otherwise. The template renders the messages
    before it with its generation prompt, and the text follows: the prompt ends inside the
    assistant's turn, as llama.cpp's server does it. A message with tool calls is a turn."""
    last = messages[-1] if len(messages) > 1 else None
    if (
        last is None
        or last.get("role") != "assistant"
        or last.get("tool_calls")
        or not isinstance(last.get("content"), str)
    ):
        return messages, ""
    return messages[:-1], last["content"]


class LlamaRunner(ABC):
    """What both runners share: a llama-cpp-python model, loaded on first use, that renders
    chat prompts and tokenizes text on the runner's executor; `stream` over `batches`.

    The counters are read by the node's status and by tests, from any thread.
    """

    def __init__(self, name: str, path: Path, embedding: bool = False) -> None:
        self.name = name
        self.path = path
        self.embedding = embedding  # loaded for embeddings, not generation
        self.last_used = time.monotonic()
        self.active = 0  # requests waiting or running
        self.generated_tokens = 0  # lifetime counters
        self.cancelled_requests = 0
        self.n_gpu_layers: int | None = None  # as asked: None plans as many as fit
        self.asked_ctx: int | None = None  # tokens per conversation as asked; None: sized
        self.placement: Plan | None = None  # where the layers went, once loaded
        self._llm: llama_cpp.Llama | None = None
        self._formatter: Jinja2ChatFormatter | None = None
        self._markers: tuple[llama_cpp.Llama, frozenset[int]] | None = None  # _token_bytes
        self._longest: tuple[llama_cpp.Llama, int] | None = None  # the longest token, bytes

    def _token_bytes(self, token: int) -> bytes:
        """A generated token's bytes as clients read them: control tokens say nothing, except
        reasoning markers that are control tokens (Magistral's [THINK]), which the reasoning
        split must see (llama.cpp's server keeps them too)."""
        llm = self._llm
        assert llm is not None
        if self._markers is None or self._markers[0] is not llm:  # loaded (again)
            self._markers = (llm, control_tokens(llm, MARKER_TEXTS))
        return llm.detokenize([token], special=token in self._markers[1])

    @property
    def context_length(self) -> int | None:
        """The most tokens one conversation may hold, once loaded."""
        return None

    @property
    @abstractmethod
    def loaded(self) -> bool:
        """True once the model is in memory."""

    @abstractmethod
    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        """`fn(*args)` off the event loop, where this runner runs llama.cpp calls."""

    @abstractmethod
    def _load(self) -> None:
        """Load the model (no-op when loaded); on the runner's executor."""

    async def load(self) -> None:
        """Load the model (no-op when loaded)."""
        await self._run(self._load)
        # Just asked for: the idle reaper must not unload it before its request is queued.
        self.last_used = time.monotonic()

    @abstractmethod
    async def unload(self) -> None:
        """Free the model's memory; the next request loads it again."""

    @abstractmethod
    async def close(self) -> None:
        """Free the model and stop the runner's thread for good."""

    @abstractmethod
    def batches(
        self,
        tokens: list[int],
        sampling: Sampling,
        cancel: threading.Event,
        media: Any = None,
    ) -> AsyncGenerator[list[Item], None]:
        """As `stream`, in batches: what was generated since the consumer last asked. `media`
        (a `vision.Media`) is a prompt with images; `tokens` then only stand for its length."""

    # -- prompts ----------------------------------------------------------------
    async def chat_prompt(
        self,
        messages: list[dict[str, Any]],
        tools: list[Any] | None = None,
        tool_choice: Any = None,
        template_kwargs: dict[str, Any] | None = None,
    ) -> tuple[list[int], tuple[str, ...], str]:
        """Render messages with the model's chat template; (prompt tokens, template stops,
        prompt text)."""
        return await self._run(self._chat_prompt, messages, tools, tool_choice, template_kwargs)

    def _chat_prompt(
        self,
        messages: list[dict[str, Any]],
        tools: list[Any] | None,
        tool_choice: Any,
        template_kwargs: dict[str, Any] | None,
    ) -> tuple[list[int], tuple[str, ...], str]:
        self._load()
        assert self._llm is not None and self._formatter is not None
        messages, prefill = split_prefill(messages)
        return render_chat(
            self._llm,
            self._formatter,
            messages,
            tools,
            tool_choice,
            template_kwargs,
            prefill,
            self._check_size,
        )

    def _check_size(self, n_bytes: int) -> None:
        """BadRequest, before tokenizing, for a prompt of `n_bytes` that cannot fit the
        context whatever its tokens: one token is at most the vocabulary's longest piece.
        A body of tens of megabytes is refused at once, not after seconds of tokenizing."""
        n_ctx = self.context_length
        if not n_ctx or n_bytes <= n_ctx * _CHEAP_TOKEN_BYTES:
            return  # the usual case: nothing to measure
        llm = self._llm
        assert llm is not None
        if self._longest is None or self._longest[0] is not llm:  # loaded (again)
            self._longest = (llm, max(map(len, self._vocab_pieces())))
        longest = self._longest[1]
        if n_bytes > n_ctx * longest:
            raise BadRequest(
                f"the prompt is {n_bytes} bytes, more than {n_ctx} tokens of this model "
                f"(each at most {longest} bytes) can hold; this model's context "
                f"holds {n_ctx}",
                code="context_length_exceeded",
                param="messages",
            )

    def _vocab_pieces(self) -> Iterator[bytes]:
        llm = self._llm
        assert llm is not None
        for token in range(llm.n_vocab()):
            yield llm.detokenize([token], special=True)

    async def text_prompt(self, prompt: str) -> list[int]:
        """Tokenize a plain completion prompt (with BOS)."""
        return await self._run(self._text_prompt, prompt)

    def _text_prompt(self, prompt: str) -> list[int]:
        self._load()
        assert self._llm is not None
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)

    # -- generation -------------------------------------------------------------
    def stream(
        self, tokens: list[int], sampling: Sampling, cancel: threading.Event, media: Any = None
    ) -> AsyncGenerator[Item, None]:
        """Generate; yields deltas, then one Finished."""
        return one_by_one(self.batches(tokens, sampling, cancel, media))
