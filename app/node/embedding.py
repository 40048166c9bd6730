"""The node's pooled-output APIs: `/v1/embeddings` (OpenAI) and `/v1/rerank` (the Jina/Cohere
shape llama.cpp's server answers), from a request body to the JSON answer.

Both run on the model's one-at-a-time runner loaded for embeddings (`ModelRunner.embed` and
`.rerank`); `app.node.inference` serves them beside chat and completions.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.core.errors import BadRequest
from app.core.wire import JsonValue
from app.node.engine.sequential import ModelRunner
from app.node.models import NodeModels
from app.node.openai_params import model_name

MAX_INPUTS = 2048  # OpenAI's bound on the inputs of one embeddings request
MAX_DOCUMENTS = 1000  # Cohere's advice for one rerank request
ENCODINGS = ("float", "base64")


@dataclass(frozen=True)
class EmbeddingRequest:
    """A validated /v1/embeddings body."""

    model: str
    inputs: list[str | list[int]]  # texts, or token ids taken as they are
    encoding: str  # "float" or "base64"
    dimensions: int | None


@dataclass(frozen=True)
class RerankRequest:
    """A validated /v1/rerank body."""

    model: str
    query: str
    documents: list[str]
    top_n: int
    return_documents: bool


def _token_ids(value: list[JsonValue]) -> list[int] | None:
    """`value` as token ids when every item is an integer; None when it is not one."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [v for v in value if isinstance(v, int)]
    return None


def embedding_inputs(value: JsonValue) -> list[str | list[int]]:
    """`input` as OpenAI takes it: a string, a list of strings, a list of token ids, or a list
    of lists of token ids (ids are checked against the vocabulary when the model runs)."""
    error = BadRequest(
        "'input' must be a string, a non-empty list of strings, a list of token ids or a "
        "list of lists of token ids",
        param="input",
    )
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise error
    if len(value) > MAX_INPUTS:
        raise BadRequest(f"'input' takes at most {MAX_INPUTS} items", param="input")
    one = _token_ids(value)
    if one is not None:
        return [one]
    inputs: list[str | list[int]] = []
    for item in value:
        ids = _token_ids(item) if isinstance(item, list) else None
        if isinstance(item, str):
            inputs.append(item)
        elif ids is not None:
            inputs.append(ids)
        else:
            raise error
    if len({type(i) for i in inputs}) > 1:
        raise BadRequest("'input' mixes texts and token ids; send one kind", param="input")
    return inputs


def embedding_request(body: Mapping[str, JsonValue]) -> EmbeddingRequest:
    """Validate an embeddings body."""
    encoding = body.get("encoding_format")
    if encoding is None:
        encoding = "float"
    if not isinstance(encoding, str) or encoding not in ENCODINGS:
        raise BadRequest("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise BadRequest("'dimensions' must be a positive integer", param="dimensions")
    return EmbeddingRequest(
        model_name(body), embedding_inputs(body.get("input")), encoding, dimensions
    )


def check_dimensions(asked: int | None, size: int) -> None:
    """`dimensions` is honoured only as the model's own size; any other is a 400 naming it.

    Cutting a vector to its first k values and normalizing again (Matryoshka) is right only for
    a model trained so that its leading values carry the meaning (nomic-embed v1.5,
    OpenAI's text-embedding-3); for any other it silently gives poor vectors. A GGUF does not
    say how a model was trained, so we cannot tell one from the other (vLLM refuses
    `dimensions` for the same reason unless the model's config declares Matryoshka); a client
    that knows its model is Matryoshka-trained can cut the vector itself.
    """
    if asked is not None and asked != size:
        raise BadRequest(
            f"'dimensions' {asked} is not supported: this model's embeddings have {size} "
            f"dimensions (send {size}, or none); shortening them is right only for models "
            "trained for it, which a GGUF does not declare",
            param="dimensions",
            code="unsupported_dimensions",
        )


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # as OpenAI: the float32 values, little-endian
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


async def embeddings(models: NodeModels, body: dict[str, Any]) -> dict[str, Any]:
    """`/v1/embeddings`."""
    req = embedding_request(body)
    runner = await models.runner_for(req.model, embedding=True)
    assert isinstance(runner, ModelRunner)  # pooled models keep their one-sequence runner
    check_dimensions(req.dimensions, runner.embedding_size or 0)
    vectors, count = await runner.embed(req.inputs)
    data = [
        {"object": "embedding", "index": i, "embedding": _encoded(v, req.encoding)}
        for i, v in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": count, "total_tokens": count},
    }


def _document(value: JsonValue, i: int) -> str:
    """A document as a string, or an object with `text` (Jina and Cohere take both)."""
    text = value.get("text") if isinstance(value, dict) else value
    if not isinstance(text, str):
        raise BadRequest(
            f"documents[{i}] must be a string or an object with a 'text' string",
            param="documents",
        )
    return text


def rerank_request(body: Mapping[str, JsonValue]) -> RerankRequest:
    """Validate a rerank body: {model, query, documents, top_n?, return_documents?}."""
    query = body.get("query")
    if not isinstance(query, str):
        raise BadRequest("'query' must be a string", param="query")
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents:
        raise BadRequest("'documents' must be a non-empty list of strings", param="documents")
    if len(documents) > MAX_DOCUMENTS:
        raise BadRequest(f"'documents' takes at most {MAX_DOCUMENTS} items", param="documents")
    texts = [_document(d, i) for i, d in enumerate(documents)]
    top_n = body.get("top_n")
    if top_n is None:
        top_n = len(texts)
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise BadRequest("'top_n' must be a positive integer", param="top_n")
    back = body.get("return_documents")
    if back is not None and not isinstance(back, bool):
        raise BadRequest("'return_documents' must be true or false", param="return_documents")
    return RerankRequest(model_name(body), query, texts, min(top_n, len(texts)), bool(back))


async def rerank(models: NodeModels, body: dict[str, Any]) -> dict[str, Any]:
    """`/v1/rerank`: the documents by relevance to the query, best first, `top_n` of them."""
    req = rerank_request(body)
    runner = await models.runner_for(req.model, rerank=True)
    assert isinstance(runner, ModelRunner)
    scores, count = await runner.rerank(req.query, req.documents)
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[: req.top_n]
    results: list[dict[str, Any]] = []
    for i in order:
        result: dict[str, Any] = {"index": i, "relevance_score": scores[i]}
        if req.return_documents:
            result["document"] = {"text": req.documents[i]}
        results.append(result)
    return {
        "model": req.model,
        "object": "list",
        "results": results,
        "usage": {"prompt_tokens": count, "total_tokens": count},
    }


Handler = Callable[[NodeModels, dict[str, Any]], Awaitable[dict[str, Any]]]
# Whole-JSON answers, by the path the node serves them on.
ROUTES: dict[str, Handler] = {"/v1/embeddings": embeddings, "/v1/rerank": rerank}
