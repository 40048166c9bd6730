"""The Playground's streamed chat completion through /v1: the same door every client uses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp

from app.core.wire import JsonObject
from app.ui.client import ApiClient, ApiError, error_of


class ChatStream:
    """One streamed chat completion through /v1 (the same door every client uses)."""

    def __init__(self, client: ApiClient, body: JsonObject) -> None:
        self.client = client
        self.body: JsonObject = {
            **body,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        self.node: str | None = None
        self.completion_tokens: int | None = None
        self.finish_reason: str | None = None
        self.timings: JsonObject | None = None  # the node's own figures (llama-server's)

    async def deltas(self) -> AsyncIterator[tuple[str, str]]:
        """Yield (field, text) as text arrives: "content" for the answer, "reasoning_content"
        for a reasoning model's thinking; raise ApiError with the reason on any failure."""
        http = self.client._http()
        timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
        try:
            async with http.post(
                self.client.openai_url + "/chat/completions", json=self.body, timeout=timeout
            ) as r:
                self.node = r.headers.get("x-llmlb-node")
                if r.status >= 400:
                    raise error_of(r.status, json.loads(await r.text() or "{}"))
                done = False
                async for raw in r.content:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                        break
                    for text in self._chunk(json.loads(payload)):
                        yield text
                if not done:
                    raise ApiError("the answer was cut off before it ended")
        except aiohttp.ClientConnectionError as exc:
            raise ApiError("the balancer did not respond (is llmlb running?)") from exc
        except ValueError as exc:
            raise ApiError("the stream sent an unreadable event") from exc

    def _chunk(self, event: object) -> list[tuple[str, str]]:
        """The (field, text) pieces of one chunk (OpenAI's shape, with llama.cpp's and
        DeepSeek's `reasoning_content`); its usage and finish reason kept."""
        if not isinstance(event, dict):
            raise ValueError("not an object")
        if "error" in event:
            error = event["error"] if isinstance(event["error"], dict) else {}
            raise ApiError(str(error.get("message") or "the stream failed"), code=error.get("code"))
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.completion_tokens = usage["completion_tokens"]
        if isinstance(event.get("timings"), dict):
            self.timings = event["timings"]
        pieces = []
        for choice in event.get("choices") or []:
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
            delta = choice.get("delta") or {}
            for field in ("reasoning_content", "content"):
                if delta.get(field):
                    pieces.append((field, str(delta[field])))
        return pieces
