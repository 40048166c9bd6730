"""Token logprobs in OpenAI's two shapes: chat's `logprobs.content` entries and the legacy
completions' `tokens` / `token_logprobs` / `top_logprobs` / `text_offset` lists.

The values are the engine's (`app.node.engine.sampler`: the model's own distribution, before
temperature, penalties, bias and grammar). A token's text is its bytes read as UTF-8; a token
that holds part of a character shows U+FFFD there, and its `bytes` say what it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.node.engine.types import TokenLogprob


def _text(token: bytes) -> str:
    return token.decode("utf-8", errors="replace")


def chat_content(entries: Iterable[TokenLogprob]) -> list[dict[str, Any]]:
    """Chat's `choices[].logprobs.content`: one entry per generated token."""
    return [
        {
            "token": _text(e.token),
            "logprob": e.logprob,
            "bytes": list(e.token),
            "top_logprobs": [
                {"token": _text(t), "logprob": lp, "bytes": list(t)} for t, lp in e.top
            ],
        }
        for e in entries
    ]


def chat_logprobs(entries: list[TokenLogprob] | None) -> dict[str, Any] | None:
    """A chat choice's `logprobs` (None when the request did not ask for them)."""
    if entries is None:
        return None
    return {"content": chat_content(entries), "refusal": None}


def legacy(entries: Iterable[TokenLogprob], offset: int) -> tuple[dict[str, Any], int]:
    """A completions choice's `logprobs` for tokens whose text starts at character `offset`
    of the choice's text, and the offset after them."""
    tokens, values, tops, offsets = [], [], [], []
    for e in entries:
        text = _text(e.token)
        tokens.append(text)
        values.append(e.logprob)
        tops.append({_text(t): lp for t, lp in e.top})
        offsets.append(offset)
        offset += len(text)
    shape = {
        "tokens": tokens,
        "token_logprobs": values,
        "top_logprobs": tops,
        "text_offset": offsets,
    }
    return shape, offset
