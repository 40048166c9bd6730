"""What the Playground sends: the conversation fitted to the model's context window.

Pure functions, no Qt: the oldest turns are left out first (never the system prompt or the
newest message), a file too large for what is left is cut with a note, and room is kept for
the answer. There is no tokenizer here, so tokens are estimated conservatively from UTF-8
bytes (about 4 per token in English, 2-3 per token in Japanese with today's tokenizers);
when the node still finds the prompt too long, its 400 names both numbers and `corrected`
learns from them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from app.core.wire import JsonObject, JsonValue

DEFAULT_CONTEXT = 4096  # a model whose context is unknown is assumed to hold this much
BYTES_PER_TOKEN = 3.0  # UTF-8 bytes per token assumed: fewer than real tokenizers use
PER_MESSAGE = 8  # the chat template's tokens around each message (role, markers)
PER_PROMPT = 16  # the template's tokens around the whole prompt (BOS, the answer's start)
IMAGE_TOKENS = 768  # an image part, as a vision projector turns it into tokens
ANSWER_SHARE = 4  # without a smaller max tokens, a quarter of the context is kept for it
MIN_FILE_TOKENS = 64  # an older file cut shorter than this is left out with its message
SAFETY = 0.9  # after the node counted, the learned ratio is made this much more careful
_FILE = re.compile(r'<file name="(?P<name>[^"]*)">\n(?P<text>.*)\n</file>', re.DOTALL)
_EXCEEDED = re.compile(r"the prompt is (\d+) tokens; this model's context holds (\d+)")


@dataclass(frozen=True)
class Window:
    """The model's context (tokens), the room kept for the answer, and the estimate's ratio."""

    context: int
    answer: int
    bytes_per_token: float = BYTES_PER_TOKEN

    @property
    def budget(self) -> int:
        """How many tokens the prompt may take."""
        return self.context - self.answer - PER_PROMPT

    def tokens(self, text: str) -> int:
        """The estimated tokens of `text`."""
        return math.ceil(len(text.encode("utf-8", "replace")) / self.bytes_per_token)


def window(
    context: int | None, max_tokens: int, bytes_per_token: float = BYTES_PER_TOKEN
) -> Window:
    """The window for a model of `context` tokens (None: unknown) answering up to
    `max_tokens`."""
    size = context if context and context > 0 else DEFAULT_CONTEXT
    return Window(size, max(0, min(max_tokens, size // ANSWER_SHARE)), bytes_per_token)


@dataclass(frozen=True)
class Cut:
    """A file sent shortened: the message's index in the history, the file, and how many of
    its characters were sent."""

    index: int
    name: str
    sent_chars: int
    total_chars: int


@dataclass(frozen=True)
class Fitted:
    """The messages to send; how many of the history's oldest were left out (of `history`,
    the messages after the system prompt); files cut."""

    messages: list[JsonValue]
    dropped: int
    history: int
    tokens: int  # the estimate of the prompt
    cuts: list[Cut] = field(default_factory=list)


class TooLong(Exception):
    """Even the newest message alone (its files cut to nothing) does not fit."""

    def __init__(self, tokens: int, budget: int) -> None:
        super().__init__(f"the message is about {tokens} tokens; {budget} fit")
        self.tokens = tokens
        self.budget = budget


def message_tokens(message: JsonValue, win: Window) -> int:
    """The estimated tokens of one chat message."""
    content = message.get("content") if isinstance(message, dict) else None
    total = PER_MESSAGE
    if isinstance(content, str):
        return total + win.tokens(content)
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and part.get("type") == "text":
            total += win.tokens(str(part.get("text") or ""))
        elif isinstance(part, dict):
            total += IMAGE_TOKENS
    return total


def fit(messages: Sequence[JsonValue], win: Window) -> Fitted:
    """`messages` (a system prompt first, if any) fitted to `win`: the newest kept, then older
    ones while they fit, the first that does not (or its files cut to fit) ends the history.

    Raises TooLong when the system prompt and the newest message's own words leave no room.
    """
    system = [m for m in messages[:1] if isinstance(m, dict) and m.get("role") == "system"]
    history = list(messages[len(system) :])
    used = sum(message_tokens(m, win) for m in system)
    kept: list[JsonValue] = []  # newest first
    cuts: list[Cut] = []
    for index in reversed(range(len(history))):
        message = history[index]
        cost = message_tokens(message, win)
        if used + cost <= win.budget:
            kept.append(message)
            used += cost
            continue
        newest = index == len(history) - 1
        shrunk = _cut_files(
            message, index, win.budget - used, win, 0 if newest else MIN_FILE_TOKENS
        )
        if shrunk is None and newest:
            raise TooLong(used + cost, win.budget)
        if shrunk is not None:
            kept.append(shrunk[0])
            cuts = shrunk[1]
            used += message_tokens(shrunk[0], win)
        break
    # After the system prompt the history starts with a user turn, as chat templates expect.
    while len(kept) > 1 and _role(kept[-1]) != "user":
        used -= message_tokens(kept.pop(), win)
    return Fitted([*system, *reversed(kept)], len(history) - len(kept), len(history), used, cuts)


def _role(message: JsonValue) -> str:
    return str(message.get("role")) if isinstance(message, dict) else ""


def _cut_files(
    message: JsonValue, index: int, room: int, win: Window, least: int
) -> tuple[JsonObject, list[Cut]] | None:
    """`message` with its files cut so it takes at most `room` tokens, each cut file ending
    with a note; None when it has no files, or its own words leave less than `least`."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(message, dict) or not isinstance(content, list):
        return None
    files = {i: m for i, part in enumerate(content) if (m := _file_match(part)) is not None}
    if not files:
        return None
    bare = [p for i, p in enumerate(content) if i not in files]
    # A cut file still has its tags and its note: counted with the name as a stand-in text.
    shells = sum(win.tokens(_file_part(m["name"], "", _note(m["name"]))) for m in files.values())
    # One token per file spare: each estimate rounds up.
    left = room - message_tokens({**message, "content": bare}, win) - shells - len(files)
    if left < least:
        return None
    shares = _shares(
        {i: len(m["text"].encode()) for i, m in files.items()}, left * win.bytes_per_token
    )
    parts: list[JsonValue] = list(content)
    cuts: list[Cut] = []
    for i, m in files.items():
        text, name = m["text"], m["name"]
        head = text.encode()[: int(shares[i])].decode("utf-8", "ignore")
        if len(head) < len(text):
            parts[i] = {"type": "text", "text": _file_part(name, head, _note(name))}
            cuts.append(Cut(index, name, len(head), len(text)))
    return {**message, "content": parts}, cuts


def _file_match(part: JsonValue) -> dict[str, str] | None:
    if not isinstance(part, dict) or part.get("type") != "text":
        return None
    m = _FILE.fullmatch(str(part.get("text") or ""))
    return {"name": m["name"], "text": m["text"]} if m else None


def _file_part(name: str, text: str, note: str) -> str:
    return f'<file name="{name}">\n{text}\n{note}\n</file>'


def _note(name: str) -> str:
    # Said to the model, so it knows it read only the start: in English, like the tags.
    return f"[{name} is cut here: the rest does not fit the context]"


def _shares(sizes: dict[int, int], room: float) -> dict[int, float]:
    """Bytes for each file out of `room`: small files whole, the rest share what is left
    equally (water-filling)."""
    shares: dict[int, float] = {}
    left = max(room, 0.0)
    for n, (i, size) in enumerate(sorted(sizes.items(), key=lambda item: item[1])):
        shares[i] = min(float(size), left / (len(sizes) - n))
        left -= shares[i]
    return shares


def exceeded(message: str) -> tuple[int, int] | None:
    """(prompt tokens, context) from the node's `context_length_exceeded` message."""
    m = _EXCEEDED.search(message)
    return (int(m[1]), int(m[2])) if m else None


def corrected(win: Window, estimate: int, real: int, context: int) -> Window:
    """The window after the node counted `real` tokens where `estimate` was guessed, in a
    context of `context`: the ratio scaled to the real one (never less careful than before)."""
    ratio = win.bytes_per_token * min(1.0, estimate / max(real, 1)) * SAFETY
    return replace(
        win,
        context=context,
        answer=min(win.answer, context // ANSWER_SHARE),
        bytes_per_token=max(ratio, 0.5),
    )
