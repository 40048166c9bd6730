"""The local node end to end: register → download → ready → the official openai client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import (
    ChatCompletionMessageParam,
    ChatCompletionToolChoiceOptionParam,
    ChatCompletionToolParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub
from tests.node.conftest import (
    CHAT_FILE,
    CHAT_REPO,
    EMBED_REPO,
    hub_entry,
    register_ready,
)
from tests.server.test_models_api import assert_openai_error
from tests.support.waiting import eventually


def client(b: RunningBalancer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=b.url + "/v1", api_key="unused", max_retries=0)


def error_of(err: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    """The OpenAI error body the client raised with."""
    body = err.value.body
    assert isinstance(body, dict)
    return body


async def test_register_download_ready_then_chat(
    served: RunningBalancer, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    model_hub.bytes_per_second = len(tiny_models["chat"]) / 3  # a download of ~3 s
    status, body = await served.post("/v0/models/register", {"repo": CHAT_REPO})
    assert status == 201
    name = body["name"]
    api = client(served)

    async def downloading() -> dict[str, Any] | None:
        entry = await hub_entry(served, name)
        progress = entry and entry.get("download_progress")
        return entry if progress and progress["bytes_downloaded"] > 0 else None

    entry = await downloading_entry(served, name, downloading)
    assert entry["status"] == "downloading" and entry["lifecycle_status"] == "pending"
    assert entry["download_progress"]["bytes_total"] == len(tiny_models["chat"])
    # FR-8: inference while downloading → 503 model_downloading with the percent.
    with pytest.raises(openai.APIStatusError) as err:
        await api.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 503
    assert error_of(err)["code"] == "model_downloading"
    assert "%" in error_of(err)["message"]
    assert [m.id for m in (await api.models.list()).data] == []

    async def ready() -> bool:
        e = await hub_entry(served, name)
        return e is not None and e["lifecycle_status"] == "ready"

    await eventually(ready, timeout=30)
    models = (await api.models.list()).data
    assert [m.id for m in models] == [name]

    answer = await api.chat.completions.create(
        model=name,
        messages=[{"role": "user", "content": "hello there"}],
        max_tokens=8,
        temperature=0,
    )
    assert answer.object == "chat.completion" and answer.model == name
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason in {"stop", "length"}
    assert 1 <= answer.usage.completion_tokens <= 8
    assert answer.usage.prompt_tokens > 3
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    # The file on the node's disk is the Hub's, byte for byte.
    node = served.ctx.local_node
    assert node is not None
    assert node.library.model_path(name).read_bytes() == tiny_models["chat"]
    assert node.library.model_path(name).name == CHAT_FILE


async def downloading_entry(
    b: RunningBalancer, name: str, probe: Callable[[], Awaitable[dict[str, Any] | None]]
) -> dict[str, Any]:
    return await eventually(probe, timeout=20, interval=0.02)


async def test_streaming_usage_and_greedy_determinism(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    plain = await api.chat.completions.create(
        model=name, messages=messages, max_tokens=12, temperature=0
    )
    stream = await api.chat.completions.create(
        model=name,
        messages=messages,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage, chunks = [], None, None, 0
    async for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    assert chunks >= 3  # role chunk, content chunks, finish chunk, usage chunk
    assert "".join(pieces) == plain.choices[0].message.content
    assert finish == plain.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == plain.usage.completion_tokens
    assert usage.prompt_tokens == plain.usage.prompt_tokens


async def test_a_fast_stream_sends_its_tokens_in_groups(tmp_path: Path, model_hub: FakeHub) -> None:
    # LLMLB_STREAM_INTERVAL: tokens gather between sends (here longer than the whole answer),
    # the first one goes at once, the end flushes the rest: two text chunks, nothing lost.
    settings = balancer_settings(
        tmp_path / "data", local_node=True, context_size=512, stream_interval=60.0
    )
    async with run_balancer(settings) as b:
        name = await register_ready(b)
        api = client(b)
        body: dict[str, Any] = {
            "model": name,
            "messages": [{"role": "user", "content": "go on"}],
            "max_tokens": 24,
            "temperature": 0,
            "logit_bias": {"2": -100, "260": -100},  # no early end: 24 tokens
        }
        plain = await api.chat.completions.create(**body)
        stream = await api.chat.completions.create(
            **body, stream=True, stream_options={"include_usage": True}
        )
        pieces, usage = [], None
        async for chunk in stream:
            usage = chunk.usage or usage
            pieces += [c.delta.content for c in chunk.choices if c.delta.content]
    assert plain.usage.completion_tokens == 24
    assert len(pieces) <= 2
    assert "".join(pieces) == plain.choices[0].message.content
    assert usage is not None and usage.completion_tokens == 24


async def test_sampling_parameters_seed_and_stop(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    msg: list[ChatCompletionMessageParam] = [{"role": "user", "content": "tell me a story"}]
    a = await api.chat.completions.create(
        model=name, messages=msg, max_tokens=16, seed=7, temperature=1.5, top_p=0.9
    )
    b = await api.chat.completions.create(
        model=name, messages=msg, max_tokens=16, seed=7, temperature=1.5, top_p=0.9
    )
    assert a.choices[0].message.content == b.choices[0].message.content
    full = await api.chat.completions.create(model=name, messages=msg, max_tokens=16, temperature=0)
    text = full.choices[0].message.content or ""
    assert len(text) > 4
    stop = text[2:4]
    cut = await api.chat.completions.create(
        model=name, messages=msg, max_tokens=16, temperature=0, stop=[stop]
    )
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.index(stop)]
    legacy = await api.chat.completions.create(
        model=name,
        messages=msg,
        max_completion_tokens=3,
        temperature=0,
        presence_penalty=0.5,
        frequency_penalty=0.5,
    )
    assert legacy.usage.completion_tokens <= 3 + 3  # a multi-byte character may finish
    assert legacy.choices[0].finish_reason == "length"


async def test_json_mode_constrains_the_output(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    answer = await api.chat.completions.create(
        model=name,
        messages=[{"role": "user", "content": "json please"}],
        max_tokens=60,
        temperature=0,
        response_format={"type": "json_object"},
    )
    text = answer.choices[0].message.content or ""
    assert text.lstrip().startswith(("{", "["))
    if answer.choices[0].finish_reason == "stop":
        json.loads(text)
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    answer = await api.chat.completions.create(
        model=name,
        messages=[{"role": "user", "content": "ok?"}],
        max_tokens=40,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    text = answer.choices[0].message.content or ""
    assert (text.startswith("{") and '"ok"' in text) or answer.choices[0].finish_reason == "length"
    if answer.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text)["ok"], bool)


async def test_text_completions_and_embeddings(served: RunningBalancer) -> None:
    chat = await register_ready(served)
    embed = await register_ready(served, EMBED_REPO)
    api = client(served)
    done = await api.completions.create(
        model=chat, prompt="Once upon a time", max_tokens=5, temperature=0
    )
    assert done.object == "text_completion" and done.usage.completion_tokens <= 5 + 3
    assert done.choices[0].text
    vectors = await api.embeddings.create(model=embed, input=["hello world", "good bye"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 64
    norm = sum(x * x for x in vectors.data[0].embedding)
    assert abs(norm - 1.0) < 1e-3  # normalized, as OpenAI's are
    assert vectors.data[0].embedding != vectors.data[1].embedding
    assert vectors.usage.prompt_tokens > 2
    floats = await api.embeddings.create(model=embed, input="hello world", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vectors.data[0].embedding, abs=1e-6)
    with pytest.raises(openai.BadRequestError) as err:
        await api.embeddings.create(model=chat, input="x")
    assert error_of(err)["code"] == "model_not_embedding"


async def test_inference_errors_are_clear(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    err: pytest.ExceptionInfo[openai.APIStatusError]
    with pytest.raises(openai.NotFoundError) as err:
        await api.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert error_of(err)["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        await api.chat.completions.create(model=name, messages=[])
    assert error_of(err)["param"] == "messages"
    with pytest.raises(openai.BadRequestError):
        await api.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "x"}], temperature=5
        )
    with pytest.raises(openai.BadRequestError) as err:
        await api.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "word " * 2000}]
        )
    assert error_of(err)["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as err:
        await api.chat.completions.create(
            model=name,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                    ],
                }
            ],
        )
    assert "Vision" in error_of(err)["message"]
    for raw in (b"{", b"[]", b'{"messages": []}'):
        async with served.http.post(served.url + "/v1/chat/completions", data=raw) as r:
            assert r.status == 400
            assert_openai_error(await r.json())
    # Registered, but no node has it: 503 no_capable_nodes, not a hang.
    await served.post("/v0/models/register", {"model_id": "phi4"})
    node = served.ctx.local_node
    assert node is not None
    await eventually(lambda: _has_state(served, "phi4"))
    status, body = await served.post(
        "/v1/chat/completions",
        {"model": "phi4", "messages": [{"role": "user", "content": "x"}]},
        headers={},
    )
    assert status == 503
    assert body["error"]["code"] in {"model_error", "model_downloading", "no_capable_nodes"}


async def _has_state(b: RunningBalancer, name: str) -> bool:
    entry = await hub_entry(b, name)
    return bool(entry and entry.get("lifecycle_status") in {"pending", "error"})


async def test_delete_removes_the_files_from_the_node(served: RunningBalancer) -> None:
    name = await register_ready(served)
    node = served.ctx.local_node
    assert node is not None
    folder = node.library.folder(name)
    assert (folder / CHAT_FILE).exists()
    status, _ = await served.delete(f"/v0/models/{name}")
    assert status == 204

    async def gone() -> bool:
        return not folder.exists()

    await eventually(gone, timeout=15)
    _, models = await served.get("/v1/models", headers={})
    assert models["data"] == []


def endless_stream(name: str, max_tokens: int) -> dict[str, Any]:
    """A streamed chat request that runs to `max_tokens` (end tokens banned)."""
    return {
        "model": name,
        "messages": [{"role": "user", "content": "go on forever"}],
        "max_tokens": max_tokens,
        "stream": True,
        "logit_bias": {"2": -100, "260": -100},
    }


@pytest.mark.parametrize("reached", ["in-process", "over HTTP"])
async def test_a_client_that_leaves_mid_stream_stops_generation(
    served: RunningBalancer, reached: str
) -> None:
    name = await register_ready(served)
    node = served.ctx.local_node
    assert node is not None and served.ctx.balancer is not None
    if reached == "over HTTP":  # as a node on another machine: the balancer drops its stream
        served.ctx.balancer.dispatcher.detach_local(node.url)
    body = {**endless_stream(name, 400), "temperature": 0}
    async with served.http.post(served.url + "/v1/chat/completions", json=body) as r:
        assert r.status == 200
        assert r.headers["x-llmlb-node"] == node.node_id
        await r.content.readline()  # the first event arrived; now hang up
    runner = node.engines.runners[name]

    async def cancelled() -> bool:
        return runner.cancelled_requests >= 1 and runner.active == 0

    await eventually(cancelled, timeout=10)
    assert runner.generated_tokens < 400


async def test_the_balancer_calls_its_own_node_in_process(served: RunningBalancer) -> None:
    name = await register_ready(served)
    node = served.ctx.local_node
    assert node is not None and node._runner is not None
    server = node._runner.server
    assert server is not None
    body = endless_stream(name, 40)

    async def node_http_requests() -> int:
        """Requests the node's own HTTP app received for one streamed answer."""
        before = server.requests_count  # aiohttp's count of requests received so far
        async with served.http.post(served.url + "/v1/chat/completions", json=body) as r:
            assert r.status == 200 and r.headers["x-llmlb-node"] == node.node_id
            assert b"[DONE]" in await r.read()
        return server.requests_count - before

    assert await node_http_requests() == 0  # in-process: no HTTP between the two
    assert served.ctx.balancer is not None
    served.ctx.balancer.dispatcher.detach_local(node.url)  # as for a node on another machine
    assert await node_http_requests() == 1


async def test_an_engine_that_fails_mid_stream_sends_an_error_event(
    served: RunningBalancer,
) -> None:
    name = await register_ready(served)
    node = served.ctx.local_node
    assert node is not None
    body = endless_stream(name, 2000)
    async with served.http.post(served.url + "/v1/chat/completions", json=body) as r:
        assert r.status == 200
        await r.content.readline()  # the answer is streaming; now the engine goes away
        await node.engines.runners[name].close()
        events = [line for line in (await r.read()).split(b"\n") if line.startswith(b"data: ")]
    error = json.loads(events[-1][len(b"data: ") :])["error"]
    assert "was unloaded before it finished answering" in error["message"]
    assert error["type"] == "server_error"
    assert b"[DONE]" not in b"".join(events)  # the client can tell it was cut short


async def test_requests_queue_fifo_and_never_interrupt_each_other(
    served: RunningBalancer,
) -> None:
    name = await register_ready(served)
    api = client(served)
    msg: list[ChatCompletionMessageParam] = [{"role": "user", "content": "count"}]
    solo = await api.chat.completions.create(model=name, messages=msg, max_tokens=20, temperature=0)
    together = await asyncio.gather(
        *(
            api.chat.completions.create(model=name, messages=msg, max_tokens=20, temperature=0)
            for _ in range(4)
        )
    )
    assert {t.choices[0].message.content for t in together} == {solo.choices[0].message.content}


WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "the weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"metric": {"type": "boolean"}},
            "required": ["metric"],
            "additionalProperties": False,
        },
    },
}


async def test_a_required_tool_call_comes_back_as_tool_calls(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    choices: list[ChatCompletionToolChoiceOptionParam] = [
        "required",
        {"type": "function", "function": {"name": "get_weather"}},
    ]
    for choice in choices:
        answer = await api.chat.completions.create(
            model=name,
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=[WEATHER],
            tool_choice=choice,
            max_tokens=64,
            temperature=0,
        )
        assert answer.choices[0].finish_reason == "tool_calls", answer
        [call] = answer.choices[0].message.tool_calls or []
        assert call.type == "function" and call.function.name == "get_weather"
        assert isinstance(json.loads(call.function.arguments)["metric"], bool)
        assert answer.choices[0].message.content is None
    stream = await api.chat.completions.create(
        model=name,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=64,
        temperature=0,
        stream=True,
    )
    calls: list[ChoiceDeltaToolCall] = []
    finish = None
    async for chunk in stream:
        for c in chunk.choices:
            calls += c.delta.tool_calls or []
            finish = c.finish_reason or finish
    assert finish == "tool_calls" and calls[0].function.name == "get_weather"
    with pytest.raises(openai.BadRequestError):
        await api.chat.completions.create(
            model=name,
            messages=[{"role": "user", "content": "x"}],
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
