"""Structured output on a random-weight model: every `json_schema` answer and every forced
tool call parses and validates, streamed or not, over many seeds and temperatures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionToolParam

from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import register_ready
from tests.support.tiny_gguf import DEFAULT_CHAT_TEMPLATE, IM_END_TOKEN, write_llama_gguf

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 12},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "mood": {"enum": ["happy", "sad", "meh"]},
        "score": {"type": "number", "minimum": -1.5, "exclusiveMaximum": 2},
        "tags": {
            "type": "array",
            "items": {"type": "string", "maxLength": 6},
            "minItems": 1,
            "maxItems": 3,
        },
        "owner": {"$ref": "#/$defs/person"},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"},
        "note": {"anyOf": [{"type": "string", "maxLength": 8}, {"type": "null"}]},
    },
    "required": ["name", "rating", "mood", "score", "tags", "owner", "code", "note"],
    "additionalProperties": False,
    "$defs": {
        "person": {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000},
                "active": {"type": "boolean"},
                "nick": {"type": "string", "maxLength": 5},
            },
            "required": ["id", "active"],
            "additionalProperties": False,
        }
    },
}
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 10},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"enum": ["c", "f"]},
        "stops": {"type": "array", "items": {"$ref": "#/$defs/stop"}, "maxItems": 2},
    },
    "required": ["city", "days", "unit", "stops"],
    "additionalProperties": False,
    "$defs": {"stop": {"type": "integer", "minimum": -20, "maximum": 20}},
}
FORECAST: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "forecast", "description": "weather", "parameters": PARAMETERS},
}
SEEDS = range(30)
TEMPERATURES = (0.0, 0.8, 1.5)


@pytest.fixture
async def roomy(tmp_path: Path, model_hub: FakeHub) -> AsyncIterator[RunningBalancer]:
    """A balancer with its local node and a context that holds a whole answer."""
    settings = balancer_settings(tmp_path / "data", local_node=True, context_size=2048)
    async with run_balancer(settings) as b:
        yield b


def client(b: RunningBalancer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=b.url + "/v1", api_key="unused", max_retries=0)


async def schema_answer(
    api: openai.AsyncOpenAI, model: str, seed: int, temperature: float, stream: bool
) -> tuple[str, str | None]:
    """One json_schema answer's text and finish reason."""
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "review", "schema": SCHEMA}}
    kw: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "review it"}],
        "max_tokens": 1200,
        "temperature": temperature,
        "seed": seed,
        "response_format": fmt,
    }
    if not stream:
        answer = await api.chat.completions.create(**kw)
        return answer.choices[0].message.content or "", answer.choices[0].finish_reason
    parts, finish = [], None
    async for chunk in await api.chat.completions.create(**kw, stream=True):
        for c in chunk.choices:
            parts.append(c.delta.content or "")
            finish = c.finish_reason or finish
    return "".join(parts), finish


@pytest.mark.slow  # 180 answers on one core: 20-40 s
async def test_every_json_schema_answer_parses_and_validates(roomy: RunningBalancer) -> None:
    model = await register_ready(roomy)
    api = client(roomy)
    runs = [(s, t, stream) for s in SEEDS for t in TEMPERATURES for stream in (False, True)]
    for start in range(0, len(runs), 8):  # a few at a time: the engine batches them
        batch = runs[start : start + 8]
        answers = await asyncio.gather(*(schema_answer(api, model, *run) for run in batch))
        for run, (text, finish) in zip(batch, answers, strict=True):
            assert finish == "stop", (run, text)
            jsonschema.validate(json.loads(text), SCHEMA)


PLAIN: dict[str, Any] = {  # what llama-cpp-python's converter took, and broke
    "type": "object",
    "properties": {
        "text": {"type": "string", "maxLength": 20},
        "stars": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["text", "stars"],
    "additionalProperties": False,
}


async def test_strings_hold_no_raw_control_characters_and_integers_keep_their_bounds(
    roomy: RunningBalancer,
) -> None:
    model = await register_ready(roomy)
    api = client(roomy)
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "plain", "schema": PLAIN}}

    async def one(seed: int) -> str:
        answer = await api.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "rate it"}],
            max_tokens=400,
            temperature=0.8,
            seed=seed,
            response_format=fmt,
        )
        return answer.choices[0].message.content or ""

    for text in await asyncio.gather(*(one(seed) for seed in SEEDS)):
        jsonschema.validate(json.loads(text), PLAIN)


async def forced_call(
    api: openai.AsyncOpenAI, model: str, seed: int, temperature: float, stream: bool, limit: int
) -> tuple[str, str, str | None, str | None]:
    """One forced call's function name, arguments, finish reason and content."""
    kw: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [FORECAST],
        "tool_choice": {"type": "function", "function": {"name": "forecast"}},
        "max_tokens": limit,
        "temperature": temperature,
        "seed": seed,
    }
    if not stream:
        answer = await api.chat.completions.create(**kw)
        choice = answer.choices[0]
        [call] = choice.message.tool_calls or []
        return call.function.name, call.function.arguments, choice.finish_reason, None
    names, args, content, finish = [], [], [], None
    async for chunk in await api.chat.completions.create(**kw, stream=True):
        for c in chunk.choices:
            for call in c.delta.tool_calls or []:
                names.append(call.function.name if call.function else None)
                args.append((call.function.arguments if call.function else None) or "")
            content.append(c.delta.content or "")
            finish = c.finish_reason or finish
    return "".join(n or "" for n in names), "".join(args), finish, "".join(content) or None


@pytest.mark.slow  # 180 answers on one core: 20-40 s
async def test_every_forced_tool_call_is_a_valid_call(roomy: RunningBalancer) -> None:
    model = await register_ready(roomy)
    api = client(roomy)
    runs = [(s, t, stream) for s in SEEDS for t in TEMPERATURES for stream in (False, True)]
    for start in range(0, len(runs), 8):
        batch = runs[start : start + 8]
        calls = await asyncio.gather(*(forced_call(api, model, *run, 600) for run in batch))
        for run, (name, arguments, finish, content) in zip(batch, calls, strict=True):
            assert (name, finish, content) == ("forecast", "tool_calls", None), run
            jsonschema.validate(json.loads(arguments), PARAMETERS)


async def test_a_required_call_among_tools_names_one_and_fits_its_schema(
    roomy: RunningBalancer,
) -> None:
    model = await register_ready(roomy)
    api = client(roomy)
    alarm: Any = {"type": "object", "properties": {"at": {"type": "string", "format": "time"}}}
    alarm["required"] = ["at"]
    tools: Any = [
        FORECAST,
        {"type": "function", "function": {"name": "alarm", "parameters": alarm}},
    ]
    schemas = {"forecast": PARAMETERS, "alarm": alarm}

    async def one(seed: int) -> None:
        answer = await api.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "now"}],
            tools=tools,
            tool_choice="required",
            max_tokens=600,
            temperature=1.5,
            seed=seed,
        )
        assert answer.choices[0].finish_reason == "tool_calls"
        [call] = answer.choices[0].message.tool_calls or []
        jsonschema.validate(json.loads(call.function.arguments), schemas[call.function.name])

    await asyncio.gather(*(one(seed) for seed in range(12)))


async def test_a_forced_call_cut_short_is_still_a_tool_call(roomy: RunningBalancer) -> None:
    model = await register_ready(roomy)
    api = client(roomy)
    for stream in (False, True):
        name, arguments, finish, content = await forced_call(api, model, 1, 0.8, stream, 40)
        assert (name, finish, content) == ("forecast", "length", None)
        assert arguments.startswith("{")
        with pytest.raises(ValueError):
            json.loads(arguments)  # cut short, as OpenAI's are: the client sees "length"


async def test_a_schema_it_cannot_honour_is_a_400_before_any_stream(roomy: RunningBalancer) -> None:
    model = await register_ready(roomy)
    api = client(roomy)
    bad: Any = {"type": "object", "properties": {"a": {"$ref": "#/$defs/nowhere"}}}
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "bad", "schema": bad}}
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as err:
            await api.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "x"}],
                response_format=fmt,
                stream=stream,
            )
        assert "'#/$defs/nowhere'" in str(err.value.body)
    tool: Any = {"type": "function", "function": {"name": "f", "parameters": bad}}
    with pytest.raises(openai.BadRequestError) as err:
        await api.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "x"}],
            tools=[tool],
            tool_choice="required",
            stream=True,
        )
    assert "'#/$defs/nowhere'" in str(err.value.body)


async def test_text_that_spells_the_template_s_stop_inside_json_does_not_cut_it(
    roomy: RunningBalancer,
) -> None:
    model = await register_ready(roomy)
    api = client(roomy)
    schema: Any = {"type": "object", "properties": {"tag": {"const": f"a{IM_END_TOKEN}b"}}}
    schema["required"] = ["tag"]
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "tag", "schema": schema}}
    answer = await api.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "tag?"}],
        max_tokens=100,
        temperature=0,
        response_format=fmt,
    )
    assert json.loads(answer.choices[0].message.content or "") == {"tag": f"a{IM_END_TOKEN}b"}


async def test_structured_answers_of_a_model_whose_template_opens_its_thinking_are_content(
    roomy: RunningBalancer, model_hub: FakeHub, tmp_path: Path
) -> None:
    # The prompt ends inside "<think>", so the split would take the whole answer for a thought;
    # under a grammar the answer is the JSON itself.
    opens = DEFAULT_CHAT_TEMPLATE.replace("assistant\n' }}", "assistant\n<think>\n' }}")
    path = write_llama_gguf(tmp_path / "t.gguf", reasoning="think", chat_template=opens)
    model_hub.add(FakeRepo("tiny/opens-gguf", {"tiny-opens-F32.gguf": path.read_bytes()}))
    model = await register_ready(roomy, "tiny/opens-gguf")
    api = client(roomy)
    for stream in (False, True):
        text, finish = await schema_answer(api, model, 3, 0.8, stream)
        jsonschema.validate(json.loads(text), SCHEMA)
        name, arguments, finish, content = await forced_call(api, model, 3, 0.8, stream, 600)
        assert (name, finish, content) == ("forecast", "tool_calls", None)
        jsonschema.validate(json.loads(arguments), PARAMETERS)
