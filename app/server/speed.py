"""How fast a node generates each model, measured from its real answers: tokens per second,
a moving average per model, robust to whatever figures the node reports."""

from __future__ import annotations

import math
import re

ALPHA = 0.3  # weight of the newest answer in the moving average
MIN_SECONDS = 0.01  # shorter generations are all timing noise (and a 0 s answer is a lie)
MAX_RATE = 50_000.0  # tokens/s: far beyond any single stream; above it, a bad measurement
MAX_TOKENS = 10_000_000  # completion tokens one answer may claim
MAX_MODELS = 256  # models remembered per node (as many as an external server may list)
TAIL = 4096  # bytes at the end of an answer searched for its usage block
_KEY = b'"completion_tokens"'
_PROMPT_KEY = b'"prompt_tokens"'
# The count after the key; JSON escapes quotes inside strings, so the key with its real
# quotes cannot come from the generated text.
_COUNT = re.compile(rb'"completion_tokens"\s*:\s*(\d{1,12})(?![\d.eE])')
_PROMPT = re.compile(rb'"prompt_tokens"\s*:\s*(\d{1,12})(?![\d.eE])')


def completion_tokens(*pieces: bytes) -> int | None:
    """The last `usage.completion_tokens` in the end of an answer (the usage block closes a
    whole answer, and is the last event before `[DONE]` in a stream), or None. `pieces` are
    the answer's last buffers in order; only their last TAIL bytes are read."""
    tail = b"".join(p[-TAIL:] for p in pieces)
    at = tail.rfind(_KEY)
    if at < 0:
        return None
    found = _COUNT.match(tail, at)
    return int(found[1]) if found else None


def usage_tokens(*pieces: bytes) -> tuple[int | None, int | None]:
    """(prompt_tokens, completion_tokens) of the last usage block in the end of an answer,
    each None when absent (read as `completion_tokens` reads its count)."""
    # A whole answer comes as one piece: its end as it is, no copy made (~1 µs a request).
    tail = pieces[0][-TAIL:] if len(pieces) == 1 else b"".join(p[-TAIL:] for p in pieces)
    out = tail.rfind(_KEY)
    if out < 0:
        return None, None
    found = _COUNT.match(tail, out)
    # The same usage block's prompt count sits next to its completion count (before it in
    # OpenAI's order, after it in llama-server's).
    at = tail.rfind(_PROMPT_KEY, max(0, out - 200), out)
    if at < 0:
        at = tail.find(_PROMPT_KEY, out, out + 200)
    prompt = _PROMPT.match(tail, at) if at >= 0 else None
    return (int(prompt[1]) if prompt else None), (int(found[1]) if found else None)


class Speed:
    """One node's generation speed per model: an exponentially weighted average of the
    tokens/s of its answers. Bounded (MAX_MODELS, oldest update forgotten first)."""

    __slots__ = ("_rates",)

    def __init__(self) -> None:
        self._rates: dict[str, float] = {}

    def observe(self, model: str, tokens: object, seconds: object) -> float | None:
        """Fold one answer (`tokens` generated in `seconds`) in; the new average, or None when
        the figures are not a measurement (no tokens, no time, not numbers, absurd)."""
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            return None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            return None
        if not 0 < tokens <= MAX_TOKENS or not math.isfinite(seconds) or seconds < MIN_SECONDS:
            return None
        rate = tokens / seconds
        if rate > MAX_RATE:
            return None
        old = self._rates.pop(model, None)  # re-inserted last: the oldest update goes first
        new = rate if old is None else (1 - ALPHA) * old + ALPHA * rate
        self._rates[model] = new
        while len(self._rates) > MAX_MODELS:
            del self._rates[next(iter(self._rates))]
        return new

    def of(self, model: str) -> float | None:
        """Tokens/s for `model`; None when never measured."""
        return self._rates.get(model)

    def forget(self, model: str) -> None:
        """Drop `model`'s figure (the model was deleted)."""
        self._rates.pop(model, None)

    def clear(self) -> None:
        """Drop every figure (the node restarted: what it runs on may have changed)."""
        self._rates.clear()

    def public(self) -> dict[str, float]:
        """`{model: tokens/s}` as `GET /v0/nodes` shows it."""
        return {model: round(rate, 1) for model, rate in self._rates.items()}
