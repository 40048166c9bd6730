"""The one translation layer's interface: an API other than Chat Completions (Anthropic
Messages, OpenAI Responses) rides on it.

Such an API turns its request into the internal Chat Completions body, which takes the same
path as `/v1/chat/completions` (auth, dispatch, queue, failover, history, metrics: the proxy),
and turns the node's Chat Completions answer, whole or streamed, back into its own shape. The
node never learns which API a client spoke. What every such API needs of the node's stream
(its events split out of buffers cut anywhere, a chunk's reasoning) is here, once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from app.core.errors import UpstreamError

CHAT_PATH = "/v1/chat/completions"
EVENT_LIMIT = 16 * 1024 * 1024  # bytes of one event of a node's stream


class AnswerShape(Protocol):
    """How one request's Chat Completions answer reaches its client in another API's shape.
    Error answers are not its business: the app's error middleware shapes them by path."""

    def whole(self, body: bytes) -> bytes:
        """A node's whole 200 answer (a chat.completion JSON) as the API's answer."""
        ...

    def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """A node's SSE stream (bytes as they come, cut anywhere) as the API's events; an
        exception from `chunks` (the node died) propagates."""
        ...

    def failed(self, message: str) -> bytes:
        """The event that ends a stream whose node stopped answering mid-way."""
        ...


# The API's request body in, the internal chat body and the answer's shape out; a
# UserFacingError names what is wrong with the request. Awaited: a translation may read what
# the balancer keeps (a stored response that a request continues).
Translate = Callable[[dict[str, Any]], Awaitable[tuple[dict[str, Any], AnswerShape]]]


class EventFeed(Protocol):
    """One translated stream's state: the node's events in, the API's events out."""

    over: bool  # the answer ended (or failed): nothing more is read

    def fast(self, chunk: bytes) -> bytes | None:
        """The API's event for a buffer that is one whole event of the node, when it can be
        made without decoding it (the stream's hot path); None to take the usual way."""
        ...

    def feed(self, raw: bytes) -> list[bytes]:
        """The API's events for one SSE event of the node (without its blank line)."""
        ...


async def node_events(
    feed: EventFeed, chunks: AsyncIterator[bytes], first: bytes, last: Callable[[], bytes]
) -> AsyncIterator[bytes]:
    """The API's events for a node's stream: `first`, then for each buffer the events of the
    node's events in it (split out of buffers cut anywhere, bounded in size) as `feed`
    translates them, until the stream ends or `feed` is over; then `last()` (if not empty).
    One generator for the whole stream: each buffer costs one hop, as an untranslated one."""
    yield first
    buffer = b""
    async for chunk in chunks:
        if not buffer:  # the usual case: one whole event of the node per buffer
            quick = feed.fast(chunk)
            if quick is not None:
                yield quick
                continue
        buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
        *complete, buffer = buffer.split(b"\n\n")
        if len(buffer) > EVENT_LIMIT:  # a node's event without end: bounded, as answers
            raise UpstreamError("the node sent an event over the size limit")
        out = [event for raw in complete for event in feed.feed(raw)]
        if out:
            yield b"".join(out)
        if feed.over:
            break
    end = last()
    if end:
        yield end


def event_data(raw: bytes) -> bytes:
    """The data of one SSE event (its `data:` lines joined)."""
    return b"".join(line[5:].strip() for line in raw.split(b"\n") if line.startswith(b"data:"))


def chunk_of(data: bytes) -> dict[str, Any] | None:
    """A node's event data as a JSON object; None for anything else (`[DONE]` included)."""
    try:
        chunk = json.loads(data)
    except ValueError:
        return None
    return chunk if isinstance(chunk, dict) else None


def reasoning_of(fields: dict[str, Any]) -> str:
    """The reasoning text of a message or delta: llama.cpp's `reasoning_content`, vLLM's
    `reasoning`; empty when there is none."""
    value = fields.get("reasoning_content") or fields.get("reasoning")
    return value if isinstance(value, str) else ""


def is_string(literal: bytes) -> bool:
    """Whether `literal` is one JSON string literal: quoted, with no unescaped quote inside
    and no escape left open at its end (so a node cannot slip other fields into the event
    it is copied into)."""
    if literal.count(b'"') == 2 and b"\\" not in literal:  # the usual case: no escapes
        return literal[:1] == b'"' == literal[-1:]
    if len(literal) < 2 or literal[:1] != b'"' or literal[-1:] != b'"':
        return False
    bare = literal[1:-1].replace(b"\\\\", b"")
    return not bare.endswith(b"\\") and b'"' not in bare.replace(b'\\"', b"")
