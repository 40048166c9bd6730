"""The balancer's HTTP upstream, against real OpenAI-compatible servers on 127.0.0.1: what
it answers, what counts as no answer, and that closing a stream frees the node."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from app.server.node_view import NodeView
from app.server.upstream import HttpUpstream, UpstreamFailed, http_session
from tests.server.test_edge import hostile_node
from tests.support.waiting import eventually

BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
PATH = "/v1/chat/completions"


def external(url: str) -> NodeView:
    return NodeView("n1", "box", url, "", kind="external")


async def test_a_whole_answer_comes_with_the_nodes_status() -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "no"}}, status=404)

    async with hostile_node(refuse) as url, http_session(30) as session:
        # A stream was asked for, but an error answer is never a stream: it comes whole.
        answer = await HttpUpstream(session, external(url)).call(
            PATH, BODY, stream=True, client_gone=lambda: False
        )
        assert answer.status == 404 and answer.stream is None
        assert json.loads(answer.body)["error"]["message"] == "no"


async def test_a_node_nobody_listens_at_is_no_answer() -> None:
    async def fine(request: web.Request) -> web.Response:
        return web.json_response({})

    async with hostile_node(fine) as url:
        pass  # the server is gone: its port refuses connections
    async with http_session(30) as session:
        with pytest.raises(UpstreamFailed, match="did not respond"):
            await HttpUpstream(session, external(url)).call(
                PATH, BODY, stream=False, client_gone=lambda: False
            )


async def test_closing_a_stream_hangs_up_on_the_node() -> None:
    hung_up = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            while True:
                await response.write(b'data: {"x": 1}\n\n')
                await asyncio.sleep(0.01)
        except (ConnectionError, asyncio.CancelledError):
            hung_up.set()
            raise

    async with hostile_node(endless) as url, http_session(30) as session:
        answer = await HttpUpstream(session, external(url)).call(
            PATH, BODY, stream=True, client_gone=lambda: False
        )
        assert answer.status == 200 and answer.stream is not None
        first = await anext(aiter(answer.stream))
        assert first.startswith(b"data: ")
        await answer.aclose()
        await eventually(hung_up.is_set, timeout=10)
