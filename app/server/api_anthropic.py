"""/v1/messages: Anthropic's Messages API (and its count_tokens), on the one translation layer.

A request is translated into Chat Completions (`api_anthropic_request`), relayed like any
`/v1/chat/completions` request (the proxy: dispatch, failover, history, metrics, API keys,
which `x-api-key` carries as well as a bearer token), and its answer translated back
(`api_anthropic_answer`). Errors on these paths take Anthropic's shape (`ERROR_SHAPES` in the
app). `anthropic-version` and `anthropic-beta` headers and `?beta=true` are accepted as the hints
they are.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from aiohttp import web

from app.core.errors import UpstreamError
from app.core.wire import JsonObject, JsonValue
from app.server.api_anthropic_answer import AnthropicAnswer
from app.server.api_anthropic_request import to_chat
from app.server.api_anthropic_shapes import error_body
from app.server.chat_body import ChatBody
from app.server.proxy import relay_translated
from app.server.translate import AnswerShape

PREFIX = "/v1/messages"  # every path whose errors are in Anthropic's shape
routes = web.RouteTableDef()
__all__ = ["PREFIX", "error_body", "routes"]


async def _messages(body: JsonObject) -> tuple[ChatBody, AnswerShape]:
    chat, asked = to_chat(body)
    return chat, AnthropicAnswer(asked)


class _Count:
    """count_tokens' answer: the prompt tokens the node counted for a one-token answer."""

    def whole(self, body: bytes) -> bytes:
        """`{"input_tokens": N}` from the answer's usage."""
        try:
            data: JsonValue = json.loads(body)
        except ValueError:
            data = None
        usage = data.get("usage") if isinstance(data, dict) else None
        count = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if isinstance(count, bool) or not isinstance(count, int):
            raise UpstreamError(
                "the node's answer did not count the prompt's tokens", code="bad_node_answer"
            )
        return json.dumps({"input_tokens": count}).encode()

    async def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Never used: count_tokens asks for no stream."""
        async for chunk in chunks:
            yield chunk

    def failed(self, message: str) -> bytes:
        """Never used (no stream)."""
        return b""


async def _count(body: JsonObject) -> tuple[ChatBody, AnswerShape]:
    """The prompt of a count_tokens body, as a chat request for one token (at temperature 0).

    Every OpenAI-compatible node (ours, llama-server, vLLM, an external API) reports the
    prompt's tokens in `usage`, counted by the model's own template and tokenizer: no node
    needs a route of its own. It costs one prompt evaluation, which a node that caches
    prompts reuses for the request that usually follows."""
    body = {k: v for k, v in body.items() if k not in ("max_tokens", "stream")}
    chat, _ = to_chat({**body, "max_tokens": 1})
    chat.pop("tool_choice", None)  # a forced call would only constrain the one token
    chat["temperature"] = 0
    return chat, _Count()


@routes.post("/v1/messages")
async def messages(request: web.Request) -> web.StreamResponse:
    """Anthropic Messages, streamed or not."""
    return await relay_translated(request, "/v1/messages", _messages)


@routes.post("/v1/messages/count_tokens")
async def count_tokens(request: web.Request) -> web.StreamResponse:
    """The prompt's token count: `{"input_tokens": N}`."""
    return await relay_translated(request, "/v1/messages/count_tokens", _count)
