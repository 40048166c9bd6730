"""The one translation layer's interface: an API other than Chat Completions (Anthropic
Messages, OpenAI Responses) rides on it.

Such an API turns its request into the internal Chat Completions body, which takes the same
path as `/v1/chat/completions` (auth, dispatch, queue, failover, history, metrics: the proxy),
and turns the node's Chat Completions answer, whole or streamed, back into its own shape. The
node never learns which API a client spoke. What every such API needs of the node's stream
(its events split out of buffers cut anywhere, a chunk's reasoning) is here, once; the
internal body's shape is `app.server.chat_body.ChatBody`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

from app.core.errors import UpstreamError
from app.core.wire import JsonObject

CHAT_PATH = "/v1/chat/completions"
EVENT_LIMIT = 16 * 1024 * 1024  # bytes of one event of a node's stream
# One JSON string literal as a node's encoder writes it: no unescaped quote, no raw control
# character (so no line break that would end an SSE event), every escape closed.
JSON_STRING = rb'"[^"\\\x00-\x1f]*(?:\\[^\x00-\x1f][^"\\\x00-\x1f]*)*"'
_ONE_STRING = re.compile(JSON_STRING)
_NOT_IN_STRING = re.compile(rb'["\x00-\x1f]')


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


# The API's request body in (JSON as the client sent it, to be checked), the internal chat
# body (a `ChatBody`, or any mapping of that shape) and the answer's shape out; a
# UserFacingError names what is wrong with the request. Awaited: a translation may read what
# the balancer keeps (a stored response that a request continues).
Translate = Callable[[JsonObject], Awaitable[tuple[Mapping[str, object], AnswerShape]]]


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
    feed: EventFeed,
    chunks: AsyncIterator[bytes],
    first: bytes,
    last: Callable[[], bytes],
    *,
    bulk: Callable[[bytes], bytes] | None = None,
    first_wait: float = 0.0,
) -> AsyncIterator[bytes]:
    """The API's events for a node's stream: `first`, then for each buffer the events of the
    node's events in it (split out of buffers cut anywhere, bounded in size) as `feed`
    translates them, until the stream ends or `feed` is over; then `last()` (if not empty).
    One generator for the whole stream: each buffer costs one hop, as an untranslated one.

    `bulk`, when given, translates all the whole events of a buffer at once (their bytes,
    each ending with its blank line) instead of `feed.feed` one by one. With `first_wait`
    (seconds), `first` waits that long for the node's first events and goes out in one write
    with them: a write less per stream when the node answers at once; a node that thinks
    longer has `first` sent at `first_wait`."""
    pending = first
    if first_wait <= 0:
        yield first
        pending = b""
        chunk = await anext(chunks, None)
    else:
        ahead: asyncio.Future[bytes | None] = asyncio.ensure_future(anext(chunks, None))
        try:
            await asyncio.wait((ahead,), timeout=first_wait)
            if not ahead.done():  # the node is thinking: the client hears from us meanwhile
                yield pending
                pending = b""
            chunk = await ahead
        except Exception:
            if pending:  # the node failed at once: its error follows `first`
                yield pending
            raise
        finally:
            ahead.cancel()  # a no-op once done; a client that left stops the read
    buffer = b""
    while chunk is not None:
        quick = feed.fast(chunk) if not buffer else None
        if quick is not None:  # the usual case: one whole event of the node per buffer
            out = quick
        else:
            buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
            if bulk is None:
                *complete, buffer = buffer.split(b"\n\n")
                out = b"".join([event for raw in complete for event in feed.feed(raw)])
            else:
                end = buffer.rfind(b"\n\n") + 2
                whole, buffer = (buffer[:end], buffer[end:]) if end >= 2 else (b"", buffer)
                out = bulk(whole) if whole else b""
            if len(buffer) > EVENT_LIMIT:  # a node's event without end: bounded, as answers
                raise UpstreamError("the node sent an event over the size limit")
        if out or pending:
            yield pending + out if pending else out
            pending = b""
        if feed.over:
            break
        chunk = await anext(chunks, None)
    end_events = pending + last()
    if end_events:
        yield end_events


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


def reasoning_of(fields: Mapping[str, object]) -> str:
    """The reasoning text of a message or delta: llama.cpp's `reasoning_content`, vLLM's
    `reasoning`; empty when there is none."""
    value = fields.get("reasoning_content") or fields.get("reasoning")
    return value if isinstance(value, str) else ""


def is_string(literal: bytes) -> bool:
    """Whether `literal` is one JSON string literal: quoted, with no unescaped quote inside,
    no raw control character (a line break would end the event it is copied into) and no
    escape left open at its end (so a node cannot slip other fields into that event)."""
    return _ONE_STRING.fullmatch(literal) is not None


def merged_string(texts: list[bytes]) -> bytes | None:
    """`texts` as one JSON string literal (their contents one after another), or None unless
    each is one JSON string literal (as `is_string` has it). Checked over all of them at once:
    joined by line breaks (no string holds a raw one), with the escaped backslashes and quotes
    made plain, what is left must be quote, separator, quote between the texts, and no other
    quote or control character anywhere; then dropping each separating `"\n"` merges them."""
    joined = b"\n".join(texts)
    if len(joined) < 2 or joined[:1] != b'"' or joined[-1:] != b'"':
        return None
    inner = plain = joined[1:-1]
    if b"\\" in inner:  # JSON escapes pair from the left: `\\\\` first, then `\\"`
        # Each becomes one plain byte, so no quote comes to stand next to a line break.
        plain = inner.replace(b"\\\\", b"_").replace(b'\\"', b"_")
        if plain.endswith(b"\\"):  # the closing quote was escaped
            return None
    if plain.count(b'"\n"') != len(texts) - 1:
        return None
    flat = plain.replace(b'"\n"', b"")
    if _NOT_IN_STRING.search(flat) is not None:
        return None
    # Raw line breaks stand only between the texts now, so the same drop merges the original.
    return b'"' + (flat if plain is inner else inner.replace(b'"\n"', b"")) + b'"'
