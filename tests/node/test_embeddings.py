"""Embeddings and reranking end to end: the real node and balancer, the official openai client
(which asks for base64 and decodes it), a tiny generated embedding model and reranker."""

from __future__ import annotations

import base64
import dataclasses
import re
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import llama_cpp
import openai
import pytest

from app.node.engine.gguf_header import read_header
from app.node.engine.offload import MIN_CONTEXT, ModelShape, on_gpu, plan, size_context
from tests.conftest import EMBED_FILE, RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import CHAT_REPO, EMBED_REPO, register_ready
from tests.server.test_models_api import assert_openai_error
from tests.support.tiny_gguf import write_embedding_gguf, write_rerank_gguf

RERANK_REPO = "tiny/rerank-gguf"
RERANK_FILE = "tiny-rerank-F32.gguf"
EMBED_CONTEXT = 2048  # write_embedding_gguf's trained context
DOCS = ["hello world", "the user asked a question", "thanks", "what time is it", "yes"]


@pytest.fixture(scope="module")
def rerank_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A tiny reranker (bert, pooling rank, a classifier head), generated once."""
    return write_rerank_gguf(tmp_path_factory.mktemp("rerank") / RERANK_FILE).read_bytes()


@pytest.fixture
async def node(
    tmp_path: Path, model_hub: FakeHub, rerank_bytes: bytes
) -> AsyncIterator[RunningBalancer]:
    """A balancer with its local node; models get the context they were trained for."""
    model_hub.add(FakeRepo(RERANK_REPO, {RERANK_FILE: rerank_bytes}))
    settings = balancer_settings(tmp_path / "data", local_node=True, idle_unload_ttl=600.0)
    async with run_balancer(settings) as b:
        yield b


@pytest.fixture
async def api(node: RunningBalancer) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official openai client, at the balancer."""
    async with openai.AsyncOpenAI(
        base_url=node.url + "/v1", api_key="unused", max_retries=0
    ) as client:
        yield client


def error_of(err: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    body = err.value.body
    assert isinstance(body, dict)
    return body


def tokens_of(model_file: Path, text: str) -> list[int]:
    """`text` as the model's own tokenizer reads it for an embedding (with BOS)."""
    llm = llama_cpp.Llama(model_path=str(model_file), vocab_only=True, verbose=False)
    try:
        return llm.tokenize(text.encode(), add_bos=True, special=False)
    finally:
        llm.close()


def direct_score(model_file: Path, query: str, document: str) -> float:
    """What llama.cpp itself gives the pair, read from the model's head without our node:
    the pair as XLM-RoBERTa's tokenizer makes it, <s> query </s> </s> document </s>."""
    llm = llama_cpp.Llama(
        model_path=str(model_file),
        embedding=True,
        n_ctx=512,
        n_batch=512,
        n_ubatch=512,
        verbose=False,
    )
    try:
        tokens = [1, *llm.tokenize(query.encode(), add_bos=False), 2, 2]
        tokens += [*llm.tokenize(document.encode(), add_bos=False), 2]
        llm._batch.add_sequence(tokens, 0, True)
        assert llama_cpp.llama_decode(llm._ctx.ctx, llm._batch.batch) == 0
        return float(llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, 0)[0])
    finally:
        llm.close()


LONG = " ".join(["hello world the user asked a question"] * 120)  # ~840 tokens


async def test_base64_is_the_float_vector_little_endian(
    node: RunningBalancer, api: openai.AsyncOpenAI
) -> None:
    embed = await register_ready(node, EMBED_REPO)
    # The SDK asks for base64 by default and decodes it into floats.
    decoded = await api.embeddings.create(model=embed, input="hello world")
    floats = await api.embeddings.create(model=embed, input="hello world", encoding_format="float")
    assert decoded.data[0].embedding == floats.data[0].embedding
    status, raw = await node.post(
        "/v1/embeddings", {"model": embed, "input": "hello world", "encoding_format": "base64"}
    )
    assert status == 200
    data = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(data) // 4}f", data)) == floats.data[0].embedding
    status, body = await node.post(
        "/v1/embeddings", {"model": embed, "input": "x", "encoding_format": "int8"}
    )
    assert status == 400 and assert_openai_error(body)["param"] == "encoding_format"


async def test_long_inputs_are_embedded_whole(
    node: RunningBalancer, api: openai.AsyncOpenAI
) -> None:
    """Two inputs that differ only after their first 512 tokens are different texts: they
    were cut at 512 tokens and came back as one vector."""
    embed = await register_ready(node, EMBED_REPO)
    first, second = LONG + " yes thanks", LONG + " what time is it now"
    answer = await api.embeddings.create(model=embed, input=[first, second])
    assert answer.usage.prompt_tokens > 2 * 512
    a, b = (item.embedding for item in answer.data)
    assert a != b
    assert sum(x * x for x in a) == pytest.approx(1.0, abs=1e-3)
    status, listed = await node.get(f"/v1/models/{embed}")
    assert status == 200 and listed["context_length"] == EMBED_CONTEXT


def test_a_pooled_model_gets_its_trained_context_in_one_micro_batch(tmp_path: Path) -> None:
    """Sized as trained, not per slot (one input at a time), never past what it was trained
    for (its positions end there), and halved while its micro-batch's scratch (which grows as
    the square of it) does not fit the memory."""
    embed = ModelShape.of(
        read_header(write_embedding_gguf(tmp_path / "e.gguf", context_length=8192))
    )
    rerank = ModelShape.of(read_header(write_rerank_gguf(tmp_path / "r.gguf")))
    assert embed.pooled and rerank.pooled
    roomy = size_context(embed, embed.trained_context, 4, None, 64 * 10**9)
    assert (roomy.per_sequence, roomy.total) == (8192, 8192)
    assert size_context(embed, 8192, 4, 100_000, 64 * 10**9).per_sequence == 8192
    assert size_context(embed, 8192, 4, 1024, 64 * 10**9).per_sequence == 1024
    assert size_context(rerank, rerank.trained_context, 1, None, None).per_sequence == 1024
    need = embed.file_bytes + 2 * (
        embed.pooled_scratch(2048) + sum(embed.kv_bytes_per_token) * 2048
    )
    tight = size_context(embed, 8192, 1, None, need)
    assert tight.per_sequence == 2048 and "memory" in tight.reason
    assert size_context(embed, 8192, 1, None, embed.file_bytes).per_sequence == MIN_CONTEXT
    # On a GPU, the scratch of that one micro-batch needs room beside the layers.
    generative = dataclasses.replace(embed, pooled=False)
    free = generative.overhead() + on_gpu(generative, 8192, embed.n_layer + 1)
    assert plan(generative, 8192, free, None).full
    assert not plan(embed, 8192, free, None).full
    roomy_gpu = free + embed.pooled_scratch(8192)
    assert plan(embed, 8192, roomy_gpu, None).full


async def test_an_input_beyond_the_context_is_refused_with_both_numbers(
    node: RunningBalancer,
    api: openai.AsyncOpenAI,
) -> None:
    embed = await register_ready(node, EMBED_REPO)
    too_long = " ".join(["hello world the user asked a question"] * 400)  # ~2800 tokens
    with pytest.raises(openai.BadRequestError) as err:
        await api.embeddings.create(model=embed, input=["hi", too_long])
    error = error_of(err)
    assert error["code"] == "context_length_exceeded" and error["param"] == "input"
    numbers = [int(n) for n in re.findall(r"\d+", error["message"])]
    assert EMBED_CONTEXT in numbers and any(n > EMBED_CONTEXT for n in numbers), error
    assert "input[1]" in error["message"]


async def test_dimensions_only_as_the_model_has_them(
    node: RunningBalancer, api: openai.AsyncOpenAI
) -> None:
    embed = await register_ready(node, EMBED_REPO)
    same = await api.embeddings.create(model=embed, input="hello world", dimensions=64)
    plain = await api.embeddings.create(model=embed, input="hello world")
    assert same.data[0].embedding == plain.data[0].embedding
    with pytest.raises(openai.BadRequestError) as err:
        await api.embeddings.create(model=embed, input="hello world", dimensions=16)
    error = error_of(err)
    assert error["param"] == "dimensions" and "64" in error["message"]


async def test_token_ids_embed_as_their_text(
    node: RunningBalancer, api: openai.AsyncOpenAI
) -> None:
    embed = await register_ready(node, EMBED_REPO)
    path = node.ctx.local_node.library.model_path(embed) if node.ctx.local_node else None
    assert path is not None and path.name == EMBED_FILE
    texts = ["hello world", "the user asked a question"]
    ids = [tokens_of(path, t) for t in texts]
    by_text = await api.embeddings.create(model=embed, input=texts, encoding_format="float")
    by_ids = await api.embeddings.create(model=embed, input=ids, encoding_format="float")
    one = await api.embeddings.create(model=embed, input=ids[0], encoding_format="float")
    assert [d.embedding for d in by_ids.data] == [d.embedding for d in by_text.data]
    assert one.data[0].embedding == by_text.data[0].embedding
    assert by_ids.usage.prompt_tokens == sum(len(i) for i in ids)
    bad: Any
    for bad in ([1, 10**6], [[1, 2], [-1]], [[]], [1.5], [[1], "text"]):
        status, body = await node.post("/v1/embeddings", {"model": embed, "input": bad})
        assert status == 400, (bad, body)
        assert assert_openai_error(body)["param"] == "input"


async def test_rerank_scores_and_orders_documents(node: RunningBalancer) -> None:
    model = await register_ready(node, RERANK_REPO)
    status, models = await node.get("/v1/models")
    entry = next(m for m in models["data"] if m["id"] == model)
    assert entry["capabilities"] == ["Reranking"]
    request = {"model": model, "query": "hello", "documents": DOCS}
    status, body = await node.post("/v1/rerank", request)
    assert status == 200, body
    assert body["model"] == model and body["object"] == "list"
    results = body["results"]
    assert sorted(r["index"] for r in results) == list(range(len(DOCS)))
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    assert all("document" not in r for r in results)
    assert body["usage"]["prompt_tokens"] > len(DOCS) * 4
    # The same pair scores the same in another request, wherever it stands.
    status, again = await node.post(
        "/v1/reranking",
        {**request, "documents": [DOCS[3], DOCS[0]], "top_n": 1, "return_documents": True},
    )
    assert status == 200, again
    by_index = {r["index"]: r["relevance_score"] for r in results}
    assert len(again["results"]) == 1
    best = again["results"][0]
    assert best["relevance_score"] == max(by_index[3], by_index[0])
    assert best["document"] == {"text": [DOCS[3], DOCS[0]][best["index"]]}
    status, alias = await node.post("/rerank", {**request, "top_n": 2})
    assert status == 200 and alias["results"] == results[:2]
    # The score is the model's own: what llama.cpp computes for the pair on its own.
    assert node.ctx.local_node is not None
    path = node.ctx.local_node.library.model_path(model)
    assert path is not None
    assert by_index[1] == pytest.approx(direct_score(path, "hello", DOCS[1]), abs=1e-5)
    # Documents may come as objects with a text (Jina's and Cohere's other form).
    objects = {**request, "documents": [{"text": d} for d in DOCS]}
    status, same = await node.post("/v1/rerank", objects)
    assert status == 200 and same["results"] == results


async def test_rerank_refuses_what_it_cannot_score(node: RunningBalancer) -> None:
    chat = await register_ready(node, CHAT_REPO)
    reranker = await register_ready(node, RERANK_REPO)
    status, body = await node.post("/v1/rerank", {"model": chat, "query": "q", "documents": ["d"]})
    assert status == 400
    error = assert_openai_error(body, "model_not_reranker")
    assert "Reranking" in error["message"] and error["param"] == "model"
    for bad, param in (
        ({"query": 1, "documents": ["d"]}, "query"),
        ({"query": "q", "documents": []}, "documents"),
        ({"query": "q", "documents": [3]}, "documents"),
        ({"query": "q", "documents": ["d"], "top_n": 0}, "top_n"),
    ):
        status, body = await node.post("/v1/rerank", {"model": reranker, **bad})
        assert status == 400 and assert_openai_error(body)["param"] == param, (bad, body)
    long_doc = " ".join(["hello world the user asked a question"] * 200)
    status, body = await node.post(
        "/v1/rerank", {"model": reranker, "query": "q", "documents": ["d", long_doc]}
    )
    error = assert_openai_error(body, "context_length_exceeded")
    assert status == 400 and "1024" in error["message"] and error["param"] == "documents"
    status, body = await node.post("/v1/embeddings", {"model": reranker, "input": "x"})
    assert status == 400 and assert_openai_error(body)["code"] == "model_not_embedding"
    chat_body = {"model": reranker, "messages": [{"role": "user", "content": "hi"}]}
    status, body = await node.post("/v1/chat/completions", chat_body)
    error = assert_openai_error(body, "model_not_generative")
    assert status == 400 and "rerank" in error["message"]


async def test_rerank_aliases_need_an_api_key_like_v1(node: RunningBalancer) -> None:
    """/rerank and /reranking sit outside /v1 (as llama.cpp's server has them): once a key
    exists, they ask for one as every /v1 path does."""
    model = await register_ready(node, RERANK_REPO)
    status, key = await node.post("/v0/api-keys", {"name": "rag"})
    assert status in (200, 201), key
    request = {"model": model, "query": "hello", "documents": DOCS}
    for path in ("/rerank", "/reranking", "/v1/rerank", "/v1/reranking"):
        status, body = await node.post(path, request, headers={})
        assert status == 401, (path, body)
        status, body = await node.post(
            path, request, headers={"Authorization": f"Bearer {key['key']}"}
        )
        assert status == 200 and len(body["results"]) == len(DOCS), (path, body)
