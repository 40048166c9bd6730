"""/v1/responses: OpenAI's own SDK talks to the balancer and its local node as it would to
OpenAI: text whole and streamed, a tool round trip, reasoning, structured output, stored
responses continued with previous_response_id, and errors in OpenAI's shape."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

from tests.conftest import ENDLESS_REPO, RunningBalancer
from tests.node.conftest import register_ready, served
from tests.node.test_reasoning import thinker, thinking_model

# Fixtures this module uses.
__all__ = ["served", "thinker", "thinking_model"]

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "the weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"metric": {"type": "boolean"}},
        "required": ["metric"],
        "additionalProperties": False,
    },
}
CONVERSATION: Any = [
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": [{"type": "output_text", "text": "hi, what can I do?"}]},
    {"role": "user", "content": [{"type": "input_text", "text": "tell me a story"}]},
]
GREEDY: Any = {"temperature": 0}


def client(b: RunningBalancer, key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=b.url + "/v1", api_key=key, max_retries=0)


def assert_openai_error(body: object, param: str | None = None) -> str:
    """The body is OpenAI's error shape (naming `param` when given); its message. The SDK's
    errors hold the inner object as their body."""
    assert isinstance(body, dict), body
    error = body["error"] if set(body) == {"error"} else body
    assert set(error) == {"message", "type", "param", "code"}, body
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param, body
    return str(error["message"])


def last_response(events: list[Any]) -> Any:
    """The response the last event of a stream carries (completed or incomplete)."""
    assert events[-1].type in {"response.completed", "response.incomplete"}, events[-1]
    return events[-1].response


async def raw_events(b: RunningBalancer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a streamed /v1/responses answer, read off the wire."""
    async with b.http.post(b.url + "/v1/responses", json={**body, "stream": True}) as r:
        assert r.status == 200 and r.content_type == "text/event-stream", await r.text()
        text = (await r.read()).decode()
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append(json.loads(lines["data"]))
        assert events[-1]["type"] == lines["event"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


async def test_text_whole_and_streamed(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    options: Any = {"model": name, "max_output_tokens": 12, **GREEDY}
    answer = await api.responses.create(
        instructions="You are brief.",
        input=CONVERSATION,
        metadata={"who": "test"},
        user="u1",
        **options,
    )
    assert answer.id.startswith("resp_") and answer.object == "response"
    assert answer.model == name and answer.status in {"completed", "incomplete"}
    [message] = answer.output
    assert message.type == "message" and message.role == "assistant"
    assert answer.output_text and message.content[0].type == "output_text"
    assert answer.instructions == "You are brief." and answer.metadata == {"who": "test"}
    usage = answer.usage
    assert usage is not None and usage.input_tokens > 0 and 0 < usage.output_tokens <= 12
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    # The same conversation through Chat Completions: the same text, the same prompt.
    chat = [{"role": "system", "content": "You are brief."}] + [
        {"role": m["role"], "content": m["content"] if isinstance(m["content"], str)
         else m["content"][0]["text"]} for m in CONVERSATION
    ]  # fmt: skip
    _, twin = await served.post(
        "/v1/chat/completions", {"model": name, "max_tokens": 12, **GREEDY, "messages": chat}
    )
    assert twin["choices"][0]["message"]["content"] == answer.output_text
    assert twin["usage"]["prompt_tokens"] == usage.input_tokens

    # Streamed through the SDK's helper: the same text, and the response it assembled
    # (the last event's: the helper's final response is only a completed one's).
    async with api.responses.stream(
        instructions="You are brief.", input=CONVERSATION, **options
    ) as stream:
        sdk_events = [event async for event in stream]
    final = last_response(sdk_events)
    assert final.output_text == answer.output_text and final.usage == answer.usage
    assert [e.type for e in sdk_events[:2]] == ["response.created", "response.in_progress"]
    assert sdk_events[-1].type == f"response.{answer.status}"
    # Off the wire: the documented sequence, numbered.
    events = await raw_events(
        served, {"instructions": "You are brief.", "input": CONVERSATION, **options}
    )
    names = [e["type"] for e in events]
    deltas = names.count("response.output_text.delta")
    assert deltas > 0 and names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        f"response.{answer.status}",
    ], names
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == answer.output_text == events[-4]["text"]
    # A plain string input is one user message.
    short = await api.responses.create(model=name, input="hello", max_output_tokens=4)
    assert short.output_text and short.usage is not None and short.usage.input_tokens > 0


async def test_a_cut_answer_is_incomplete(served: RunningBalancer) -> None:
    name = await register_ready(served, ENDLESS_REPO)
    api = client(served)
    answer = await api.responses.create(model=name, input="tell me a story", max_output_tokens=5)
    assert answer.status == "incomplete" and answer.incomplete_details is not None
    assert answer.incomplete_details.reason == "max_output_tokens"
    assert answer.usage is not None and answer.usage.output_tokens == 5
    async with api.responses.stream(
        model=name, input="tell me a story", max_output_tokens=5
    ) as stream:
        kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.incomplete"


async def test_a_tool_round_trip(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    forced: Any = {"type": "function", "name": "get_weather"}
    asked: Any = [{"role": "user", "content": "weather in Paris?"}]
    options: Any = {"model": name, "max_output_tokens": 64, "tools": [WEATHER], **GREEDY}
    answer = await api.responses.create(input=asked, tool_choice=forced, **options)
    [call] = [item for item in answer.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id and call.id.startswith("fc_")
    assert isinstance(json.loads(call.arguments)["metric"], bool), call
    # Streamed: the SDK assembles the arguments from their delta events.
    async with api.responses.stream(input=asked, tool_choice=forced, **options) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    [streamed] = [item for item in final.output if item.type == "function_call"]
    assert streamed.arguments == call.arguments and streamed.name == call.name
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    # The tool's result goes back as items; the model answers in text.
    history: Any = [
        *asked,
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"},
    ]
    after = await api.responses.create(input=history, tool_choice="none", **options)
    assert [item.type for item in after.output] == ["message"] and after.output_text
    # The call and its result reached the prompt: more tokens than the question alone.
    assert after.usage is not None and answer.usage is not None
    assert after.usage.input_tokens > answer.usage.input_tokens


async def test_previous_response_id_continues_the_conversation(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    first = await api.responses.create(
        model=name, instructions="Be brief.", input="hello", max_output_tokens=8, **GREEDY
    )
    second = await api.responses.create(
        model=name,
        instructions="Be brief.",
        input="and then?",
        previous_response_id=first.id,
        max_output_tokens=8,
        **GREEDY,
    )
    assert second.previous_response_id == first.id
    # The second prompt held the first exchange: the same prompt as a chat of all three turns.
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "and then?"},
    ]
    _, twin = await served.post(
        "/v1/chat/completions", {"model": name, "max_tokens": 8, **GREEDY, "messages": chat}
    )
    assert second.usage is not None and first.usage is not None
    assert twin["usage"]["prompt_tokens"] == second.usage.input_tokens > first.usage.input_tokens
    assert twin["choices"][0]["message"]["content"] == second.output_text
    # Stored: read back by id, then deleted.
    again = await api.responses.retrieve(first.id)
    assert again.id == first.id and again.output_text == first.output_text
    await api.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError) as gone:
        await api.responses.retrieve(first.id)
    assert_openai_error(gone.value.body)
    with pytest.raises(openai.NotFoundError) as missing:
        await api.responses.create(
            model=name, input="more", previous_response_id=first.id, max_output_tokens=2
        )
    assert_openai_error(missing.value.body, "previous_response_id")
    # A streamed answer is stored as well, the moment it is complete; store: false is not.
    async with api.responses.stream(model=name, input="hi", max_output_tokens=4) as stream:
        streamed = last_response([event async for event in stream])
    assert (await api.responses.retrieve(streamed.id)).output_text == streamed.output_text
    unstored = await api.responses.create(model=name, input="hi", max_output_tokens=2, store=False)
    with pytest.raises(openai.NotFoundError):
        await api.responses.retrieve(unstored.id)


async def test_reasoning_is_a_summary_item(served: RunningBalancer, thinker: str) -> None:
    api = client(served)
    reasoning: Any = {"effort": "medium", "summary": "auto"}
    options: Any = {"model": thinker, "input": "hi there", "max_output_tokens": 3, **GREEDY}
    answer = await api.responses.create(reasoning=reasoning, **options)
    [item] = answer.output
    assert item.type == "reasoning" and item.summary[0].type == "summary_text", answer
    assert item.summary[0].text
    async with api.responses.stream(reasoning=reasoning, **options) as stream:
        events = [event async for event in stream]
    final = last_response(events)
    assert "response.reasoning_summary_text.delta" in [e.type for e in events]
    assert final.output[0].type == "reasoning"
    assert final.output[0].summary[0].text == item.summary[0].text
    # Effort "none": the model's template is told not to think.
    plain = await api.responses.create(reasoning={"effort": "none"}, **options)
    assert [i.type for i in plain.output] == ["message"], plain


async def test_json_schema_output_validates(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "stars": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["name", "stars"],
        "additionalProperties": False,
    }
    form: Any = {"format": {"type": "json_schema", "name": "review", "schema": schema}}
    for temperature in (0.0, 0.8):
        answer = await api.responses.create(
            model=name, input="review it", text=form, max_output_tokens=200,
            temperature=temperature,
        )  # fmt: skip
        jsonschema.validate(json.loads(answer.output_text), schema)
    async with api.responses.stream(
        model=name, input="review it", text=form, max_output_tokens=200
    ) as stream:
        final = await stream.get_final_response()
    jsonschema.validate(json.loads(final.output_text), schema)


async def test_errors_in_openai_shape(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = client(served)
    for body, param in (
        ({"model": name, "input": 5}, "input"),
        ({"model": name}, "input"),
        ({"model": name, "input": [{"type": "item_reference", "id": "x"}]}, "input"),
        ({"model": name, "input": "hi", "top_logprobs": 2}, "top_logprobs"),
        ({"model": name, "input": "hi", "truncation": "auto"}, "truncation"),
        ({"model": name, "input": "hi", "tools": [WEATHER], "tool_choice": "any"}, "tool_choice"),
        ({"model": name, "input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format"),
    ):
        status, answer = await served.post("/v1/responses", body, headers={})
        assert status == 400, (body, answer)
        assert_openai_error(answer, param)
    # The node's own refusal (a temperature past its range) reaches the client in this shape.
    with pytest.raises(openai.BadRequestError) as hot:
        await api.responses.create(model=name, input="hi", temperature=5)
    assert "temperature" in assert_openai_error(hot.value.body)
    # Streamed, the same refusal comes before any event: a 400, not a failed stream.
    for bad in ({"temperature": 5}, {"input": 5}):
        async with served.http.post(
            served.url + "/v1/responses", json={"model": name, "input": "hi", "stream": True, **bad}
        ) as r:
            assert r.status == 400 and r.content_type == "application/json", await r.text()
            assert_openai_error(await r.json())
    with pytest.raises(openai.NotFoundError) as unknown:
        await api.responses.create(model="nope", input="hi")
    assert_openai_error(unknown.value.body, "model")
    with pytest.raises(openai.NotFoundError) as missing:
        await api.responses.retrieve("resp_nothing")
    assert_openai_error(missing.value.body)
    status, answer = await served.delete("/v1/responses/resp_nothing", headers={})
    assert status == 404
    assert_openai_error(answer)


async def test_a_key_reads_only_its_own_responses(served: RunningBalancer) -> None:
    name = await register_ready(served)
    _, alice = await served.post("/v0/api-keys", {"name": "alice"})
    _, bob = await served.post("/v0/api-keys", {"name": "bob"})
    with pytest.raises(openai.AuthenticationError) as refused:
        await client(served, "sk-wrong").responses.create(model=name, input="hi")
    assert_openai_error(refused.value.body)
    mine = await client(served, alice["key"]).responses.create(
        model=name, input="hi", max_output_tokens=2
    )
    assert (await client(served, alice["key"]).responses.retrieve(mine.id)).id == mine.id
    theirs = client(served, bob["key"])
    with pytest.raises(openai.NotFoundError):
        await theirs.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        await theirs.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError):
        await theirs.responses.create(
            model=name, input="more", previous_response_id=mine.id, max_output_tokens=2
        )
    # Still there for its owner: the other key's delete did nothing.
    assert (await client(served, alice["key"]).responses.retrieve(mine.id)).id == mine.id
