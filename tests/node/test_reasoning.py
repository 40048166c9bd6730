"""Reasoning kept apart: a thinking model's `<think>…</think>` reaches clients as
`reasoning_content`, the answer alone as `content` (streamed and not), inline on request."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from app.node.reasoning import Split, opened_by, split_all
from tests.conftest import RunningBalancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import register_ready
from tests.server.test_models_api import assert_openai_error
from tests.support.tiny_gguf import (
    DEFAULT_CHAT_TEMPLATE,
    REASONING_CHAT_TEMPLATE,
    build_vocab,
    write_llama_gguf,
)

THINKING_REPO = "tiny/thinking-gguf"
VOCAB = build_vocab(reasoning="think")[0]
THINK, THINK_END = VOCAB.index("<think>"), VOCAB.index("</think>")
HI = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="session")
def thinking_model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A tiny reasoning model: `<think>`/`</think>` tokens and a Qwen3-like template."""
    path = tmp_path_factory.mktemp("gguf") / "tiny-thinking-F32.gguf"
    write_llama_gguf(path, reasoning="think", chat_template=REASONING_CHAT_TEMPLATE, ends=False)
    return path.read_bytes()


@pytest.fixture
async def thinker(served: RunningBalancer, model_hub: FakeHub, thinking_model: bytes) -> str:
    model_hub.add(FakeRepo(THINKING_REPO, {"tiny-thinking-F32.gguf": thinking_model}))
    return await register_ready(served, THINKING_REPO)


Post = Callable[[str, dict[str, Any]], Awaitable[tuple[int, Any]]]


async def closing_bias(
    post: Post,
    body: dict[str, Any],
    token: int = THINK_END,
    markers: tuple[str, str] = ("<think>", "</think>"),
) -> dict[str, Any]:
    """Sampling options (a logit bias on the closing marker `token`) with which the model
    closes its thought after a few words and answers after it, for this request. The random
    model's logits are ~0.1 apart, so the right push is found by asking (a few tries, greedy
    first, then seeded), not guessed."""
    tries: list[dict[str, Any]] = [
        {"temperature": 0, "logit_bias": {str(token): bias}}
        for bias in (0.1, 0.08, 0.12, 0.06, 0.14)
    ]
    tries += [{"temperature": 1, "seed": s, "logit_bias": {str(token): 1.0}} for s in range(8)]
    for options in tries:
        probe = {**body, **options, "reasoning_format": "none"}
        _, answer = await post("/v1/chat/completions", probe)
        thought, closed, rest = answer["choices"][0]["message"]["content"].partition(markers[1])
        if closed and thought.removeprefix(markers[0]).strip() and rest.strip():
            return options
    pytest.fail("no logit bias made the tiny model think, then answer")


@pytest.fixture
async def closes(served: RunningBalancer, thinker: str) -> dict[str, Any]:
    """Sampling options with which the model thinks a few words, then answers."""
    body = {"model": thinker, "messages": HI, "max_tokens": 24}
    return {"max_tokens": 24, **await closing_bias(served.post, body)}


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def split_in_pieces(text: str, size: int, prompt: str = "") -> tuple[str, str]:
    split = Split(opened_by(prompt))
    parts = [split.feed(p) for p in pieces(text, size)] + [split.end()]
    return "".join(r for r, _ in parts), "".join(c for _, c in parts)


@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_a_marker_split_over_pieces_is_still_found(size: int) -> None:
    text = "<think>\nLet me see.\n</think>\n\nHello!"
    assert split_in_pieces(text, size) == ("Let me see.", "Hello!")
    # The template opened the block: the first words are reasoning.
    opened = "<|im_start|>assistant\n<think>\n"
    assert split_in_pieces("Hmm, 2+2.</think>Four.", size, opened) == ("Hmm, 2+2.", "Four.")
    assert split_in_pieces("[THINK]why[/THINK]because", size) == ("why", "because")
    # No block, or a marker later in the answer: all content, untouched.
    assert split_in_pieces("[1, 2] <think>", size) == ("", "[1, 2] <think>")
    assert split_in_pieces("  Hi", size) == ("", "  Hi")
    # Cut off while thinking: all of it is reasoning.
    assert split_in_pieces("<think>still going </thi", size) == ("still going </thi", "")


def test_nothing_is_sent_before_it_is_known() -> None:
    split = Split(None)
    assert split.feed("<th") == ("", "")  # may be an opening marker
    assert split.feed("ink>a b ") == ("a b", "")  # trailing space may precede </think>
    assert split.feed("c</") == (" c", "")
    assert split.feed("think>\n") == ("", "")
    assert split.feed("\nAnswer") == ("", "Answer")
    # A closed empty block (Qwen3 with thinking off) leaves the answer alone.
    assert split_all("auto", "assistant\n<think>\n\n</think>\n\n", "Hi") == ("", "Hi")
    assert split_all("none", "assistant\n<think>\n", "a</think>b") == ("", "<think>\na</think>b")


async def test_reasoning_apart_from_the_answer(
    served: RunningBalancer, thinker: str, closes: dict[str, Any]
) -> None:
    base = {"model": thinker, "messages": HI, **closes}
    status, inline = await served.post("/v1/chat/completions", {**base, "reasoning_format": "none"})
    assert status == 200, inline
    whole = inline["choices"][0]["message"]["content"]
    # The template opened the block; inline, the text reads as the model's: opener first.
    assert whole.startswith("<think>\n") and "</think>" in whole, whole
    assert "reasoning_content" not in inline["choices"][0]["message"]
    thought, _, rest = whole.removeprefix("<think>\n").partition("</think>")
    assert thought.strip() and rest.strip(), whole  # the bias closes it after some words

    status, apart = await served.post("/v1/chat/completions", base)
    assert status == 200, apart
    message = apart["choices"][0]["message"]
    assert message["reasoning_content"] == thought.strip()
    assert message["content"] == rest.lstrip()
    assert apart["usage"] == inline["usage"]  # every token counts, thinking included

    # Streamed: reasoning deltas first, then content deltas; the same texts.
    deltas = await stream_deltas(served, {**base, "stream": True})
    kinds = [k for d in deltas for k in ("reasoning_content", "content") if d.get(k)]
    assert kinds == sorted(kinds, key=lambda k: k == "content"), kinds
    assert kinds[0] == "reasoning_content" and kinds[-1] == "content"
    assert "".join(d.get("reasoning_content", "") for d in deltas) == message["reasoning_content"]
    assert "".join(d.get("content") or "" for d in deltas) == message["content"]


async def test_the_openai_client_reads_the_reasoning(
    served: RunningBalancer, thinker: str, closes: dict[str, Any]
) -> None:
    api = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    answer = await api.chat.completions.create(
        model=thinker, messages=[{"role": "user", "content": "hello there"}], **closes
    )
    message = answer.choices[0].message
    extra = message.model_extra or {}
    assert extra["reasoning_content"] and "</think>" not in extra["reasoning_content"]
    assert message.content is not None and not message.content.startswith("<think>")
    stream = await api.chat.completions.create(
        model=thinker,
        messages=[{"role": "user", "content": "hello there"}],
        stream=True,
        **closes,
    )
    thought = ""
    async for chunk in stream:
        if chunk.choices:
            thought += (chunk.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
    assert thought == extra["reasoning_content"]
    # Cut off while thinking: no answer yet, all reasoning.
    short = await api.chat.completions.create(
        model=thinker,
        messages=[{"role": "user", "content": "hello there"}],
        max_tokens=3,
        temperature=0,
        logit_bias={str(THINK_END): -100},
    )
    assert short.choices[0].message.content == ""
    assert (short.choices[0].message.model_extra or {})["reasoning_content"]


async def test_thinking_switched_off_through_the_template(
    served: RunningBalancer, thinker: str
) -> None:
    body = {"model": thinker, "messages": HI, "temperature": 0, "max_tokens": 6}
    off = {"chat_template_kwargs": {"enable_thinking": False}, "logit_bias": {str(THINK): -100}}
    status, plain = await served.post("/v1/chat/completions", {**body, **off})
    assert status == 200, plain
    message = plain["choices"][0]["message"]
    assert "reasoning_content" not in message and message["content"], message
    # The prompt carried the closed empty block: more prompt tokens than with thinking on.
    never_closes = {"logit_bias": {str(THINK_END): -100}}
    status, thinking = await served.post("/v1/chat/completions", {**body, **never_closes})
    assert thinking["choices"][0]["message"]["content"] == ""
    assert plain["usage"]["prompt_tokens"] > thinking["usage"]["prompt_tokens"]


async def test_markers_that_are_control_tokens_are_read(
    served: RunningBalancer, model_hub: FakeHub, tmp_path: Path
) -> None:
    # Magistral's [THINK] and [/THINK] are control tokens, whose text llama.cpp leaves out of
    # output unless asked: the node asks, or the split would never see them. (This template
    # opens the block in the prompt, so the split starts in it.)
    opens = DEFAULT_CHAT_TEMPLATE.replace("assistant\n' }}", "assistant\n[THINK]' }}")
    path = write_llama_gguf(tmp_path / "m.gguf", reasoning="magistral", chat_template=opens)
    model_hub.add(FakeRepo("tiny/magistral-gguf", {"tiny-magistral-F32.gguf": path.read_bytes()}))
    name = await register_ready(served, "tiny/magistral-gguf")
    closing = build_vocab(reasoning="magistral")[0].index("[/THINK]")
    body: dict[str, Any] = {"model": name, "messages": HI, "max_tokens": 24}
    body.update(await closing_bias(served.post, body, closing, ("[THINK]", "[/THINK]")))
    status, inline = await served.post("/v1/chat/completions", {**body, "reasoning_format": "none"})
    whole = inline["choices"][0]["message"]["content"]
    assert whole.startswith("[THINK]") and "[/THINK]" in whole, whole
    status, apart = await served.post("/v1/chat/completions", body)
    assert status == 200, apart
    message = apart["choices"][0]["message"]
    thought, _, answer = whole.removeprefix("[THINK]").partition("[/THINK]")
    assert message.get("reasoning_content") == thought.strip(), (whole, message)
    assert message["content"] == answer.lstrip()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reasoning_format", "verbose"),
        ("reasoning_format", 1),
        ("chat_template_kwargs", "enable_thinking=false"),
        ("chat_template_kwargs", {"messages": []}),
    ],
)
async def test_bad_reasoning_options_are_400_naming_the_field(
    served: RunningBalancer, thinker: str, field: str, value: Any
) -> None:
    status, body = await served.post(
        "/v1/chat/completions", {"model": thinker, "messages": HI, field: value}
    )
    assert status == 400
    assert assert_openai_error(body)["param"] == field


async def stream_deltas(b: RunningBalancer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The `delta` objects of a streamed chat completion, in order."""
    deltas: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(b.url + "/v1/chat/completions", json=body, headers=b.admin) as resp,
    ):
        assert resp.status == 200, await resp.text()
        async for raw in resp.content:
            line = raw.decode().strip()
            if line.startswith("data: ") and line != "data: [DONE]":
                event = json.loads(line.removeprefix("data: "))
                assert "error" not in event, event
                deltas += [c["delta"] for c in event["choices"]]
    return deltas


def test_tiny_reasoning_model_is_written(tmp_path: Path) -> None:
    path = write_llama_gguf(tmp_path / "r.gguf", reasoning="think")
    default = write_llama_gguf(tmp_path / "d.gguf")
    assert path.stat().st_size > default.stat().st_size
