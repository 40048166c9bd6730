"""Chat and text completions, the rest of the API: `n` choices, logprobs, parallel tool calls,
unsupported fields refused by name, a streamed request refused before its stream, prefill.
Real node, generated models, the official `openai` SDK as the client."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import llama_cpp
import openai
import pytest

from tests.conftest import ENDLESS_REPO, RunningBalancer
from tests.node.conftest import register_ready
from tests.node.test_vision import (  # noqa: F401  (fixtures used by name)
    VISION_REPO,
    image_message,
    png,
    projector_bytes,
    vision_hub,
)
from tests.support.tiny_gguf import DEFAULT_CHAT_TEMPLATE, write_llama_gguf

HELLO: Any = [{"role": "user", "content": "Tell me a story"}]


def client(b: RunningBalancer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=b.url + "/v1", api_key="unused", max_retries=0)


async def test_n_gives_several_different_choices_streamed_and_not(
    served: RunningBalancer,
) -> None:
    model = await register_ready(served, ENDLESS_REPO)  # answers run to max_tokens
    api = client(served)
    kw: Any = {"model": model, "messages": HELLO, "max_tokens": 6, "temperature": 1.0, "seed": 7}
    answer = await api.chat.completions.create(n=2, **kw)
    assert [c.index for c in answer.choices] == [0, 1]
    texts = [c.message.content for c in answer.choices]
    assert all(texts) and texts[0] != texts[1]  # one seed asked, a seed per choice used
    assert [c.finish_reason for c in answer.choices] == ["length", "length"]
    assert answer.usage is not None and answer.usage.completion_tokens == 12
    one = await api.chat.completions.create(n=1, **kw)
    assert one.choices[0].message.content == texts[0]  # the first choice keeps the seed

    parts: dict[int, list[str]] = {0: [], 1: []}
    finishes: dict[int, str | None] = {}
    usage = None
    stream = await api.chat.completions.create(
        n=2, stream=True, stream_options={"include_usage": True}, **kw
    )
    async for chunk in stream:
        usage = chunk.usage or usage
        for c in chunk.choices:
            parts[c.index].append(c.delta.content or "")
            finishes[c.index] = c.finish_reason or finishes.get(c.index)
    assert finishes == {0: "length", 1: "length"}
    assert all("".join(p) for p in parts.values())
    assert "".join(parts[0]) != "".join(parts[1])
    assert usage is not None and usage.completion_tokens == 12

    text = await api.completions.create(model=model, prompt="Once", n=3, max_tokens=4, seed=3)
    assert sorted(c.index for c in text.choices) == [0, 1, 2]
    assert text.usage is not None and text.usage.completion_tokens == 12
    with pytest.raises(openai.BadRequestError) as err:
        await api.chat.completions.create(n=9, **kw)
    assert err.value.body["param"] == "n"  # type: ignore[index]


async def test_logprobs_are_the_model_s_own_and_a_greedy_token_is_the_likeliest(
    served: RunningBalancer,
) -> None:
    model = await register_ready(served, ENDLESS_REPO)
    api = client(served)
    kw: Any = {"model": model, "messages": HELLO, "max_tokens": 8, "temperature": 0}
    answer = await api.chat.completions.create(logprobs=True, top_logprobs=3, **kw)
    choice = answer.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    entries = choice.logprobs.content
    assert len(entries) == 8
    assert "".join(e.token for e in entries) == choice.message.content
    for e in entries:
        assert e.logprob <= 0 and len(e.top_logprobs) == 3
        assert e.top_logprobs[0].token == e.token and e.top_logprobs[0].logprob == e.logprob
        values = [t.logprob for t in e.top_logprobs]
        assert values == sorted(values, reverse=True)
        assert sum(math.exp(v) for v in values) <= 1.0 + 1e-6  # a distribution's part
        assert e.bytes == list(e.token.encode())
    assert -100 < sum(e.logprob for e in entries) < 0

    streamed: list[Any] = []
    async for chunk in await api.chat.completions.create(
        logprobs=True, top_logprobs=3, stream=True, **kw
    ):
        for c in chunk.choices:
            streamed += (c.logprobs.content or []) if c.logprobs else []
    assert [e.token for e in streamed] == [e.token for e in entries]
    # (the prompt comes from the slot's cache now: the same values up to float rounding)
    assert [e.logprob for e in streamed] == pytest.approx([e.logprob for e in entries], abs=1e-4)

    # Sampled hot, the first step's distribution is still the model's own: the same values.
    hot = await api.chat.completions.create(
        model=model,
        messages=HELLO,
        max_tokens=1,
        temperature=1.5,
        seed=5,
        logprobs=True,
        top_logprobs=3,
    )
    assert hot.choices[0].logprobs is not None
    [first] = hot.choices[0].logprobs.content or []
    assert [t.token for t in first.top_logprobs] == [t.token for t in entries[0].top_logprobs]
    hot_values = [t.logprob for t in first.top_logprobs]
    assert hot_values == pytest.approx([t.logprob for t in entries[0].top_logprobs], abs=1e-4)

    text = await api.completions.create(
        model=model, prompt="Once", max_tokens=5, temperature=0, logprobs=2
    )
    legacy = text.choices[0].logprobs
    assert legacy is not None and legacy.tokens and legacy.token_logprobs and legacy.top_logprobs
    assert "".join(legacy.tokens) == text.choices[0].text
    assert legacy.text_offset == [sum(map(len, legacy.tokens[:i])) for i in range(5)]
    for value, top in zip(legacy.token_logprobs, legacy.top_logprobs, strict=True):
        assert value <= 0 and len(top) == 2 and value == max(top.values())
    tokens: list[str] = []
    async for chunk in await api.completions.create(
        model=model, prompt="Once", max_tokens=5, temperature=0, logprobs=2, stream=True
    ):
        for c in chunk.choices:
            tokens += c.logprobs.tokens or [] if c.logprobs else []
    assert tokens == legacy.tokens
    no = await api.chat.completions.create(**kw)
    assert no.choices[0].logprobs is None


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 4}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER: Any = {"type": "function", "function": {"name": "weather", "parameters": PARAMETERS}}


async def test_parallel_tool_calls_false_gives_one_call(served: RunningBalancer) -> None:
    # The endless model would rather go on than end: after a forced call it writes another
    # when several are allowed.
    model = await register_ready(served, ENDLESS_REPO)
    api = client(served)

    async def calls(parallel: bool, stream: bool) -> tuple[list[tuple[str, str]], str | None]:
        kw: Any = {
            "model": model,
            "messages": [{"role": "user", "content": "weather in two cities"}],
            "tools": [WEATHER],
            "tool_choice": "required",
            "parallel_tool_calls": parallel,
            "max_tokens": 120,
            "temperature": 0,
        }
        if not stream:
            answer = await api.chat.completions.create(**kw)
            found = answer.choices[0].message.tool_calls or []
            named = [(c.function.name, c.function.arguments) for c in found]
            return named, answer.choices[0].finish_reason
        named, finish = [], None
        async for chunk in await api.chat.completions.create(stream=True, **kw):
            for c in chunk.choices:
                for call in c.delta.tool_calls or []:
                    assert call.function is not None
                    named.append((call.function.name or "", call.function.arguments or ""))
                finish = c.finish_reason or finish
        return named, finish

    for stream in (False, True):
        several, _ = await calls(True, stream)
        assert len(several) >= 2 and {name for name, _ in several} == {"weather"}
        json.loads(several[0][1])
        [(name, arguments)], finish = await calls(False, stream)
        assert (name, finish) == ("weather", "tool_calls")
        assert set(json.loads(arguments)) == {"city"}


async def test_a_field_that_would_change_the_answer_is_refused_by_name(
    served: RunningBalancer,
) -> None:
    model = await register_ready(served)
    api = client(served)
    refused: list[tuple[str, Any]] = [
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("web_search_options", {}),
        ("functions", [{"name": "f", "parameters": {"type": "object"}}]),
        ("function_call", "auto"),
        ("store", True),
    ]
    for stream in (False, True):
        for name, value in refused:
            with pytest.raises(openai.BadRequestError) as err:
                await api.chat.completions.create(
                    model=model, messages=HELLO, stream=stream, extra_body={name: value}
                )
            assert err.value.body["param"] == name, name  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        await api.completions.create(model=model, prompt="a", suffix="b")
    assert err.value.body["param"] == "suffix"  # type: ignore[index]
    # What only carries metadata or a hint is accepted.
    answer = await api.chat.completions.create(
        model=model,
        messages=HELLO,
        max_tokens=2,
        metadata={"team": "a"},
        user="u1",
        store=False,
        service_tier="auto",
        modalities=["text"],
        prompt_cache_key="k",
        safety_identifier="s",
    )
    assert answer.choices[0].finish_reason in {"stop", "length"}


async def test_a_streamed_prompt_beyond_the_context_is_a_400_before_the_stream(
    served: RunningBalancer,
) -> None:
    model = await register_ready(served)
    api = client(served)
    long: Any = [{"role": "user", "content": "word " * 2000}]  # the context holds 512
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as err:
            await api.chat.completions.create(model=model, messages=long, stream=stream)
        assert err.value.code == "context_length_exceeded"
        with pytest.raises(openai.BadRequestError) as err:
            await api.completions.create(model=model, prompt="word " * 2000, stream=stream)
        assert err.value.code == "context_length_exceeded"
    node = served.ctx.local_node  # the node's own HTTP API, as a LAN balancer reaches it
    assert node is not None
    async with served.http.post(
        node.url + "/v1/chat/completions",
        json={"model": model, "messages": long, "stream": True},
        headers={"X-Balancer-Token": node.balancer_token or ""},
    ) as r:
        assert r.status == 400 and r.content_type == "application/json"
        body = await r.json()
    assert body["error"]["code"] == "context_length_exceeded"


async def test_an_assistant_message_last_is_continued(
    served: RunningBalancer, tmp_path: Path
) -> None:
    model = await register_ready(served)
    api = client(served)
    prefix = "Once upon a"
    messages: Any = [*HELLO, {"role": "assistant", "content": prefix}]
    answer = await api.chat.completions.create(
        model=model, messages=messages, max_tokens=4, temperature=0
    )
    assert answer.usage is not None
    # The prompt is the turn so far, open: the template's generation prompt, then the prefix,
    # and no end of turn (tokenized by llama.cpp itself, from the same template).
    path = write_llama_gguf(tmp_path / "same.gguf", chat_template=DEFAULT_CHAT_TEMPLATE)
    vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    opened = f"<s><|im_start|>user\nTell me a story<|im_end|>\n<|im_start|>assistant\n{prefix}"
    closed = opened + "<|im_end|>\n<|im_start|>assistant\n"
    assert answer.usage.prompt_tokens == len(vocab.tokenize(opened.encode(), False, True))
    assert answer.usage.prompt_tokens < len(vocab.tokenize(closed.encode(), False, True))
    text = answer.choices[0].message.content or ""
    assert not text.startswith(prefix)  # the answer is the continuation only
    # Streamed, the same continuation.
    parts = []
    async for chunk in await api.chat.completions.create(
        model=model, messages=messages, max_tokens=4, temperature=0, stream=True
    ):
        parts += [c.delta.content or "" for c in chunk.choices]
    assert "".join(parts) == text
    # An assistant turn with tool calls is a turn, not a prefill: it is closed.
    call: Any = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    turn: Any = [*HELLO, {"role": "assistant", "content": prefix, "tool_calls": [call]}]
    closed_answer = await api.chat.completions.create(model=model, messages=turn, max_tokens=1)
    assert closed_answer.usage is not None
    assert closed_answer.usage.prompt_tokens > answer.usage.prompt_tokens


@pytest.mark.usefixtures("vision_hub")
async def test_n_choices_of_a_chat_with_an_image_each_read_the_image(
    served: RunningBalancer,
) -> None:
    model = await register_ready(served, VISION_REPO)
    api = client(served)
    messages: Any = [image_message("what?", png(40, 30))]
    answer = await api.chat.completions.create(
        model=model, messages=messages, n=2, max_tokens=4, temperature=1.0, seed=3
    )
    one = await api.chat.completions.create(
        model=model, messages=messages, max_tokens=4, temperature=1.0, seed=3
    )
    assert [c.index for c in answer.choices] == [0, 1]
    assert answer.usage is not None and one.usage is not None
    assert answer.usage.prompt_tokens == one.usage.prompt_tokens  # the image in each, once
    counted = answer.usage.completion_tokens
    assert counted >= 2 and all(c.finish_reason for c in answer.choices)
