"""BatchedRunner: several sequences per llama_decode step, on a real tiny llama.cpp model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.core.errors import BadRequest
from app.node.engine.batched import BatchedRunner
from app.node.engine.sequential import ModelRunner
from app.node.engine.types import Delta, EngineOptions, Finished, Sampling
from tests.support.tiny_gguf import write_llama_gguf
from tests.support.waiting import eventually

PROMPTS = ["hello world", "the model is", "I think that you", "what is this question"]
NO_EOS = {2: -100.0, 260: -100.0}  # </s> and <|im_end|>
# Penalties keep the random tiny model from repeating one token, so outputs differ per prompt.
GREEDY = Sampling(
    max_tokens=40, temperature=0.0, repeat_penalty=1.5, presence_penalty=0.5, logit_bias=NO_EOS
)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny chat model whose training context covers every slot size used here."""
    return write_llama_gguf(tmp_path_factory.mktemp("batch") / "tiny.gguf", context_length=4096)


@pytest.fixture
async def runner(model_path: Path) -> AsyncIterator[BatchedRunner]:
    """Four slots of 1024 tokens, loaded."""
    r = BatchedRunner("tiny", model_path, n_slots=4, ctx_per_slot=1024, n_threads=2)
    await r.load()
    yield r
    await r.close()


async def run(
    r: BatchedRunner | ModelRunner,
    tokens: list[int],
    sampling: Sampling,
    cancel: threading.Event | None = None,
) -> tuple[str, Finished]:
    """Drain one stream: (all text, the Finished item)."""
    text = ""
    finished: Finished | None = None
    async for item in r.stream(tokens, sampling, cancel or threading.Event()):
        if isinstance(item, Delta):
            assert finished is None
            text += item.text
        else:
            finished = item
    assert finished is not None
    return text, finished


async def until(condition: Callable[[], bool]) -> None:
    """Poll a condition changed by the engine thread (no event to wait on), finely: a step is
    a few milliseconds and some tests count them."""
    await eventually(condition, timeout=5.0, interval=0.0005)


async def prompts(r: BatchedRunner) -> list[list[int]]:
    return [await r.text_prompt(p) for p in PROMPTS]


@pytest.mark.parametrize("flash_attn", [False, True], ids=["exact", "flash-attention"])
async def test_batched_greedy_equals_alone_and_model_runner(
    model_path: Path, flash_attn: bool
) -> None:
    # Without flash attention this holds for any model. With it (the default) llama.cpp's
    # kernels round differently for different batch shapes, so on a larger model a near-tied
    # greedy choice may flip, as in llama-server; this tiny model has no such ties.
    runner = BatchedRunner(
        "tiny", model_path, n_slots=4, ctx_per_slot=1024, n_threads=2, flash_attn=flash_attn
    )
    try:
        toks = await prompts(runner)
        alone = [await run(runner, t, GREEDY) for t in toks]
        steps = runner.decode_steps
        together = await asyncio.gather(*(run(runner, t, GREEDY) for t in toks))
    finally:
        await runner.close()
    assert together == alone
    assert len({text for text, _ in alone}) == len(PROMPTS)  # a real check, not 4× one string
    # Four sequences of 40 tokens shared decode steps (one at a time would take 160).
    assert runner.decode_steps - steps < 100
    options = EngineOptions(n_ctx=1024, n_threads=2, flash_attn=flash_attn)
    single = ModelRunner("tiny", model_path, options, False)
    try:
        reference = [await run(single, t, GREEDY) for t in toks]
    finally:
        await single.close()
    assert reference == alone


async def test_seeded_sampling_is_per_slot_and_reproducible(runner: BatchedRunner) -> None:
    toks = await prompts(runner)
    samplings = [
        Sampling(max_tokens=30, temperature=t, seed=seed, logit_bias=NO_EOS)
        for t, seed in ((0.7, 1), (1.0, 2), (1.3, 3), (1.0, 4))
    ]
    alone = [await run(runner, t, s) for t, s in zip(toks, samplings, strict=True)]
    together = await asyncio.gather(
        *(run(runner, t, s) for t, s in zip(toks, samplings, strict=True))
    )
    assert together == alone
    # The same prompt with two seeds in one batch: each seed keeps its own stream of numbers.
    same_prompt = [
        Sampling(max_tokens=30, temperature=1.0, seed=s, logit_bias=NO_EOS) for s in (7, 8)
    ]
    pair = await asyncio.gather(*(run(runner, toks[0], s) for s in same_prompt))
    assert pair[0][0] != pair[1][0]
    assert pair[0] == await run(runner, toks[0], same_prompt[0])


async def test_cancel_frees_the_slot_within_a_step(runner: BatchedRunner) -> None:
    toks = await prompts(runner)
    endless = Sampling(max_tokens=None, temperature=0.0, logit_bias=NO_EOS)
    cancels = [threading.Event() for _ in toks]
    got = [0] * len(toks)

    async def consume(i: int) -> None:
        async for item in runner.stream(toks[i], endless, cancels[i]):
            if isinstance(item, Delta):
                got[i] += 1

    tasks = [asyncio.create_task(consume(i)) for i in range(len(toks))]
    await until(lambda: min(got) >= 3)
    assert runner.free_slots == 0
    # Freeze the scheduler between two steps, cancel, and let every delta already sent arrive.
    with runner._lock:
        cancels[0].set()
        cancels[1].set()
        await asyncio.sleep(0.05)
        seen = list(got)
    await until(lambda: runner.cancelled_requests >= 2)
    assert runner.cancelled_requests == 2
    # The others keep going (waited for, not slept for: on a busy machine a step may be slow).
    await until(lambda: got[2] > seen[2])
    assert not tasks[2].done()
    assert got[0] - seen[0] <= 1 and got[1] - seen[1] <= 1  # at most the step in flight
    assert runner.free_slots == 2
    tasks[3].cancel()  # a consumer that leaves sets the event itself
    cancels[2].set()
    await until(lambda: runner.cancelled_requests >= 4)  # the engine dropped both streams
    await until(lambda: tasks[3].done())
    assert not any(t.done() for t in tasks[:3])  # a cancelled stream yields no Finished
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await until(lambda: runner.free_slots >= 4)
    assert runner.free_slots == 4
    assert runner.cancelled_requests == 4
    assert runner.active == 0


async def test_cancelled_while_waiting_for_a_slot(model_path: Path) -> None:
    r = BatchedRunner("tiny", model_path, n_slots=1, ctx_per_slot=512, n_threads=2)
    try:
        toks = await r.text_prompt("hello")
        first = asyncio.create_task(run(r, toks, Sampling(max_tokens=200, logit_bias=NO_EOS)))
        cancel = threading.Event()
        cancel.set()
        second = asyncio.create_task(run(r, toks, Sampling(max_tokens=5), cancel))
        _, done = await first
        assert done.completion_tokens == 200
        await until(lambda: r.cancelled_requests >= 1)
        assert r.cancelled_requests == 1
        assert not second.done()  # like ModelRunner: a cancelled request yields nothing
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        assert r.free_slots == 1 and r.active == 0
    finally:
        await r.close()


async def test_prompt_longer_than_a_slot(runner: BatchedRunner) -> None:
    with pytest.raises(BadRequest) as info:
        await run(runner, [1] + [300] * 1023, GREEDY)
    assert info.value.code == "context_length_exceeded"
    # Just fits: the slot's remaining room caps the completion.
    _, done = await run(runner, [1] + [300] * 1020, Sampling(temperature=0.0, logit_bias=NO_EOS))
    assert done == Finished("length", 1021, 3)
    assert runner.free_slots == 4


async def test_long_prefill_does_not_stall_running_streams(model_path: Path) -> None:
    r = BatchedRunner(
        "tiny", model_path, n_slots=2, ctx_per_slot=2048, n_threads=2, prefill_chunk=256
    )
    try:
        await r.load()
        short = await r.text_prompt("hello world")
        long = (await r.text_prompt("the model is here to help you with a question " * 200))[:1500]
        assert len(long) == 1500
        got = 0
        started = asyncio.Event()

        async def running() -> None:
            nonlocal got
            s = Sampling(max_tokens=1000, temperature=0.0, logit_bias=NO_EOS)
            async for item in r.stream(short, s, threading.Event()):
                if isinstance(item, Delta):
                    got += 1
                    started.set()

        task = asyncio.create_task(running())
        await started.wait()
        prefilled, at_start = r.prefilled_tokens, got
        _, done = await run(r, long, Sampling(max_tokens=1, temperature=0.0, logit_bias=NO_EOS))
        during = got - at_start
        assert done == Finished("length", 1500, 1)
        assert r.prefilled_tokens - prefilled == 1500
        # 1500 prompt tokens in chunks of 256 take 6 steps; each gives the running stream a token.
        assert during >= 5, during
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await r.close()


async def test_usage_stops_and_eos_match_model_runner(
    runner: BatchedRunner, model_path: Path
) -> None:
    chat = [[{"role": "user", "content": p}] for p in PROMPTS]
    rendered = [await runner.chat_prompt(m) for m in chat]
    free = [Sampling(max_tokens=60, temperature=0.0, stop=stops) for _, stops, _ in rendered]
    # A stop string taken from the middle of a known greedy output.
    plain, _ = await run(runner, rendered[0][0], GREEDY)
    cut = Sampling(**{**GREEDY.__dict__, "stop": (plain[20:24],)})
    generated = runner.generated_tokens
    results = await asyncio.gather(
        *(run(runner, t, s) for (t, _, _), s in zip(rendered, free, strict=True)),
        run(runner, rendered[0][0], cut),
    )
    single = ModelRunner("tiny", model_path, EngineOptions(n_ctx=1024, n_threads=2), False)
    try:
        reference = [
            await run(single, t, s) for (t, _, _), s in zip(rendered, free, strict=True)
        ] + [await run(single, rendered[0][0], cut)]
    finally:
        await single.close()
    assert results == reference
    for (tokens, _, _), (_, done) in zip(rendered, results, strict=False):
        assert done.prompt_tokens == len(tokens)
    assert runner.generated_tokens - generated == sum(d.completion_tokens for _, d in results)
    text, done = results[-1]
    assert done.finish_reason == "stop" and plain.startswith(text) and len(text) < 24
    assert runner.free_slots == 4 and runner.active == 0


async def test_grammar_constrains_one_slot_only(runner: BatchedRunner) -> None:
    toks = await prompts(runner)
    yes_no = Sampling(max_tokens=20, temperature=0.0, grammar='root ::= "yes" | "no"')
    results = await asyncio.gather(run(runner, toks[0], yes_no), run(runner, toks[1], GREEDY))
    assert results[0][0] in ("yes", "no") and results[0][1].finish_reason == "stop"
    assert results[1] == await run(runner, toks[1], GREEDY)
    schema = Sampling(max_tokens=40, temperature=0.0, json_schema='{"type": "boolean"}')
    text, done = await run(runner, toks[2], schema)
    assert text in ("true", "false") and done.finish_reason == "stop"
    bad = Sampling(max_tokens=5, grammar="root ::= nope [")
    with pytest.raises(BadRequest):
        await run(runner, toks[3], bad)
    assert runner.free_slots == 4 and runner.active == 0


async def test_a_continued_prompt_reuses_its_slot_cache(
    runner: BatchedRunner, model_path: Path
) -> None:
    first = await runner.text_prompt("the model is here to help you with a question " * 30)
    await run(runner, first, GREEDY)
    follow = first + (await runner.text_prompt(" thank you for the help"))[1:]  # no 2nd BOS
    assert follow[: len(first)] == first
    prefilled, reused = runner.prefilled_tokens, runner.reused_tokens
    again = await run(runner, follow, GREEDY)
    assert runner.reused_tokens - reused >= len(first)
    assert runner.prefilled_tokens - prefilled == len(follow) - (runner.reused_tokens - reused)
    fresh = BatchedRunner(
        "tiny", model_path, n_slots=1, ctx_per_slot=1024, n_threads=2, prompt_cache=False
    )
    try:
        assert await run(fresh, follow, GREEDY) == again
        assert fresh.reused_tokens == 0
    finally:
        await fresh.close()
    # A whole prompt already cached still decodes its last token, to get logits.
    reused = runner.reused_tokens
    assert await run(runner, follow, GREEDY) == again
    assert runner.reused_tokens - reused == len(follow) - 1
