"""What the engine takes and gives: load options, a request's sampling, the items of a stream."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.errors import UserFacingError
from app.core.settings import (
    DEFAULT_CONTEXT_SIZE,
    DEFAULT_FLASH_ATTN,
    DEFAULT_SLOTS,
    DEFAULT_STREAM_INTERVAL,
)


class EngineError(UserFacingError):
    """A model cannot run: bad file, not enough memory, llama.cpp refused it."""

    status = 500
    code = "model_load_failed"
    type = "server_error"


class OutOfMemory(EngineError):
    """The model does not fit the memory free now; the next request tries again."""

    status = 503
    code = "insufficient_memory"


@dataclass(frozen=True)
class EngineOptions:
    """How models are loaded on this node."""

    n_ctx: int = DEFAULT_CONTEXT_SIZE  # per sequence; 0: sized to the model and the memory
    n_threads: int | None = None
    n_gpu_layers: int | None = None  # None: as many as fit (the planner), -1: all, 0: none
    slots: int = DEFAULT_SLOTS  # sequences decoded together (continuous batching)
    flash_attn: bool = DEFAULT_FLASH_ATTN  # off: batched greedy output equals the output alone
    stream_interval: float = DEFAULT_STREAM_INTERVAL  # seconds tokens gather before sending
    memory_limit: int | None = None  # bytes of RAM the loaded models may take in all


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
    logprobs: int | None = None  # None: none; else each token's, with this many alternatives


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token's log-probability and its `top` most likely alternatives (bytes,
    logprob), most likely first: the model's own distribution (see `engine.logprobs`)."""

    token: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...] = ()


@dataclass(frozen=True)
class Delta:
    """Text generated since the last delta."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()  # its tokens', when the request asked for them


@dataclass(frozen=True)
class Finished:
    """The end of a generation, with exact token counts."""

    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    # The stop string that ended it, when one did (what, not how: equal items stay equal).
    stop: str | None = field(default=None, compare=False)
    # As the node measured them (llama-server's `timings`): the prompt's evaluation up to the
    # first token, then the generation after it.
    prompt_ms: float = field(default=0.0, compare=False)
    predicted_ms: float = field(default=0.0, compare=False)


Item = Delta | Finished
Logprob = TokenLogprob | None  # a sampled token's, when its request asked for logprobs
