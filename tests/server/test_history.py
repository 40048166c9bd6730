"""The request record: whatever model name a client sends, the history and metrics keep working."""

from __future__ import annotations

import openai
from openai.types.chat import ChatCompletionMessageParam

from app.server.speed import usage_tokens
from tests.conftest import RunningBalancer
from tests.node.conftest import register_ready, served

__all__ = ["served"]  # a fixture


async def test_a_model_name_with_a_lone_surrogate_breaks_neither_history_nor_metrics(
    balancer: RunningBalancer,
) -> None:
    for path in ("/v1/chat/completions", "/v1/completions"):
        status, _ = await balancer.post(path, {"model": "\ud800" + "x" * 10_000, "prompt": "hi"})
        assert status == 404
    status, records = await balancer.get("/v0/requests")
    assert status == 200, records
    assert [r["status"] for r in records] == [404, 404]
    assert records[0]["model"] == "\\ud800" + "x" * 250  # the escape, and bounded
    assert len(records[0]["error"]) <= 1000
    async with balancer.http.get(balancer.url + "/metrics") as response:
        text = await response.text()
    assert response.status == 200
    assert 'model="-"' in text and "xxxx" not in text  # unknown names share one series


async def test_the_history_keeps_each_answers_tokens_and_who_asked(served: RunningBalancer) -> None:
    """A dashboard's tokens and tokens/s come from the history: the usage of plain and streamed
    answers, the time spent generating, and the API key's name as the client."""
    name = await register_ready(served)
    status, key = await served.post("/v0/api-keys", {"name": "editor"})
    assert status == 201, key
    client = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=key["key"])
    chat: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    whole = await client.chat.completions.create(model=name, messages=chat, max_tokens=6)
    assert whole.usage is not None
    stream = await client.chat.completions.create(
        model=name, messages=chat, max_tokens=6, stream=True, stream_options={"include_usage": True}
    )
    usage = [c.usage async for c in stream if c.usage is not None]
    admin = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=served.token)
    await admin.chat.completions.create(model=name, messages=chat, max_tokens=2)
    status, records = await served.get("/v0/requests")
    assert status == 200, records
    by_admin, streamed, plain = records[:3]
    assert plain["tokens_in"] == whole.usage.prompt_tokens
    assert plain["tokens_out"] == whole.usage.completion_tokens
    assert streamed["stream"] and streamed["tokens_out"] == usage[-1].completion_tokens
    assert streamed["tokens_in"] == usage[-1].prompt_tokens
    for row in (plain, streamed):
        assert row["client"] == "editor"
        assert 0 < row["generation_ms"] <= row["duration_ms"]
    assert by_admin["client"] == "admin"


def test_usage_is_read_in_either_order_of_its_fields() -> None:
    """OpenAI writes prompt_tokens first, llama-server completion_tokens first; a quoted key
    inside the generated text is escaped and cannot be taken for the usage block."""
    openai_order = (
        b'{"content":"\\"prompt_tokens\\": 9"},"usage":{"prompt_tokens":12,"completion_tokens":5}}'
    )
    llama_order = b'"usage":{"completion_tokens":5,"prompt_tokens":12,"total_tokens":17}}'
    assert usage_tokens(openai_order) == (12, 5)
    assert usage_tokens(b"data: ", llama_order) == (12, 5)
    assert usage_tokens(b'{"choices":[]}') == (None, None)
