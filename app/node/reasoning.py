"""Reasoning kept apart from the answer: a model's `<think>…</think>` (and the other common
markers) split out of its output as the text arrives, as llama.cpp's server and DeepSeek's API
return it (`reasoning_content` beside `content`)."""

from __future__ import annotations

from dataclasses import dataclass

# (opening, closing) markers of a reasoning block, as the models write them.
MARKERS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),  # DeepSeek-R1 and its distills, Qwen3, QwQ, Granite, Kimi
    ("[THINK]", "[/THINK]"),  # Magistral
    ("<|START_THINKING|>", "<|END_THINKING|>"),  # Command R7B / Command A
    ("<seed:think>", "</seed:think>"),  # Seed-OSS
)
MARKER_TEXTS = tuple(marker for pair in MARKERS for marker in pair)
# llama.cpp server's `reasoning_format` values: "none" keeps everything in content, the others
# split ("deepseek-legacy" is taken as "deepseek": this node never duplicates the text).
FORMATS = ("auto", "deepseek", "deepseek-legacy", "none")


@dataclass(frozen=True)
class Opened:
    """A reasoning block the chat template opened in the generation prompt (the R1 distills',
    QwQ's and Qwen3-Thinking-2507's end with "<think>\\n"): the model's first words are
    reasoning."""

    prefix: str  # the opening marker as the prompt ends with it ("<think>\n")
    closing: str


def opened_by(prompt: str) -> Opened | None:
    """The reasoning block left open at the end of a rendered chat prompt, if any."""
    tail = prompt.rstrip()
    for opening, closing in MARKERS:
        if tail.endswith(opening):
            return Opened(prompt[len(tail) - len(opening) :], closing)
    return None


class Split:
    """One answer's text split into reasoning and content as it arrives.

    `feed` takes each piece of text and returns (reasoning, content) safe to send now; text
    that may still be part of a marker (one can arrive split over several tokens) or
    whitespace at the edge of the reasoning is held back until it is known. `end` returns what
    is left. A block counts only at the start of the answer (after whitespace), as llama.cpp
    reads it; a marker later in the answer is just text.
    """

    __slots__ = ("_closing", "_held", "_state")

    def __init__(self, opened: Opened | None) -> None:
        self._held = ""
        self._closing = opened.closing if opened else ""
        # start: nothing decided yet; lead: in the block, before its first words (whitespace
        # dropped); think: in the block; after: closed, before the answer's first words
        # (whitespace dropped); answer: the rest is content as it comes.
        self._state = "lead" if opened else "start"

    def feed(self, text: str) -> tuple[str, str]:
        """(reasoning, content) of the text so far that is safe to send."""
        held = self._held + text
        reasoning = content = ""
        if self._state == "start":
            stripped = held.lstrip()
            pair = next(((o, c) for o, c in MARKERS if stripped.startswith(o)), None)
            if pair is not None:
                self._state, self._closing = "lead", pair[1]
                held = stripped[len(pair[0]) :]
            elif not stripped or any(o.startswith(stripped) for o, _ in MARKERS):
                self._held = held  # may still become an opening marker
                return "", ""
            else:
                self._state = "answer"
        if self._state == "lead":
            held = held.lstrip()
            if not held:
                self._held = ""
                return "", ""
            self._state = "think"
        if self._state == "think":
            hit = held.find(self._closing)
            if hit < 0:
                keep = _partial_tail(held, self._closing)
                body = held[: len(held) - keep]
                trimmed = body.rstrip()  # whitespace just before the closing marker is dropped
                self._held = held[len(trimmed) :]
                return trimmed, ""
            reasoning, held = held[:hit].rstrip(), held[hit + len(self._closing) :]
            self._state = "after"
        if self._state == "after":
            held = held.lstrip()
            if not held:
                self._held = ""
                return reasoning, ""
            self._state = "answer"
        content, self._held = held, ""
        return reasoning, content

    def end(self) -> tuple[str, str]:
        """(reasoning, content) held back when the answer ends: an unclosed block (the answer
        was cut off while thinking) is all reasoning."""
        held, self._held = self._held, ""
        if self._state == "think":
            return held.rstrip(), ""
        if self._state in ("lead", "after"):
            return "", ""
        return "", held


def _partial_tail(text: str, marker: str) -> int:
    """How many characters at the end of `text` could be the start of `marker`."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


class Inline:
    """reasoning_format "none": everything stays in content, a block the prompt opened
    included (its opening marker is put back in front, so the text reads as the model's)."""

    __slots__ = ("_prefix",)

    def __init__(self, opened: Opened | None) -> None:
        self._prefix = opened.prefix if opened else ""

    def feed(self, text: str) -> tuple[str, str]:
        """("", the text), the opening marker first."""
        prefix, self._prefix = self._prefix, ""
        return "", prefix + text

    def end(self) -> tuple[str, str]:
        """The opening marker alone when the answer was empty."""
        return self.feed("") if self._prefix else ("", "")


def splitter(reasoning_format: str, prompt: str) -> Split | Inline:
    """The split for one answer to `prompt` (the rendered chat prompt)."""
    opened = opened_by(prompt)
    return Inline(opened) if reasoning_format == "none" else Split(opened)


def split_all(reasoning_format: str, prompt: str, text: str) -> tuple[str, str]:
    """A whole answer's (reasoning, content)."""
    split = splitter(reasoning_format, prompt)
    first = split.feed(text)
    last = split.end()
    return first[0] + last[0], first[1] + last[1]
