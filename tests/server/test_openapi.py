"""The OpenAPI document: in step with the routes, valid OpenAPI 3.1, served at /v0/openapi.json."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import schemathesis
from aiohttp import web

from app.server.openapi import build_document
from tests.conftest import RunningBalancer


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route, paths in OpenAPI form (`{name:.+}` reads `{name}`)."""
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None  # aiohttp adds HEAD to GETs
    }


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(method, path) of every operation in the document."""
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


async def test_every_route_is_documented_and_nothing_else(balancer: RunningBalancer) -> None:
    assert balancer.ctx.runner is not None
    routes = app_routes(balancer.ctx.runner.app)
    doc = build_document()
    assert sorted(routes - documented(doc)) == [], "routes missing from app/server/openapi.py"
    assert sorted(documented(doc) - routes) == [], "documented routes the app does not have"
    assert ("GET", "/v0/models/{name}") in routes  # the `{name:.+}` routes map as OpenAPI paths


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = copy.deepcopy(build_document())
    assert doc["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(doc).validate()  # against the OpenAPI 3.1 meta-schema


def test_the_validation_would_catch_a_broken_document() -> None:
    doc = copy.deepcopy(build_document())
    doc["paths"]["/v0/models"]["get"]["responses"] = "none"
    with pytest.raises(Exception, match="not of type"):
        schemathesis.openapi.from_dict(doc).validate()


def test_every_operation_answers_errors_in_openai_shape() -> None:
    doc = build_document()
    for path, ops in doc["paths"].items():
        # Anthropic's API answers errors in its own shape (its clients read no other).
        shape = "AnthropicError" if path.startswith("/v1/messages") else "Error"
        for method, op in ops.items():
            for status, answer in op["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": f"#/components/schemas/{shape}"}, (
                        method,
                        path,
                        status,
                    )
            if {} not in op["security"]:  # credentials needed: a 401 is documented
                assert "401" in op["responses"], (method, path)


async def test_the_document_is_served_to_anyone(balancer: RunningBalancer) -> None:
    # Tools read it before they have a token; it holds no secrets.
    status, doc = await balancer.get("/v0/openapi.json", headers={})
    assert status == 200
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": balancer.url}]
    assert set(doc["paths"]) == set(build_document()["paths"])
    assert {"/v1/chat/completions", "/v0/models/register"} <= set(doc["paths"])
    # No credential travels in a URL but the one-time events ticket.
    in_query = [
        s["name"] for s in doc["components"]["securitySchemes"].values() if s.get("in") == "query"
    ]
    assert in_query == ["ticket"]


def test_the_openai_bodies_name_their_main_fields() -> None:
    schemas = build_document()["components"]["schemas"]
    chat = schemas["ChatCompletionRequest"]
    assert chat["required"] == ["model", "messages"]
    assert "additionalProperties" not in chat  # other fields pass through to the node
    for field in ("stream", "max_tokens", "temperature", "top_p", "stop", "seed", "tools"):
        assert field in chat["properties"], field
    assert "response_format" in chat["properties"]
    content = schemas["ChatMessage"]["properties"]["content"]["anyOf"][0]["anyOf"]
    assert [c["type"] for c in content] == ["string", "array"]  # a string or content parts
    assert schemas["EmbeddingRequest"]["required"] == ["model", "input"]
    assert schemas["CompletionRequest"]["required"] == ["model", "prompt"]


def test_rerank_is_documented_where_llama_cpp_answers_it() -> None:
    doc = build_document()
    for path in ("/v1/rerank", "/v1/reranking", "/rerank", "/reranking"):
        op = doc["paths"][path]["post"]
        body = op["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/RerankRequest"}, path
        assert "401" in op["responses"], path  # API keys apply off /v1 too
    schemas = doc["components"]["schemas"]
    assert schemas["RerankRequest"]["required"] == ["model", "query", "documents"]
    result = schemas["RerankList"]["properties"]["results"]["items"]
    assert result["required"] == ["index", "relevance_score"]
    embedding = schemas["EmbeddingRequest"]["properties"]
    assert embedding["encoding_format"]["enum"] == ["float", "base64"]
    assert "model's own size" in embedding["dimensions"]["description"]
