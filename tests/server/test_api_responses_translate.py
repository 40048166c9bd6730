"""The Responses stream translation's fast path (a node's text events copied without being
encoded again): whatever the text holds, the client reads the same events as on the slow
path, byte for byte, and an event shaped to slip fields into ours is read the slow way. And
what a request turns into, field by field, without a node."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.core.errors import BadRequest
from app.server.api_responses_answer import ResponsesAnswer
from app.server.api_responses_request import to_chat
from tests.server.test_api_anthropic_translate import TEXTS, event

COUNTER = [itertools.count()]  # restarted by each translation


@pytest.fixture(autouse=True)
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids counted, not random: two translations of one stream can be compared whole."""
    monkeypatch.setattr(
        "app.server.api_responses_events.new_id", lambda prefix: f"{prefix}_{next(COUNTER[0])}"
    )
    monkeypatch.setattr("app.server.api_responses_answer.new_id", lambda prefix: f"{prefix}_x")
    monkeypatch.setattr("app.server.api_responses_answer.time.time", lambda: 1.0)


async def translated(buffers: list[bytes]) -> list[dict[str, Any]]:
    async def node() -> AsyncIterator[bytes]:
        for buffer in buffers:
            yield buffer

    COUNTER[0] = itertools.count()
    _, asked = to_chat({"model": "m", "input": "hi", "stream": True})
    answer = ResponsesAnswer(asked, lambda response, reply: None)
    out = b"".join([b async for b in answer.stream(node())])
    events = []
    for block in out.decode().strip().split("\n\n"):
        kind, data = block.split("\n")
        events.append(json.loads(data.removeprefix("data: ")))
        assert events[-1]["type"] == kind.removeprefix("event: ")
    return events


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


async def test_the_fast_path_gives_the_slow_paths_events() -> None:
    wire = [event({"content": t}) for t in TEXTS] + [event({}, "stop"), b"data: [DONE]\n\n"]
    fast = await translated(wire)
    assert (
        text_of(fast) == "".join(TEXTS) == fast[-1]["response"]["output"][0]["content"][0]["text"]
    )
    # The same bytes cut anywhere (no fast path): the same events.
    whole = b"".join(wire)
    assert await translated([whole[i : i + 5] for i in range(0, len(whole), 5)]) == fast
    assert [e["sequence_number"] for e in fast] == list(range(len(fast)))


async def test_an_event_that_would_slip_fields_in_is_read_the_slow_way() -> None:
    first = event({"content": "a"})
    head, tail = first.split(b'"a"')
    sly = head + b'"b", "injected": "x"' + tail  # same head and tail, a different middle
    events = await translated([first, sly, event({}, "stop"), b"data: [DONE]\n\n"])
    assert text_of(events) == "ab"
    assert all("injected" not in e for e in events)


def test_a_namespace_and_hosted_tools() -> None:
    chat, asked = to_chat(
        {
            "model": "m",
            "input": "go",
            "tools": [
                {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]},
                {"type": "web_search"},
                {"type": "computer_use_preview", "display_width": 1},
                {"type": "code_interpreter", "container": {"type": "auto"}},
            ],
            "tool_choice": {"type": "function", "name": "f", "namespace": "ns"},
        }
    )
    assert [t["function"]["name"] for t in chat["tools"]] == ["ns__f"]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "ns__f"}}
    assert asked.names == {"ns__f": ("ns", "f")}
    assert [note.split("'")[1] for note in asked.notes] == [
        "web_search",
        "computer_use_preview",
        "code_interpreter",
    ]


def test_what_changes_the_answer_is_refused_by_name() -> None:
    for extra, param in (
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"background": True}, "background"),
        ({"truncation": "auto"}, "truncation"),
        ({"prompt": {"id": "p"}}, "prompt"),
        ({"conversation": "c"}, "conversation"),
        ({"max_tool_calls": 2}, "max_tool_calls"),
        ({"tools": [{"type": "mystery"}]}, "tools"),
        ({"tool_choice": {"type": "web_search"}, "tools": [{"type": "function", "name": "f"}]},
         "tool_choice"),
        ({"input": [{"type": "message", "role": "user",
                     "content": [{"type": "input_file", "file_id": "f"}]}]}, "input"),
    ):  # fmt: skip
        with pytest.raises(BadRequest) as refused:
            to_chat({"model": "m", "input": "hi", **extra})
        assert refused.value.param == param, (extra, refused.value.message)
    # Hints are accepted and dropped.
    chat, asked = to_chat(
        {
            "model": "m",
            "input": "hi",
            "store": False,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "k",
            "client_metadata": {"a": "b"},
            "service_tier": "auto",
            "safety_identifier": "s",
            "metadata": {"x": "y"},
            "user": "u",
            "truncation": "disabled",
            "text": {"verbosity": "low"},
        }
    )
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert asked.store is False


def test_json_schema_becomes_the_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    form = {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}
    chat, _ = to_chat({"model": "m", "input": "hi", "text": {"format": form}})
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema, "strict": True},
    }
    chat, _ = to_chat({"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}})
    assert chat["response_format"] == {"type": "json_object"}
