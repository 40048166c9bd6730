"""/v1/messages over another OpenAI-compatible server (outside our product, so a small fake):
its Chat Completions stream, cut anywhere, reaches Anthropic's SDK as thinking, text and
tool_use blocks; a server that dies mid-stream ends the stream with an Anthropic error event;
an answer that is not a chat completion is a 502 in Anthropic's shape."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest
from aiohttp import web

from tests.conftest import RunningBalancer
from tests.server.test_api_anthropic import assert_anthropic_error
from tests.server.test_edge import add_external, hostile_node

HI: Any = [{"role": "user", "content": "weather?"}]
THINK: Any = {"type": "enabled", "budget_tokens": 1024}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


CHUNKS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning_content": "let me "}),
    chunk({"reasoning_content": "see"}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"met'},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ric": true}'}}]}),
    chunk({}, "tool_calls"),
    {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 7}},
]
WIRE = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in CHUNKS) + b"data: [DONE]\n\n"


async def streamer(request: web.Request) -> web.StreamResponse:
    """Streams CHUNKS in 7-byte pieces: events arrive split anywhere."""
    body = await request.json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for at in range(0, len(WIRE), 7):
        await response.write(WIRE[at : at + 7])
        await asyncio.sleep(0.001)  # a stream that takes time: its speed can be measured
    await response.write_eof()
    return response


async def test_a_stream_cut_anywhere_becomes_anthropic_blocks(balancer: RunningBalancer) -> None:
    async with hostile_node(streamer) as url:
        await add_external(balancer, url)
        api = anthropic.AsyncAnthropic(base_url=balancer.url, api_key="x", max_retries=0)
        async with api.messages.stream(
            model="m", max_tokens=64, messages=HI, thinking=THINK
        ) as stream:
            deltas = [e.delta.type async for e in stream if e.type == "content_block_delta"]
            final = await stream.get_final_message()
        assert deltas == ["thinking_delta"] * 2 + ["text_delta"] * 2 + ["input_json_delta"] * 2
        thinking, text, call = final.content
        assert thinking.type == "thinking" and thinking.thinking == "let me see"
        assert text.type == "text" and text.text == "Hello"
        assert call.type == "tool_use" and call.id == "call_1" and call.name == "get_weather"
        assert call.input == {"metric": True}
        assert final.stop_reason == "tool_use"
        assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 7)
        # Not asked for thinking: the reasoning is dropped, the rest is the same.
        async with api.messages.stream(model="m", max_tokens=64, messages=HI) as stream:
            final = await stream.get_final_message()
        assert [b.type for b in final.content] == ["text", "tool_use"]
        # The node's speed is measured from translated streams too (dispatch prefers the fast).
        _, nodes = await balancer.get("/v0/nodes")
        assert [n["speed"].get("m") for n in nodes] != [None], nodes


async def test_a_server_dying_mid_stream_is_an_error_event(balancer: RunningBalancer) -> None:
    async def dies(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(WIRE[:200])
        assert request.transport is not None
        request.transport.close()  # mid-answer, mid-event
        return response

    async with hostile_node(dies) as url:
        await add_external(balancer, url)
        body = {"model": "m", "max_tokens": 64, "messages": HI, "stream": True}
        async with balancer.http.post(balancer.url + "/v1/messages", json=body) as r:
            assert r.status == 200
            text = (await r.read()).decode()
        events = [block.split("\n")[0] for block in text.strip().split("\n\n")]
        assert events[0] == "event: message_start" and events[-1] == "event: error", events
        assert "event: message_stop" not in events
        error = json.loads(text.strip().split("\n\n")[-1].split("\n")[1].removeprefix("data: "))
        assert "mid-stream" in assert_anthropic_error(error, "api_error")


async def test_an_answer_that_is_no_chat_completion_is_a_502(balancer: RunningBalancer) -> None:
    async def odd(request: web.Request) -> web.Response:
        return web.json_response({"choices": "none"})

    async with hostile_node(odd) as url:
        await add_external(balancer, url)
        body = {"model": "m", "max_tokens": 64, "messages": HI}
        status, answer = await balancer.post("/v1/messages", body, headers={})
        assert status == 502
        assert_anthropic_error(answer, "api_error")


async def test_what_the_node_is_asked(balancer: RunningBalancer) -> None:
    seen: list[dict[str, Any]] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(await request.json())
        message = {"role": "assistant", "content": "ok"}
        return web.json_response(
            {
                "id": "chatcmpl-2",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            }
        )

    pixel = "iVBORw0KGgo="
    # Shaped like what Claude Code sends: system blocks with cache_control, tools, thinking,
    # metadata, context_management, on `?beta=true` with its beta header.
    body = {
        "model": "m",
        "max_tokens": 32,
        "system": [
            {"type": "text", "text": "You are an agent."},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": pixel},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "t1", "name": "look", "input": {"at": "it"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "a pixel"},
                    {"type": "text", "text": "and?", "cache_control": {"type": "ephemeral"}},
                ],
            },
        ],
        "tools": [
            {
                "name": "look",
                "description": "look at a thing",
                "input_schema": {"type": "object", "properties": {"at": {"type": "string"}}},
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "web_search_20250305", "name": "web_search"},  # hosted: dropped
        ],
        "tool_choice": {"type": "any"},
        "stop_sequences": ["\n\nHuman:"],
        "temperature": 0.5,
        "top_k": 7,
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "metadata": {"user_id": "someone"},
        "context_management": {"edits": []},
    }
    async with hostile_node(echo) as url:
        await add_external(balancer, url)
        headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "interleaved-thinking"}
        async with balancer.http.post(
            balancer.url + "/v1/messages?beta=true", json=body, headers=headers
        ) as r:
            assert r.status == 200, await r.text()
            answer = await r.json()
    assert answer["content"] == [{"type": "text", "text": "ok"}]
    assert answer["stop_reason"] == "end_turn"
    assert answer["usage"] == {"input_tokens": 3, "output_tokens": 1}
    [asked] = seen
    assert asked["messages"] == [
        {"role": "system", "content": "You are an agent.\nBe brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pixel}"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "look", "arguments": '{"at": "it"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "a pixel"},
        {"role": "user", "content": "and?"},
    ]
    assert [t["function"]["name"] for t in asked["tools"]] == ["look"]
    assert asked["tool_choice"] == "required"
    assert asked["stop"] == ["\n\nHuman:"]
    assert (asked["temperature"], asked["top_k"], asked["max_tokens"]) == (0.5, 7, 32)
    assert "stream" not in asked and "metadata" not in asked
    # One history, as for Chat Completions: the request is there under its own endpoint.
    _, rows = await balancer.get("/v0/requests")
    [row] = rows
    assert (row["endpoint"], row["model"], row["status"]) == ("/v1/messages", "m", 200), row
    assert row["node_id"] is not None


async def test_a_model_no_node_can_serve_is_overloaded(balancer: RunningBalancer) -> None:
    status, _ = await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    assert status == 201
    body = {"model": "qwen3", "max_tokens": 8, "messages": HI}
    status, answer = await balancer.post("/v1/messages", body, headers={})
    assert status == 503
    assert "no online node" in assert_anthropic_error(answer, "overloaded_error")


async def test_a_node_error_inside_the_stream_is_an_error_event(balancer: RunningBalancer) -> None:
    failure = {"error": {"message": "out of memory", "type": "server_error", "param": None,
                         "code": "insufficient_memory"}}  # fmt: skip

    async def fails(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in (CHUNKS[0], CHUNKS[3], failure):
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        await response.write_eof()
        return response

    async with hostile_node(fails) as url:
        await add_external(balancer, url)
        api = anthropic.AsyncAnthropic(base_url=balancer.url, api_key="x", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as raised:
            async with api.messages.stream(model="m", max_tokens=64, messages=HI) as stream:
                async for _ in stream:
                    pass
        assert "out of memory" in assert_anthropic_error(raised.value.body, "overloaded_error")
