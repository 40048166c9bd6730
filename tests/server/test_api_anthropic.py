"""/v1/messages: Anthropic's own SDK talks to the balancer and its local node as it would to
Anthropic: text whole and streamed, tool use round trips, thinking, count_tokens, and errors
in Anthropic's shape."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import anthropic
import pytest

from tests.conftest import ENDLESS_REPO, RunningBalancer
from tests.node.conftest import register_ready, served
from tests.node.test_reasoning import thinker, thinking_model
from tests.node.test_vision import IMAGE_TOKENS, VISION_REPO, png, projector_bytes, vision_hub

# Fixtures this module uses.
__all__ = ["projector_bytes", "served", "thinker", "thinking_model", "vision_hub"]

WEATHER: Any = {
    "name": "get_weather",
    "description": "the weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"metric": {"type": "boolean"}},
        "required": ["metric"],
        "additionalProperties": False,
    },
}
CONVERSATION: Any = [
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": [{"type": "text", "text": "hi, what can I do?"}]},
    {"role": "user", "content": [{"type": "text", "text": "tell me a story"}]},
]


def client(b: RunningBalancer, key: str = "unused") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=b.url, api_key=key, max_retries=0)


def assert_anthropic_error(body: object, kind: str) -> str:
    """The body is Anthropic's error shape, of type `kind`; its message."""
    assert isinstance(body, dict) and body.get("type") == "error", body
    assert set(body["error"]) == {"type", "message"} and body["error"]["type"] == kind, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["message"])


async def raw_events(b: RunningBalancer, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a streamed /v1/messages answer, read off the wire."""
    import json

    async with b.http.post(b.url + "/v1/messages?beta=true", json=body) as r:
        assert r.status == 200 and r.content_type == "text/event-stream"
        text = (await r.read()).decode()
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
        assert events[-1][1]["type"] == lines["event"]
    return events


async def test_text_whole_and_streamed_as_anthropic_sends_it(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    # Sampling as older SDKs (and Claude Code) send it; today's SDK takes it as extra_body.
    sampling = {"temperature": 0, "top_k": 5, "top_p": 0.9}
    options: Any = {"model": name, "max_tokens": 12, "extra_body": sampling}
    answer = await api.messages.create(
        system="You are brief.", messages=CONVERSATION, metadata={"user_id": "u1"}, **options
    )
    assert answer.id.startswith("msg_") and answer.type == "message"
    assert answer.role == "assistant" and answer.model == name
    [block] = answer.content
    assert block.type == "text" and block.text
    assert answer.stop_reason in {"end_turn", "max_tokens"} and answer.stop_sequence is None
    assert answer.usage.input_tokens > 0 and 0 < answer.usage.output_tokens <= 12
    # The same conversation through Chat Completions: the same text, the same counts.
    chat = [{"role": "system", "content": "You are brief."}] + [
        {
            "role": m["role"],
            "content": m["content"] if isinstance(m["content"], str) else m["content"][0]["text"],
        }
        for m in CONVERSATION
    ]
    _, twin = await served.post(
        "/v1/chat/completions", {"model": name, "max_tokens": 12, **sampling, "messages": chat}
    )
    assert twin["choices"][0]["message"]["content"] == block.text
    assert twin["usage"]["prompt_tokens"] == answer.usage.input_tokens

    # Streamed through the SDK's helper: the same text, and the final message it assembled.
    async with api.messages.stream(
        system=[{"type": "text", "text": "You are brief."}], messages=CONVERSATION, **options
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == block.text
    assert final.stop_reason == answer.stop_reason and final.usage == answer.usage
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    # Off the wire: Anthropic's exact sequence, a ping included.
    events = await raw_events(
        served,
        {
            "model": name,
            "max_tokens": 12,
            **sampling,
            "messages": CONVERSATION,
            "system": "You are brief.",
            "stream": True,
        },
    )
    names = [e for e, _ in events]
    deltas = names.count("content_block_delta")
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ], names
    assert (
        "".join(d["delta"]["text"] for e, d in events if e == "content_block_delta") == block.text
    )
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == answer.stop_reason
    assert delta["usage"]["output_tokens"] == answer.usage.output_tokens


async def test_a_stop_sequence_is_named(served: RunningBalancer) -> None:
    name = await register_ready(served, ENDLESS_REPO)
    api = client(served)
    hi: Any = [{"role": "user", "content": "tell me a story"}]
    greedy: Any = {"temperature": 0}
    free = await api.messages.create(model=name, max_tokens=24, messages=hi, extra_body=greedy)
    text = free.content[0].text
    stop = text[len(text) // 2 :][:3]  # a piece of the answer's second half
    assert stop.strip(), text
    cut = await api.messages.create(
        model=name, max_tokens=24, messages=hi, stop_sequences=["\n\nHuman:", stop],
        extra_body=greedy,
    )  # fmt: skip
    assert (cut.stop_reason, cut.stop_sequence) == ("stop_sequence", stop), cut
    assert cut.content[0].text == text[: text.index(stop)]
    async with api.messages.stream(
        model=name, max_tokens=24, messages=hi, stop_sequences=[stop], extra_body=greedy
    ) as stream:
        final = await stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", stop)
    # Ended by the limit, or by the model's own end: no stop sequence named.
    assert (free.stop_reason, free.stop_sequence) == ("max_tokens", None)


async def test_a_tool_use_round_trip(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    asked: Any = [{"role": "user", "content": "weather in Paris?"}]
    forced: Any = {"type": "tool", "name": "get_weather"}
    answer = await api.messages.create(
        model=name,
        max_tokens=64,
        extra_body={"temperature": 0},
        messages=asked,
        tools=[WEATHER],
        tool_choice=forced,
    )
    assert answer.stop_reason == "tool_use", answer
    [call] = [b for b in answer.content if b.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict)
    assert isinstance(call.input["metric"], bool) and call.id
    # Streamed: the SDK assembles the input from input_json_delta events.
    async with api.messages.stream(
        model=name,
        max_tokens=64,
        extra_body={"temperature": 0},
        messages=asked,
        tools=[WEATHER],
        tool_choice=forced,
    ) as stream:
        final = await stream.get_final_message()
    [streamed] = [b for b in final.content if b.type == "tool_use"]
    assert final.stop_reason == "tool_use" and streamed.input == call.input
    # The tool's result goes back; the model answers in text.
    history: Any = [
        *asked,
        {"role": "assistant", "content": [c.model_dump() for c in answer.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21C"}],
        },
    ]
    after = await api.messages.create(
        model=name,
        max_tokens=8,
        extra_body={"temperature": 0},
        messages=history,
        tools=[WEATHER],
        tool_choice={"type": "none"},
    )
    assert after.stop_reason in {"end_turn", "max_tokens"}
    assert [b.type for b in after.content] == ["text"] and after.content[0].text
    # The tool result reached the prompt: it holds more tokens than the question alone.
    assert after.usage.input_tokens > answer.usage.input_tokens


async def test_thinking_blocks_only_when_asked(served: RunningBalancer, thinker: str) -> None:
    api = client(served)
    hi: Any = [{"role": "user", "content": "hello there"}]
    thought = await api.messages.create(
        model=thinker,
        max_tokens=3,
        extra_body={"temperature": 0},
        messages=hi,
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    assert thought.content[0].type == "thinking" and thought.content[0].thinking, thought
    assert thought.stop_reason == "max_tokens"
    async with api.messages.stream(
        model=thinker,
        max_tokens=3,
        extra_body={"temperature": 0},
        messages=hi,
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        deltas = [e.delta.type async for e in stream if e.type == "content_block_delta"]
        final = await stream.get_final_message()
    assert set(deltas) == {"thinking_delta"} and final.content[0] == thought.content[0]
    # Not asked: the model's template is told not to think, and no thinking block comes.
    plain = await api.messages.create(
        model=thinker, max_tokens=3, extra_body={"temperature": 0}, messages=hi
    )
    assert [b.type for b in plain.content] == ["text"], plain


async def test_an_image_block_reaches_a_vision_model(
    served: RunningBalancer, vision_hub: Any
) -> None:
    name = await register_ready(served, VISION_REPO)
    api = client(served)
    picture = base64.b64encode(png(40, 30)).decode()
    source = {"type": "base64", "media_type": "image/png", "data": picture}
    image: Any = {"type": "image", "source": source}
    seeing: Any = [{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}]
    blind: Any = [{"role": "user", "content": [{"type": "text", "text": "what?"}]}]
    answer = await api.messages.create(model=name, max_tokens=4, messages=seeing)
    plain = await api.messages.create(model=name, max_tokens=4, messages=blind)
    # The image's embeddings are prompt tokens (plus the newline joining the two parts).
    extra = answer.usage.input_tokens - plain.usage.input_tokens
    assert IMAGE_TOKENS <= extra <= IMAGE_TOKENS + 2, (answer, plain)
    count = await api.messages.count_tokens(model=name, messages=seeing)
    assert count.input_tokens == answer.usage.input_tokens


async def test_count_tokens_is_the_prompt_of_the_answer(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    count = await api.messages.count_tokens(
        model=name, system="You are brief.", messages=CONVERSATION
    )
    answer = await api.messages.create(
        model=name, system="You are brief.", messages=CONVERSATION, max_tokens=2
    )
    assert count.input_tokens == answer.usage.input_tokens > 0


async def test_errors_in_anthropic_shape(served: RunningBalancer) -> None:
    name = await register_ready(served)
    hi: Any = [{"role": "user", "content": "hi"}]
    status, body = await served.post("/v1/messages", {"model": name, "messages": hi})
    assert status == 400 and "max_tokens" in assert_anthropic_error(body, "invalid_request_error")
    status, body = await served.post(
        "/v1/messages", {"model": name, "messages": hi, "max_tokens": 4, "frequency": 1}
    )
    assert status == 400 and "frequency" in assert_anthropic_error(body, "invalid_request_error")
    # The node's own refusal (a temperature past its range) reaches the client in this shape too.
    with pytest.raises(anthropic.BadRequestError) as hot:
        await client(served).messages.create(
            model=name, max_tokens=4, messages=hi, extra_body={"temperature": 5}
        )
    assert "temperature" in assert_anthropic_error(hot.value.body, "invalid_request_error")
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client(served).messages.create(model="nope", max_tokens=4, messages=hi)
    assert_anthropic_error(missing.value.body, "not_found_error")
    # With an API key in place, Anthropic's header carries it; a wrong one is refused.
    _, key = await served.post("/v0/api-keys", {"name": "claude"})
    with pytest.raises(anthropic.AuthenticationError) as refused:
        await client(served, "sk-wrong").messages.create(model=name, max_tokens=4, messages=hi)
    assert_anthropic_error(refused.value.body, "authentication_error")
    answer = await client(served, key["key"]).messages.create(
        model=name,
        max_tokens=4,
        messages=hi,
    )
    assert answer.content and answer.usage.output_tokens > 0
    async with aiohttp.ClientSession() as http:
        bearer = {"Authorization": f"Bearer {key['key']}", "anthropic-version": "2023-06-01"}
        async with http.post(
            served.url + "/v1/messages/count_tokens",
            json={"model": name, "messages": hi},
            headers=bearer,
        ) as r:
            assert r.status == 200 and (await r.json())["input_tokens"] > 0
