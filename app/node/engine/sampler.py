"""How a request's Sampling becomes llama.cpp sampling: a sampler chain for the batched runner,
a grammar and logit processors for the sequential one, the JSON grammar of json_object, and
the logprobs of sampled tokens.

Logprobs are the model's own distribution at that step: the log-softmax of the raw logits
llama.cpp computed, BEFORE the request's logit bias, penalties, grammar, top-k/top-p/min-p and
temperature. That is what OpenAI reports (a token's logprob does not change with
`temperature`), and what llama.cpp's server reports unless asked for post-sampling
probabilities. So a greedy answer's token is the most likely one (`top[0]`) unless a bias,
penalty or grammar moved the choice, and every logprob is <= 0.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

from app.core.errors import BadRequest
from app.node.engine.types import Logprob, Sampling, TokenLogprob
from app.node.json_grammar import schema_grammar

JSON_GRAMMAR = JSON_GBNF
"""GBNF for any JSON value (`response_format: json_object`)."""

MAX_TOP_LOGPROBS = 20  # alternatives per token, as OpenAI's top_logprobs
PENALTY_LAST_N = 64  # what llama_cpp.Llama uses (last_n_tokens_size), for the same results


def random_seed() -> int:
    """A fresh 32-bit seed, for a request that names none."""
    return int.from_bytes(os.urandom(4), "little")


def sampler_chain(s: Sampling, vocab: Any, n_vocab: int) -> Any:
    """A llama_sampler_p chain like llama_cpp.Llama's, for one sequence (the caller frees it)."""
    grammar = _grammar_text(s)
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    try:
        if s.logit_bias:
            biases = (llama_cpp.llama_logit_bias * len(s.logit_bias))(
                *(llama_cpp.llama_logit_bias(int(t), float(b)) for t, b in s.logit_bias.items())
            )
            add = llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(s.logit_bias), biases)
            llama_cpp.llama_sampler_chain_add(chain, add)
        if s.repeat_penalty != 1.0 or s.frequency_penalty or s.presence_penalty:
            llama_cpp.llama_sampler_chain_add(
                chain,
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab,
                    PENALTY_LAST_N,
                    s.repeat_penalty,
                    s.frequency_penalty,
                    s.presence_penalty,
                ),
            )
        if grammar is not None:
            g = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
            if not g:
                raise BadRequest("the grammar does not parse", param="grammar")
            llama_cpp.llama_sampler_chain_add(chain, g)
        if s.temperature == 0.0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        else:
            seed = (s.seed if s.seed is not None else random_seed()) & 0xFFFFFFFF
            if s.temperature > 0.0:
                for part in (
                    llama_cpp.llama_sampler_init_top_k(s.top_k),
                    llama_cpp.llama_sampler_init_typical(1.0, 1),
                    llama_cpp.llama_sampler_init_top_p(s.top_p, 1),
                    llama_cpp.llama_sampler_init_min_p(s.min_p, 1),
                    llama_cpp.llama_sampler_init_temp(s.temperature),
                ):
                    llama_cpp.llama_sampler_chain_add(chain, part)
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed))
    except BaseException:
        llama_cpp.llama_sampler_free(chain)
        raise
    return chain


def _grammar_text(s: Sampling) -> str | None:
    """The request's GBNF: its own, or one built from its JSON schema."""
    if s.grammar is not None:
        return s.grammar
    if s.json_schema is not None:
        return schema_grammar(json.loads(s.json_schema))
    return None


def llama_grammar(s: Sampling) -> LlamaGrammar | None:
    """The request's grammar for `Llama.generate` (from its GBNF or JSON schema), if any."""
    text = _grammar_text(s)
    return None if text is None else LlamaGrammar.from_string(text, verbose=False)


def logit_bias_processors(bias: dict[int, float]) -> llama_cpp.LogitsProcessorList | None:
    """A logits processor for `Llama.generate` adding `bias` to its tokens' logits, if any."""
    if not bias:
        return None
    ids = np.array(list(bias), dtype=np.intc)
    values = np.array(list(bias.values()), dtype=np.single)

    def apply_bias(_ids: Any, scores: Any) -> Any:
        scores[ids] += values
        return scores

    return llama_cpp.LogitsProcessorList([apply_bias])


def token_logprob(
    logits: Any, n_vocab: int, token: int, top_n: int, piece: Callable[[int], bytes]
) -> TokenLogprob:
    """`token`'s entry from one row of raw logits (a ctypes float pointer of `n_vocab`
    values, as `llama_get_logits_ith` gives it): its logprob and the `top_n` most likely
    tokens (bytes via `piece`) with theirs, most likely first."""
    row = np.ctypeslib.as_array(logits, shape=(n_vocab,)).astype(np.float64)
    shifted = row - row.max()
    logp = shifted - np.log(np.exp(shifted).sum())
    top: tuple[tuple[bytes, float], ...] = ()
    n = min(max(top_n, 0), MAX_TOP_LOGPROBS, n_vocab)
    if n:
        best = np.argpartition(-logp, n - 1)[:n]
        best = best[np.argsort(-logp[best], kind="stable")]
        top = tuple((piece(int(t)), float(logp[t])) for t in best)
    return TokenLogprob(piece(token), float(logp[token]), top)


def logprob_at(runner: Any, seq: Any, index: int, token: int) -> Logprob:
    """The logprob of `token`, sampled for `seq` (a `slots.Sequence`) from the logits at batch
    `index` of `runner`'s context (a BatchedRunner), when its request asked for logprobs."""
    top = seq.request.sampling.logprobs
    if top is None:
        return None
    logits = llama_cpp.llama_get_logits_ith(runner._ctx, index)
    return token_logprob(logits, runner._n_vocab, token, top, runner._token_bytes)
