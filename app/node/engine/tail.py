"""The text end of a generation, shared by both runners: token bytes in, client text out.

Each generated token's bytes are decoded incrementally (a character split over two tokens
waits for its second half), the text is searched for the request's stop strings (one may be
split over several tokens, so text that could still be the start of one is held back), the
rest goes out as a Delta, and the completion is counted against its token limit.
"""

from __future__ import annotations

import codecs
import time

from app.node.engine.channel import Emit
from app.node.engine.types import Delta, Finished, TokenLogprob


class TextTail:
    """One generation's output text between the sampler and its consumer.

    `add` takes each generated token (not the end-of-generation one) and says when the
    generation is over; `finish` sends what is left and gives the Finished item. A cancelled
    generation just stops calling it.
    """

    __slots__ = (
        "_decoder",
        "_emit",
        "_first",
        "_holdback",
        "_logprobs",
        "_started",
        "_stops",
        "count",
        "limit",
        "matched",
        "text",
    )

    def __init__(self, stops: tuple[str, ...], limit: int, emit: Emit) -> None:
        self._stops = tuple(s for s in stops if s)
        # The most text that could still be the start of a stop string.
        self._holdback = max((len(s) for s in self._stops), default=1) - 1
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._emit = emit
        self.limit = limit  # completion tokens allowed
        self.count = 0  # completion tokens so far
        self.text = ""  # decoded, not yet emitted
        self.matched: str | None = None  # the stop string found, if one was
        self._logprobs: list[TokenLogprob] = []  # of tokens whose text is not out yet
        # Made as the prompt's evaluation begins; the first token ends it (the answer's
        # timings: what a client shows as speed, whatever way the tokens travel).
        self._started = time.perf_counter()
        self._first: float | None = None

    def add(self, piece: bytes, logprob: TokenLogprob | None = None) -> str | None:
        """Take one generated token's bytes (and its logprob, when asked for) and emit the
        text that is safe to show; the finish reason when the generation ends here ("stop":
        a stop string, cut off; "length": the limit), else None. A token's logprob goes out
        with the first delta that carries (some of) its text."""
        self.count += 1
        if self._first is None:
            self._first = time.perf_counter()
        if logprob is not None:
            self._logprobs.append(logprob)
        text = self.text + self._decoder.decode(piece)
        if self._stops:
            hit = min((i for s in self._stops if (i := text.find(s)) >= 0), default=-1)
            if hit >= 0:
                self.matched = next(s for s in self._stops if text.find(s) == hit)
                self.text = text[:hit]
                if logprob is not None:  # the token that completed the stop is not text
                    self._logprobs.pop()
                return "stop"
            safe = len(text) - self._open_stop(text)
            if safe > 0:
                self._send(text[:safe])
                text = text[safe:]
        elif text:
            self._send(text)
            text = ""
        self.text = text
        return "length" if self.count >= self.limit else None

    def _open_stop(self, text: str) -> int:
        """How much of the end of `text` begins a stop string, so is held back until the next
        token says (as llama-server's partial stop match). Only that: a fixed holdback of the
        longest stop's length kept a chat's first words (its template's `<|im_end|>`) a token
        or two behind, and the first token's time with them."""
        for n in range(min(self._holdback, len(text)), 0, -1):
            end = text[-n:]
            if any(stop.startswith(end) for stop in self._stops):
                return n
        return 0

    def finish(self, reason: str, prompt_tokens: int) -> Finished:
        """Emit the text held back (an incomplete UTF-8 tail as U+FFFD) and return the
        Finished item, which the runner sends when it is ready to."""
        text = self.text + self._decoder.decode(b"", final=True)
        self.text = ""
        if text:
            self._send(text)
        end = time.perf_counter()
        first = self._first or end
        return Finished(
            reason,
            prompt_tokens,
            self.count,
            self.matched,
            prompt_ms=(first - self._started) * 1000,
            predicted_ms=(end - first) * 1000,
        )

    def _send(self, text: str) -> None:
        logprobs = tuple(self._logprobs)
        self._logprobs.clear()
        self._emit(Delta(text, logprobs) if logprobs else Delta(text))
