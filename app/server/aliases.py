"""Model aliases: names clients choose for themselves (Claude Code asks for `claude-…`)
mapped to a model served here, by the `model_aliases` setting (`pattern=model`, comma-separated,
`*` matching any run of characters)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import lru_cache


@lru_cache(maxsize=8)
def parse_aliases(text: str) -> tuple[tuple[str, str], ...]:
    """`claude-*=qwen3-8b, gpt-4o=llama3` as (pattern, model) pairs, first match wins;
    ValueError names an entry that is not `pattern=model`."""
    pairs = []
    for entry in text.split(","):
        if not entry.strip():
            continue
        pattern, sep, model = (part.strip() for part in entry.partition("="))
        if not sep or not pattern or not model:
            raise ValueError(f"LLMLB_MODEL_ALIASES: {entry.strip()!r} is not pattern=model")
        pairs.append((pattern, model))
    return tuple(pairs)


def resolve(model: str, text: str) -> str | None:
    """The model an alias maps `model` to, or None when no alias matches."""
    for pattern, target in parse_aliases(text):
        if fnmatchcase(model, pattern):
            return target
    return None
