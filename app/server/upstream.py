"""How the balancer reaches a node: one `Upstream` interface, and its HTTP implementation.

The proxy relays whatever an `Upstream` answers and never asks which kind it has. Nodes on
the LAN and external servers are reached over HTTP (`HttpUpstream`, on the app's pooled
session); the local node of this process is reached in-process, through an adapter that the
composition root plugs into the node table (`NodeRegistry.attach_local`): this package never
imports the node's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from app.core.errors import UpstreamError
from app.server.http import read_capped
from app.server.node_view import NodeView

# A node's non-streamed answer is read whole before it is relayed: bounded, so a node that
# sends without end cannot fill the balancer's memory (embeddings of big batches fit).
ANSWER_LIMIT = 128 * 1024 * 1024


class UpstreamFailed(Exception):
    """The upstream gave no answer to relay (unreachable, or it failed mid-answer): the proxy
    tries another node. The message completes "the node NAME …"."""


@dataclass(slots=True)
class UpstreamAnswer:
    """What an upstream answered: a status and either a whole body (JSON) or a stream of
    server-sent-event bytes. `aclose()` ends it: a generation still running is cancelled and
    the connection, if any, is freed."""

    status: int
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None  # SSE bytes as they come, relayed unchanged
    stop: Callable[[], Awaitable[None]] | None = None  # what `aclose` calls, once

    async def aclose(self) -> None:
        """Stop the answer (idempotent)."""
        if self.stop is not None:
            stop, self.stop = self.stop, None
            await stop()


class Upstream(Protocol):
    """A node the balancer can send one OpenAI `/v1` request to."""

    async def call(
        self, path: str, raw: bytes, *, stream: bool, client_gone: Callable[[], bool]
    ) -> UpstreamAnswer:
        """POST `raw` (the client's JSON body) to `path`. With `stream` (the client asked for
        one) a 200 answer comes as a stream, anything else whole. A node's own error answer
        is an answer; UpstreamFailed means there is none. `client_gone` tells whether the
        client has left (a whole answer being generated stops)."""
        ...


def http_session(deadline: float) -> aiohttp.ClientSession:
    """The pooled session `HttpUpstream`s share (one per app; its owner closes it).

    Every call to a node has a total deadline (the whole answer, streams included), so a node
    that trickles bytes cannot hold a request forever."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=deadline, connect=5, sock_read=600),
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
        auto_decompress=False,
    )


class HttpUpstream:
    """A node (LAN or external server) called over HTTP on the app's pooled session."""

    def __init__(self, session: aiohttp.ClientSession, node: NodeView) -> None:
        self.session = session
        self.node = node

    async def call(
        self, path: str, raw: bytes, *, stream: bool, client_gone: Callable[[], bool]
    ) -> UpstreamAnswer:
        """See `Upstream.call`; an answer over ANSWER_LIMIT raises UpstreamError."""
        node = self.node
        try:
            response = await self.session.post(
                node.url + path,
                data=raw,
                headers={"Content-Type": "application/json", **node.auth_headers()},
                ssl=node.ssl(),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamFailed(f"did not respond ({type(exc).__name__})") from exc
        if stream and response.status == 200:

            async def hang_up() -> None:
                response.close()

            # aiohttp's own iterator, unwrapped: no extra step per chunk. A node that dies
            # mid-stream raises from it, and the proxy ends the client's stream with an error.
            return UpstreamAnswer(200, stream=response.content.iter_any(), stop=hang_up)
        try:
            return UpstreamAnswer(response.status, await _read_answer(response, node))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamFailed(f"failed mid-answer ({type(exc).__name__})") from exc
        finally:
            response.close()


async def _read_answer(response: aiohttp.ClientResponse, node: NodeView) -> bytes:
    """A node's whole answer, or UpstreamError once it passes ANSWER_LIMIT."""
    length = response.content_length
    if length is not None:  # the usual case: HTTP framing stops the read at that length
        if length > ANSWER_LIMIT:
            raise UpstreamError(
                f"the node {node.name} sent an answer of {length} bytes, over the limit of "
                f"{ANSWER_LIMIT}",
                code="node_answer_too_large",
            )
        return await response.read()
    body = await read_capped(response.content, ANSWER_LIMIT)
    if body is None:
        raise UpstreamError(
            f"the node {node.name} sent an answer over the limit of {ANSWER_LIMIT} bytes",
            code="node_answer_too_large",
        )
    return body
