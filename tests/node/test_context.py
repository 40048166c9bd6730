"""A model's context is what it was trained for, within the memory left after its weights: a
prompt longer than the old fixed 4,096 tokens runs on a model declaring 16k, the slots share one
KV cache, and a prompt beyond the context still gets 400 `context_length_exceeded` with both
numbers."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from app.core.errors import BadRequest
from app.node.engine.batched import BatchedRunner
from app.node.engine.gguf_header import read_header
from app.node.engine.llama import set_memory_budget
from app.node.engine.offload import ModelShape, size_context
from app.node.engine.types import Delta, Finished, OutOfMemory, Sampling
from tests.conftest import balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import hub_entry, register_ready
from tests.support.tiny_gguf import write_llama_gguf
from tests.support.waiting import eventually

GB = 10**9


@pytest.fixture(scope="module")
def long_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long")
    return write_llama_gguf(folder / "long.gguf", context_length=16384, ends=False)


@pytest.fixture(scope="module")
def long_bytes(long_model: Path) -> bytes:
    return long_model.read_bytes()


def shape_of(path: Path) -> ModelShape:
    return ModelShape.of(read_header(path))


def test_the_context_is_what_the_model_was_trained_for(long_model: Path) -> None:
    shape = shape_of(long_model)
    assert shape.trained_context == 16384
    context = size_context(shape, shape.trained_context, 4, None, 16 * GB)
    # The memory holds it for every slot: each slot its own KV stream, as llama-server's.
    assert (context.per_sequence, context.total, context.unified) == (16384, 4 * 16384, False)
    assert "16384 tokens, as trained, per slot" in context.reason


def test_little_memory_caps_the_shared_cache_and_one_conversation_may_use_it_all(
    long_model: Path,
) -> None:
    shape = shape_of(long_model)
    per_token = sum(shape.kv_bytes_per_token)
    # Room after the weights for 20,000 tokens of KV (half of what is left is offered).
    free = shape.file_bytes + shape.overhead() + 2 * 20_000 * per_token
    context = size_context(shape, shape.trained_context, 4, None, free)
    assert context.total == 19968  # 20,000 rounded down to whole blocks of 256
    assert context.per_sequence == 16384  # one long conversation fits, others share the rest
    assert context.unified
    assert "shared by 4 slots" in context.reason
    tight = size_context(shape, shape.trained_context, 4, None, free // 4)
    assert tight.per_sequence == tight.total < 16384
    assert "of the 16384 it was trained for" in tight.reason


def test_a_set_context_is_per_conversation_as_before(long_model: Path) -> None:
    context = size_context(shape_of(long_model), 16384, 4, 2048, 16 * GB)
    assert (context.per_sequence, context.total, context.unified) == (2048, 8192, False)


async def answer(runner: BatchedRunner, tokens: list[int], max_tokens: int) -> tuple[str, Finished]:
    text, end = "", None
    async for item in runner.stream(tokens, Sampling(max_tokens=max_tokens), threading.Event()):
        if isinstance(item, Delta):
            text += item.text
        elif isinstance(item, Finished):
            end = item
    assert end is not None
    return text, end


async def prompt_of(runner: BatchedRunner, n: int) -> list[int]:
    """`n` tokens of a plain prompt (BOS, then ordinary pieces)."""
    piece = await runner.text_prompt("the sea")
    body = piece[1:] * (n // max(1, len(piece) - 1) + 1)
    return [piece[0], *body][:n]


async def test_a_prompt_past_4096_tokens_runs_on_a_16k_model(long_model: Path) -> None:
    runner = BatchedRunner("long", long_model, n_slots=2, ctx_per_slot=None, n_threads=2)
    try:
        text, end = await answer(runner, await prompt_of(runner, 6000), 8)
        assert runner.context is not None and runner.ctx_per_slot == 16384
        assert end.prompt_tokens == 6000 and end.completion_tokens == 8 and text
        # Beyond the context: the 400 names both numbers.
        with pytest.raises(BadRequest) as caught:
            await answer(runner, await prompt_of(runner, 16384), 1)
        assert caught.value.code == "context_length_exceeded"
        assert "the prompt is 16384 tokens; this model's context holds 16384" in str(
            caught.value.message
        )
    finally:
        await runner.close()


async def test_the_api_shows_the_effective_context_and_takes_a_long_prompt(
    tmp_path: Path, model_hub: FakeHub, long_bytes: bytes
) -> None:
    model_hub.add(FakeRepo("acme/long-gguf", {"long-Q8_0.gguf": long_bytes}))
    settings = balancer_settings(tmp_path / "d", local_node=True)  # LLMLB_CONTEXT_SIZE unset
    async with run_balancer(settings) as b:
        name = await register_ready(b, "acme/long-gguf")

        async def effective() -> int | None:
            entry = await hub_entry(b, name)
            assert entry is not None
            return entry.get("effective_context_length")

        assert await eventually(effective) == 16384  # trained for it, and the memory holds it
        _, models = await b.get("/v1/models", headers={})
        assert next(m for m in models["data"] if m["id"] == name)["context_length"] == 16384
        # A prompt well past the old fixed 4,096 tokens.
        words = " ".join(["sea"] * 6000)
        body = {"model": name, "messages": [{"role": "user", "content": words}], "max_tokens": 4}
        status, answer = await b.post("/v1/chat/completions", body, headers={})
        assert status == 200, answer
        assert answer["usage"]["prompt_tokens"] > 4096
        # Past the context: 400 with both numbers.
        too_long = [{"role": "user", "content": " ".join(["sea"] * 20000)}]
        status, answer = await b.post(
            "/v1/chat/completions", {**body, "messages": too_long}, headers={}
        )
        assert status == 400 and answer["error"]["code"] == "context_length_exceeded"
        assert "this model's context holds 16384" in answer["error"]["message"]

        # The model's own setting wins over the node's: every node takes it at its next sync.
        status, entry = await b.patch(f"/v0/models/{name}", {"context_size": 4096})
        assert status == 200 and entry["context_size"] == 4096

        async def effective_is(n: int) -> bool:
            return await effective() == n

        await eventually(lambda: effective_is(4096))
        status, answer = await b.post("/v1/chat/completions", body, headers={})
        assert status == 400 and "this model's context holds 4096" in answer["error"]["message"]
        for bad in (100, 10**9, "8k", True):
            status, answer = await b.patch(f"/v0/models/{name}", {"context_size": bad})
            assert status == 400 and answer["error"]["param"] == "context_size"
        status, entry = await b.patch(f"/v0/models/{name}", {"context_size": None})
        assert status == 200 and entry["context_size"] is None
        await eventually(lambda: effective_is(16384))


async def test_a_memory_capped_cache_is_shared_by_the_conversations(tmp_path: Path) -> None:
    model = write_llama_gguf(tmp_path / "m.gguf", context_length=4096, ends=False)
    shape = shape_of(model)
    # Memory for a KV cache of 4,096 tokens in all (half of what is left is offered).
    room = shape.file_bytes + shape.overhead() + 2 * 4096 * sum(shape.kv_bytes_per_token)
    set_memory_budget(model, room)
    runner = BatchedRunner("m", model, n_slots=2, ctx_per_slot=None, n_threads=2)
    try:
        long_prompt = await prompt_of(runner, 3500)
        assert runner.context is not None
        assert (runner.context.total, runner.ctx_per_slot) == (4096, 4096)  # not 2 x 2,048
        # One conversation uses most of the cache ...
        _, end = await answer(runner, long_prompt, 16)
        assert end.prompt_tokens == 3500 and end.completion_tokens == 16
        # ... and its cached prompt gives way to another conversation that needs the cells.
        _, end = await answer(runner, [7, *long_prompt[1:3000]], 16)
        assert end.completion_tokens == 16 and runner._slots._cached[0] == []
        # Two long conversations at once outgrow it: one is told, the other answers.
        results = await asyncio.gather(
            answer(runner, [5, *long_prompt[1:2500]], 64),
            answer(runner, [6, *long_prompt[1:2500]], 64),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, OutOfMemory)]
        answered = [r for r in results if isinstance(r, tuple)]
        assert len(refused) == 1 and len(answered) == 1, results
        assert "context is full" in refused[0].message and "ask again" in refused[0].message
    finally:
        set_memory_budget(model, None)
        await runner.close()


async def test_a_prompt_too_many_bytes_for_any_tokens_is_refused_before_tokenizing(
    long_model: Path,
) -> None:
    # 32 MB of text cannot fit 512 tokens whatever they are: refused by its size, the
    # vocabulary's longest piece times the context, not after tokenizing 32 MB.
    runner = BatchedRunner("long", long_model, n_slots=1, ctx_per_slot=512, n_threads=1)
    try:
        huge = [{"role": "user", "content": "sea " * (8 * 1024 * 1024)}]
        with pytest.raises(BadRequest) as caught:
            await runner.chat_prompt(huge)
        assert caught.value.code == "context_length_exceeded"
        message = str(caught.value.message)
        assert "bytes, more than 512 tokens of this model" in message, message
        # A prompt that fits still renders and tokenizes as before.
        tokens, _, _ = await runner.chat_prompt([{"role": "user", "content": "sea " * 100}])
        assert 100 <= len(tokens) < 512
    finally:
        await runner.close()
