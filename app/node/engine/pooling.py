"""Pooled outputs of a llama.cpp model: an embedding per input, a relevance score per (query,
document) pair. Called on the runner's thread with the model loaded for embeddings.

Each input is decoded whole in one batch (its context was made with a batch and a micro-batch
of the whole context: llama.cpp pools a sequence within one micro-batch), so an input longer
than the context is refused, never cut.
"""

from __future__ import annotations

import llama_cpp
import numpy as np

from app.core.errors import BadRequest
from app.node.engine.types import EngineError


def text_tokens(llm: llama_cpp.Llama, text: str) -> list[int]:
    """`text` as an embedding reads it: with the vocabulary's own special tokens (BOS; a
    BERT's CLS and SEP), as llama.cpp's server tokenizes an embedding input."""
    return llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)


def check_tokens(llm: llama_cpp.Llama, inputs: list[list[int]], param: str) -> None:
    """BadRequest naming `param[i]` when an input is empty, holds an id outside the
    vocabulary, or is longer than the context (400 `context_length_exceeded`, both numbers)."""
    n_vocab = llama_cpp.llama_vocab_n_tokens(llm._model.vocab)
    n_ctx = llm.n_ctx()
    for i, tokens in enumerate(inputs):
        where = f"{param}[{i}]"
        if not tokens:
            raise BadRequest(f"{where} is empty: there is nothing to embed", param=param)
        bad = next((t for t in tokens if not 0 <= t < n_vocab), None)
        if bad is not None:
            raise BadRequest(
                f"{where} holds the token id {bad}; this model's vocabulary has ids 0 to "
                f"{n_vocab - 1}",
                param=param,
            )
        if len(tokens) > n_ctx:
            raise BadRequest(
                f"{where} is {len(tokens)} tokens; this model's context holds {n_ctx}: "
                "shorten it or split it",
                param=param,
                code="context_length_exceeded",
            )


def pooled(llm: llama_cpp.Llama, tokens: list[int], size: int) -> list[float]:
    """The first `size` values of the pooled output of one sequence (checked already)."""
    memory = llama_cpp.llama_get_memory(llm._ctx.ctx)
    if memory:  # each input alone (an encoder, such as BERT, keeps no cache at all)
        llama_cpp.llama_memory_clear(memory, True)
    llm._batch.batch.n_tokens = 0
    llm._batch.add_sequence(tokens, 0, True)  # every token an output: pooling reads them all
    rc = llama_cpp.llama_decode(llm._ctx.ctx, llm._batch.batch)
    if rc != 0:
        raise EngineError(f"llama.cpp could not embed an input of {len(tokens)} tokens ({rc})")
    out = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, 0)
    if not out:
        raise EngineError("llama.cpp gave no pooled output (the model has no pooling)")
    return [float(x) for x in out[:size]]


def normalized(vector: list[float]) -> list[float]:
    """`vector` at unit length, in float32 as the model computes: the values a float answer
    and a base64 one (little-endian float32) carry are then the same numbers."""
    v = np.asarray(vector, dtype=np.float32)
    norm = np.float32(np.linalg.norm(v))
    if norm > 0:
        v = v / norm
    return [float(x) for x in v.astype(np.float32)]


def embed(llm: llama_cpp.Llama, inputs: list[str | list[int]]) -> tuple[list[list[float]], int]:
    """Unit-length embeddings of texts or token lists, and the tokens they took."""
    if llm._ctx.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_NONE:
        raise BadRequest(
            "this model has no pooling (its GGUF's pooling_type is none): it gives a vector "
            "per token, not one per input",
            param="model",
            code="model_not_embedding",
        )
    token_lists = [text_tokens(llm, x) if isinstance(x, str) else x for x in inputs]
    check_tokens(llm, token_lists, "input")
    size = llm.n_embd()
    vectors = [normalized(pooled(llm, tokens, size)) for tokens in token_lists]
    return vectors, sum(len(t) for t in token_lists)


def pair_tokens(llm: llama_cpp.Llama, query: str, document: str) -> list[int]:
    """A (query, document) pair as a reranker reads it, as llama.cpp's server builds it: the
    model's own `rerank` template when it has one, else BOS query EOS SEP document EOS (each
    special token where the vocabulary adds it; SEP stands in for a missing EOS)."""
    model, vocab = llm._model.model, llm._model.vocab
    template = llama_cpp.llama_model_chat_template(model, b"rerank")
    if template:
        prompt = template.decode("utf-8", "replace")
        prompt = prompt.replace("{query}", query).replace("{document}", document)
        return llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def plain(text: str) -> list[int]:
        return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    eos = llama_cpp.llama_vocab_eos(vocab)
    if eos == llama_cpp.LLAMA_TOKEN_NULL:
        eos = llama_cpp.llama_vocab_sep(vocab)
    add_eos = [eos] if llama_cpp.llama_vocab_get_add_eos(vocab) else []
    tokens = [llama_cpp.llama_vocab_bos(vocab)] if llama_cpp.llama_vocab_get_add_bos(vocab) else []
    tokens += plain(query) + add_eos
    if llama_cpp.llama_vocab_get_add_sep(vocab):
        tokens.append(llama_cpp.llama_vocab_sep(vocab))
    return tokens + plain(document) + add_eos


def rerank(llm: llama_cpp.Llama, query: str, documents: list[str]) -> tuple[list[float], int]:
    """The classifier head's score of each (query, document) pair, and the tokens they took."""
    if llm._ctx.pooling_type() != llama_cpp.LLAMA_POOLING_TYPE_RANK:
        raise BadRequest(
            "this model has no reranking head (its GGUF's pooling_type is not rank)",
            param="model",
            code="model_not_reranker",
        )
    pairs = [pair_tokens(llm, query, d) for d in documents]
    check_tokens(llm, pairs, "documents")
    scores = [pooled(llm, tokens, 1)[0] for tokens in pairs]
    return scores, sum(len(t) for t in pairs)
