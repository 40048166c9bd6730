"""What the node's inference hands its HTTP adapters: a whole JSON answer, or a stream of
server-sent events over one or more generations (`n` choices run side by side, each its own
sequence in the engine), and the pieces both are built of."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from app.core.errors import BadRequest, Unavailable, UserFacingError
from app.node.engine.pool import Runner
from app.node.engine.types import Finished, Item, Sampling, TokenLogprob
from app.node.engine.vision import Media
from app.node.models import NodeModels

log = logging.getLogger(__name__)

Batches = AsyncGenerator[list[Item], None]


@dataclass
class Call:
    """One inference request to this node."""

    models: NodeModels
    body: dict[str, Any]
    client_gone: Callable[[], bool] = field(default=lambda: False)


@dataclass
class JsonReply:
    """A whole answer: a JSON object."""

    body: dict[str, Any]
    status: int = 200


@dataclass
class Generation:
    """One sequence to generate (one choice): its prompt and its sampling."""

    tokens: list[int]
    sampling: Sampling
    media: Media | None = None  # a prompt with images (then `tokens` stand for its length)


@dataclass
class StreamReply:
    """Generations to stream as server-sent events, one choice each (index = position)."""

    runner: Runner
    generations: list[Generation]
    opening: list[bytes]  # events before the first token
    encode: Callable[[int, Item], list[bytes]]  # the events of one choice's generated item
    closing: Callable[[list[Finished]], list[bytes]]  # after every choice ended (usage)

    async def events(self) -> AsyncGenerator[bytes, None]:
        """The SSE bytes: `opening`, then everything generated since the last piece, then
        `closing` and [DONE] once every generation has ended; an error event if one fails.
        Closing this early (the client left) cancels the generations."""
        cancels = [threading.Event() for _ in self.generations]
        streams = [
            self.runner.batches(g.tokens, g.sampling, cancel, g.media)
            for g, cancel in zip(self.generations, cancels, strict=True)
        ]
        finished: list[Finished] = []
        merged = merge(streams)
        try:
            if self.opening:
                yield b"".join(self.opening)
            try:
                async for index, batch in merged:
                    events = [event for item in batch for event in self.encode(index, item)]
                    finished += (item for item in batch if isinstance(item, Finished))
                    if events:
                        yield b"".join(events)
            except UserFacingError as exc:
                yield event(exc.body())
                return
            closing = self.closing(finished)
            if closing:
                yield b"".join(closing)
            yield b"data: [DONE]\n\n"
        finally:
            for cancel in cancels:
                cancel.set()
            await merged.aclose()


Reply = JsonReply | StreamReply


async def merge(streams: list[Batches]) -> AsyncGenerator[tuple[int, list[Item]], None]:
    """The batches of every stream as they come, each with its stream's index; closing this
    closes them all. One stream is passed through without tasks (the common case)."""
    if len(streams) == 1:
        async with contextlib.aclosing(streams[0]) as only:
            async for batch in only:
                yield 0, batch
        return
    pending: dict[asyncio.Task[list[Item]], int] = {}

    async def next_of(stream: Batches) -> list[Item]:
        return await anext(stream)

    def ask(i: int) -> None:
        pending[asyncio.create_task(next_of(streams[i]))] = i

    try:
        for i in range(len(streams)):
            ask(i)
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=pending.__getitem__):
                i = pending.pop(task)
                try:
                    batch = task.result()
                except StopAsyncIteration:
                    continue
                yield i, batch
                ask(i)
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for stream in streams:
            await stream.aclose()


@dataclass
class Collected:
    """One generation, whole: its text, the logprobs of its tokens (if asked) and its end."""

    text: str
    logprobs: list[TokenLogprob]
    done: Finished


async def collect(call: Call, runner: Runner, generations: list[Generation]) -> list[Collected]:
    """Every generation whole, run side by side; the first failure cancels the rest and is
    raised as it was (a UserFacingError stays one)."""
    if len(generations) == 1:
        return [await _collect_one(call, runner, generations[0])]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_collect_one(call, runner, g)) for g in generations]
    except* Exception as failed:  # the first failure, not the group of them
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def _collect_one(call: Call, runner: Runner, g: Generation) -> Collected:
    cancel = threading.Event()
    parts: list[str] = []
    logprobs: list[TokenLogprob] = []
    pieces = runner.stream(g.tokens, g.sampling, cancel, g.media)
    try:
        async for item in pieces:
            if isinstance(item, Finished):
                return Collected("".join(parts), logprobs, item)
            parts.append(item.text)
            logprobs += item.logprobs
            if call.client_gone():
                log.info("client left; generation cancelled")
                break
    finally:
        await pieces.aclose()
    raise Unavailable("generation ended without a result", code="generation_cancelled")


def choice_samplings(sampling: Sampling, n: int) -> list[Sampling]:
    """The sampling of each of `n` choices: with a seed, each choice its own (the first
    keeps it, so `n: 1` answers as before), so that choices differ when they sample."""
    if sampling.seed is None or n == 1:
        return [sampling] * n
    # Odd multiples of the golden ratio constant: seeds far apart, none repeated in 2**32.
    return [replace(sampling, seed=(sampling.seed + i * 0x9E3779B9) & 0xFFFFFFFF) for i in range(n)]


def check_fits(runner: Runner, n_tokens: int, param: str) -> None:
    """BadRequest when a prompt of `n_tokens` leaves no room in the loaded model's context:
    said before a stream starts, as the 400 its non-streamed twin gets."""
    n_ctx = runner.context_length
    if n_ctx is not None and n_tokens >= n_ctx:
        raise BadRequest(
            f"the prompt is {n_tokens} tokens; this model's context holds {n_ctx}",
            code="context_length_exceeded",
            param=param,
        )


def usage(done: list[Finished]) -> dict[str, int]:
    """OpenAI's usage of a request: the prompt once, the completion tokens of every choice."""
    prompt = done[0].prompt_tokens if done else 0
    completion = sum(d.completion_tokens for d in done)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def timings(done: Finished) -> dict[str, Any]:
    """llama-server's `timings` of a generation, as the node measured them (a client's
    tokens/s, which chunk arrival cannot give once tokens travel gathered)."""
    predicted = round(done.predicted_ms, 3)  # the speed as figured from the numbers sent
    return {
        "prompt_n": done.prompt_tokens,
        "prompt_ms": round(done.prompt_ms, 3),
        "predicted_n": done.completion_tokens,
        "predicted_ms": predicted,
        "predicted_per_second": (
            round(done.completion_tokens * 1000 / predicted, 3) if predicted > 0 else None
        ),
    }


MARK = "\x00llmlb-text\x00"  # where the text goes in a pre-encoded event


def event(obj: Any) -> bytes:
    """One server-sent event carrying `obj` as JSON."""
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def text_events(template: dict[str, Any]) -> Callable[[str], bytes]:
    """Events that differ only in one text (the marker's place in `template`): the JSON is
    encoded once, and each event is its two halves around the JSON-encoded text."""
    head, tail = event(template).split(json.dumps(MARK).encode())
    return lambda text: head + json.dumps(text).encode() + tail
