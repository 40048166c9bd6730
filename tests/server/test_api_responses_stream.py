"""/v1/responses over another OpenAI-compatible server (outside our product, so a small fake):
its Chat Completions stream, cut anywhere, reaches OpenAI's SDK as reasoning, message and
function_call items (a namespaced function named back as the client named it); a server
that dies mid-stream ends the stream with `error` and response.failed; what the node is
asked for a Codex-shaped request; hosted tools dropped with a note."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
from aiohttp import web

from tests.conftest import RunningBalancer
from tests.server.test_api_anthropic_stream import chunk
from tests.server.test_api_responses import assert_openai_error
from tests.server.test_edge import add_external, hostile_node

SPAWN: Any = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for sub-agents.",
    "tools": [
        {
            "type": "function",
            "name": "spawn_agent",
            "description": "start one",
            "strict": False,
            "parameters": {"type": "object", "properties": {"task": {"type": "string"}}},
        }
    ],
}
HOSTED: Any = {"type": "web_search", "external_web_access": False}
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
                    "function": {"name": "multi_agent_v1__spawn_agent", "arguments": '{"ta'},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'sk": "x"}'}}]}),
    chunk({}, "tool_calls"),
    {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 7}},
]
WIRE = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in CHUNKS) + b"data: [DONE]\n\n"


def sdk(b: RunningBalancer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=b.url + "/v1", api_key="x", max_retries=0)


async def streamer(request: web.Request) -> web.StreamResponse:
    """Streams CHUNKS in 7-byte pieces: events arrive split anywhere."""
    body = await request.json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert [t["function"]["name"] for t in body["tools"]] == ["multi_agent_v1__spawn_agent"]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for at in range(0, len(WIRE), 7):
        await response.write(WIRE[at : at + 7])
        await asyncio.sleep(0.001)
    await response.write_eof()
    return response


async def test_a_stream_cut_anywhere_becomes_response_items(balancer: RunningBalancer) -> None:
    async with hostile_node(streamer) as url:
        await add_external(balancer, url)
        async with sdk(balancer).responses.stream(
            model="m", input="go", tools=[SPAWN, HOSTED], reasoning={"summary": "auto"}
        ) as stream:
            kinds = [event.type async for event in stream]
            final = await stream.get_final_response()
        reasoning, message, call = final.output
        assert reasoning.type == "reasoning" and reasoning.summary[0].text == "let me see"
        assert message.type == "message" and final.output_text == "Hello"
        assert call.type == "function_call" and call.call_id == "call_1"
        # Named back as Codex named it: the function, in its namespace.
        assert (call.name, call.namespace, call.arguments) == (
            "spawn_agent",
            "multi_agent_v1",
            '{"task": "x"}',
        )
        assert final.usage is not None
        assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 7)
        assert kinds.count("response.reasoning_summary_text.delta") == 2
        assert kinds.count("response.output_text.delta") == 2
        assert kinds.count("response.function_call_arguments.delta") == 2
        assert (
            kinds.count("response.output_item.added")
            == 3
            == kinds.count("response.output_item.done")
        )
        # The hosted tool was not offered, and the response says so.
        warnings = (final.model_extra or {}).get("warnings")
        assert warnings and "web_search" in warnings[0], final


async def test_a_server_dying_mid_stream_is_a_failed_response(balancer: RunningBalancer) -> None:
    async def dies(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(WIRE[:200])
        assert request.transport is not None
        request.transport.close()  # mid-answer, mid-event
        return response

    async with hostile_node(dies) as url:
        await add_external(balancer, url)
        body = {"model": "m", "input": "go", "stream": True}
        async with balancer.http.post(balancer.url + "/v1/responses", json=body) as r:
            assert r.status == 200
            text = (await r.read()).decode()
        events = [json.loads(b.split("\ndata: ")[1]) for b in text.strip().split("\n\n")]
        kinds = [e["type"] for e in events]
        assert kinds[0] == "response.created" and kinds[-2:] == ["error", "response.failed"]
        assert "response.completed" not in kinds
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        failed = events[-1]["response"]
        assert failed["status"] == "failed" and "mid-stream" in failed["error"]["message"]
        # The request is in the history as the failure it was.
        _, rows = await balancer.get("/v0/requests")
        assert rows[0]["endpoint"] == "/v1/responses" and "mid-stream" in rows[0]["error"]


async def test_a_node_error_inside_the_stream_fails_the_response(
    balancer: RunningBalancer,
) -> None:
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
        async with sdk(balancer).responses.stream(model="m", input="go") as stream:
            events = [event async for event in stream]
        assert events[-1].type == "response.failed"
        assert events[-1].response.error is not None
        assert "out of memory" in events[-1].response.error.message


async def test_an_answer_that_is_no_chat_completion_is_a_502(balancer: RunningBalancer) -> None:
    async def odd(request: web.Request) -> web.Response:
        return web.json_response({"choices": "none"})

    async with hostile_node(odd) as url:
        await add_external(balancer, url)
        status, answer = await balancer.post("/v1/responses", {"model": "m", "input": "hi"})
        assert status == 502
        assert_openai_error(answer)


async def test_what_the_node_is_asked_for_a_codex_request(balancer: RunningBalancer) -> None:
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

    pixel = "data:image/png;base64,iVBORw0KGgo="
    # Shaped like what Codex 0.171 sends: developer messages with ids, input_text parts, a
    # namespace tool and a hosted one, reasoning hints, client metadata, store: false.
    body = {
        "model": "m",
        "input": [
            {"type": "message", "id": "msg_1", "role": "developer",
             "content": [{"type": "input_text", "text": "You are an agent."}]},
            {"type": "message", "role": "developer",
             "content": [{"type": "input_text", "text": "Be brief."}]},
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "what is this?"},
                         {"type": "input_image", "image_url": pixel, "detail": "auto"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "Let me look."}]},
            {"type": "function_call", "call_id": "c1", "name": "spawn_agent",
             "namespace": "multi_agent_v1", "arguments": '{"task": "look"}'},
            {"type": "function_call", "call_id": "c2", "name": "exec_command",
             "arguments": '{"cmd": "ls"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "a pixel"},
            {"type": "function_call_output", "call_id": "c2",
             "output": [{"type": "input_text", "text": "file.txt"}]},
            {"role": "user", "content": "and?"},
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "run", "strict": False,
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
            SPAWN,
            HOSTED,
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "stream": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "k",
        "client_metadata": {"turn_id": "t"},
        "instructions": "Answer in English.",
        "max_output_tokens": 32,
        "temperature": 0.5,
        "top_p": 0.9,
        "service_tier": "auto",
        "safety_identifier": "someone",
        "truncation": "disabled",
    }  # fmt: skip
    async with hostile_node(echo) as url:
        await add_external(balancer, url)
        status, answer = await balancer.post("/v1/responses", body)
        assert status == 200, answer
    assert answer["output"][0]["content"][0]["text"] == "ok" and answer["status"] == "completed"
    assert answer["usage"]["total_tokens"] == 4 and answer["store"] is False
    [asked] = seen
    calls = [
        {"id": "c1", "type": "function",
         "function": {"name": "multi_agent_v1__spawn_agent", "arguments": '{"task": "look"}'}},
        {"id": "c2", "type": "function",
         "function": {"name": "exec_command", "arguments": '{"cmd": "ls"}'}},
    ]  # fmt: skip
    assert asked["messages"] == [
        {"role": "system", "content": "Answer in English.\n\nYou are an agent.\n\nBe brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": pixel, "detail": "auto"}},
            ],
        },
        {"role": "assistant", "content": "Let me look.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "a pixel"},
        {"role": "tool", "tool_call_id": "c2", "content": "file.txt"},
        {"role": "user", "content": "and?"},
    ]
    names = [t["function"]["name"] for t in asked["tools"]]
    assert names == ["exec_command", "multi_agent_v1__spawn_agent"]
    assert asked["tool_choice"] == "auto" and asked["parallel_tool_calls"] is True
    assert (asked["max_tokens"], asked["temperature"], asked["top_p"]) == (32, 0.5, 0.9)
    assert asked["chat_template_kwargs"] == {"enable_thinking": True}
    for hint in ("include", "prompt_cache_key", "client_metadata", "store", "stream", "input"):
        assert hint not in asked
    # One history, as for Chat Completions: the request is there under its own endpoint.
    _, rows = await balancer.get("/v0/requests")
    [row] = rows
    assert (row["endpoint"], row["model"], row["status"]) == ("/v1/responses", "m", 200), row
