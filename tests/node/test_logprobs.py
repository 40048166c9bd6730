"""Token logprobs from both engines: the batched one and the one-at-a-time one (LLMLB_SLOTS=0)
report the same model distribution for the same tokens."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.node.engine.batched import BatchedRunner
from app.node.engine.sequential import ModelRunner
from app.node.engine.types import Delta, EngineOptions, Finished, Sampling, TokenLogprob
from tests.support.tiny_gguf import write_llama_gguf

NO_EOS = {2: -100.0, 260: -100.0}  # </s> and <|im_end|>: answers run to max_tokens
GREEDY = Sampling(max_tokens=12, temperature=0.0, logit_bias=NO_EOS, logprobs=2)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_llama_gguf(tmp_path_factory.mktemp("logprobs") / "tiny.gguf")


async def run(
    r: BatchedRunner | ModelRunner, prompt: str, sampling: Sampling
) -> tuple[str, list[TokenLogprob], Finished]:
    """Drain one stream: (all text, every token's logprob, the Finished item)."""
    text, finished = "", None
    entries: list[TokenLogprob] = []
    tokens = await r.text_prompt(prompt)
    async for item in r.stream(tokens, sampling, threading.Event()):
        if isinstance(item, Delta):
            text += item.text
            entries += item.logprobs
        else:
            finished = item
    assert finished is not None
    return text, entries, finished


async def test_both_engines_report_the_same_logprobs_for_the_same_tokens(
    model_path: Path,
) -> None:
    batched = BatchedRunner("tiny", model_path, n_slots=2, ctx_per_slot=512, n_threads=2)
    single = ModelRunner("tiny", model_path, EngineOptions(n_ctx=512, n_threads=2), False)
    try:
        text, entries, done = await run(batched, "the model is", GREEDY)
        text2, entries2, _ = await run(single, "the model is", GREEDY)
        plain, none, _ = await run(
            batched, "the model is", Sampling(**{**GREEDY.__dict__, "logprobs": None})
        )
    finally:
        await batched.close()
        await single.close()
    assert len(entries) == done.completion_tokens == 12
    assert b"".join(e.token for e in entries).decode() == text == plain and not none
    for e in entries:  # greedy and no penalties: each token is the likeliest
        assert e.logprob <= 0 and len(e.top) == 2 and e.top[0] == (e.token, e.logprob)
    assert text2 == text
    assert [e.token for e in entries2] == [e.token for e in entries]
    assert [e.logprob for e in entries2] == pytest.approx([e.logprob for e in entries], abs=1e-3)


async def test_a_stop_string_leaves_no_logprob_for_the_text_it_cut(model_path: Path) -> None:
    batched = BatchedRunner("tiny", model_path, n_slots=1, ctx_per_slot=512, n_threads=2)
    try:
        text, entries, _ = await run(batched, "the model is", GREEDY)
        stop = entries[3].token.decode()  # the fourth token's text stops the answer there
        cut, cut_entries, done = await run(
            batched, "the model is", Sampling(**{**GREEDY.__dict__, "stop": (stop,)})
        )
    finally:
        await batched.close()
    assert done.finish_reason == "stop" and text.startswith(cut)
    assert b"".join(e.token for e in cut_entries).decode() == cut
