"""A local stand-in for a third-party OpenAI-compatible server (llama-server, vLLM, Ollama):
`/v1/models` and `/v1/chat/completions` (plain and streamed), behind an optional API key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from aiohttp import web


class FakeOpenAI:
    """Run with `async with FakeOpenAI(["m"]) as server:`; `server.url` is its base URL."""

    def __init__(
        self,
        models: list[str],
        api_key: str | None = None,
        chunk_delay: float = 0.0,
        answer: str | None = None,
    ) -> None:
        self.models = models
        self.answer = answer  # what every chat answers; None: an echo of the last message
        self.chunk_delay = chunk_delay
        self.api_key = api_key
        self.calls = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def _check(self, request: web.Request) -> None:
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise web.HTTPUnauthorized(
                text='{"error": {"message": "bad key"}}', content_type="application/json"
            )

    async def _models(self, request: web.Request) -> web.Response:
        self._check(request)
        data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        self.calls += 1
        body = await request.json()
        text = (
            self.answer if self.answer is not None else f"echo: {body['messages'][-1]['content']}"
        )
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        async for event in self._chunks(body["model"], text):
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            await asyncio.sleep(self.chunk_delay)
        await response.write(b"data: [DONE]\n\n")
        return response

    @staticmethod
    async def _chunks(model: str, text: str) -> AsyncIterator[dict[str, object]]:
        for word in text.split(" ") if text else []:
            yield {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}],
            }
