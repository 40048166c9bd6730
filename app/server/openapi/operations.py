"""Every route of the balancer, declared once: method, path, summary, access, body, answers."""

from __future__ import annotations

from app.server.openapi.builders import (
    NO_CONTENT,
    Access,
    Reply,
    Route,
    array,
    boolean,
    free_object,
    integer,
    json_reply,
    obj,
    ref,
    string,
)
from app.server.openapi.operations_logs import LOG_ROUTES
from app.server.openapi.operations_nodes import NODE_ROUTES
from app.server.openapi.operations_requests import REQUEST_ROUTES
from app.server.openapi.operations_stats import STATS_ROUTES

_NAME_NOTE = {"name": "A model name; may contain `/` (sent as is, not percent-encoded)"}

ROUTES: tuple[Route, ...] = (
    # Outside /v0 and /v1: liveness, the root, Prometheus metrics.
    Route(
        "GET",
        "/health",
        "Liveness: the balancer answers",
        "service",
        Access.PUBLIC,
        (json_reply(200, "Alive", obj({"status": string(), "version": string()})),),
    ),
    Route(
        "GET",
        "/",
        "The service's name, version and OpenAI base URL",
        "service",
        Access.PUBLIC,
        (
            json_reply(
                200,
                "About this server",
                obj({"name": string(), "version": string(), "openai_base_url": string()}),
            ),
        ),
    ),
    Route(
        "GET",
        "/metrics",
        "Prometheus metrics (admin token needed when bound beyond loopback)",
        "service",
        Access.METRICS,
        (Reply(200, "Prometheus text format", string(), "text/plain"),),
        errors=(401, 404),
    ),
    Route(
        "GET",
        "/v0/openapi.json",
        "This document",
        "service",
        Access.PUBLIC,
        (json_reply(200, "The OpenAPI 3.1 document of /v0 and /v1", free_object()),),
    ),
    # Models.
    Route(
        "GET",
        "/v0/models/hub",
        "The catalog and registered models, with statuses (never waits on Hugging Face)",
        "models",
        Access.ADMIN,
        (json_reply(200, "Hub entries", array(ref("HubEntry"))),),
    ),
    Route(
        "GET",
        "/v0/models/hub/{model_id}/quantizations",
        "The quantizations a catalog model's repo offers (register one as `<id>:<QUANT>`), "
        "the catalog's own first",
        "models",
        Access.ADMIN,
        (
            json_reply(
                200,
                "Quantizations with their file size and memory estimate",
                array(
                    obj(
                        {
                            "quantization": string(),
                            "size_bytes": integer(),
                            "required_memory_bytes": integer(),
                            "default": boolean("The catalog's own choice"),
                        },
                        ("quantization", "size_bytes", "required_memory_bytes", "default"),
                    )
                ),
            ),
        ),
        errors=(404, 502),
    ),
    Route(
        "POST",
        "/v0/models/register",
        "Register a catalog model or a Hugging Face repo (metadata only)",
        "models",
        Access.ADMIN,
        (json_reply(201, "Registered", "Registered"),),
        body=ref("RegisterRequest"),
        errors=(409, 502),
    ),
    Route(
        "GET",
        "/v0/models",
        "Registered models with per-node state and progress",
        "models",
        Access.NODE_READ,
        (json_reply(200, "Registered models", array(ref("RegisteredModel"))),),
    ),
    Route(
        "GET",
        "/v0/models/registry/{name}/manifest.json",
        "What a node downloads for a model",
        "models",
        Access.NODE_READ,
        (json_reply(200, "The manifest", "Manifest"),),
        errors=(400, 404),
        path_notes=_NAME_NOTE,
    ),
    Route(
        "GET",
        "/v0/models/{name}",
        "One registered model with its state",
        "models",
        Access.ADMIN,
        (json_reply(200, "The model", "RegisteredModel"),),
        errors=(400, 404),
        path_notes=_NAME_NOTE,
    ),
    Route(
        "PATCH",
        "/v0/models/{name}",
        "Change a model's settings: how many layers it offloads to the GPU; every node takes "
        "the new value at its next sync, and a loaded model reloads with it on its next use",
        "models",
        Access.ADMIN,
        (json_reply(200, "The model", "RegisteredModel"),),
        body=ref("ModelUpdate"),
        errors=(400, 404),
        path_notes=_NAME_NOTE,
    ),
    Route(
        "POST",
        "/v0/models/{name}/retry",
        "Try a model in error again: every live node holding it in error loads it again on "
        "its next request (a failed load) or fetches it again (a failed download)",
        "models",
        Access.ADMIN,
        (
            json_reply(
                200,
                "The nodes told to try again (none when no node holds the model in error)",
                obj(
                    {
                        "name": string("The model"),
                        "retried_nodes": array(string(), "Ids of the nodes trying again"),
                    },
                    ("name", "retried_nodes"),
                ),
            ),
        ),
        errors=(400, 404),
        path_notes=_NAME_NOTE,
    ),
    Route(
        "DELETE",
        "/v0/models/{name}",
        "Unregister a model; every node deletes its files at its next sync",
        "models",
        Access.ADMIN,
        (NO_CONTENT,),
        errors=(400, 404),
        path_notes=_NAME_NOTE,
    ),
    # API keys.
    Route(
        "POST",
        "/v0/api-keys",
        "Create an API key for /v1 (its secret is in this answer only)",
        "api-keys",
        Access.ADMIN,
        (json_reply(201, "The new key", "NewApiKey"),),
        body=obj({"name": string(minLength=1, maxLength=100)}, ("name",)),
    ),
    Route(
        "GET",
        "/v0/api-keys",
        "API keys, without their secrets",
        "api-keys",
        Access.ADMIN,
        (json_reply(200, "Keys", array(ref("ApiKey"))),),
    ),
    Route(
        "DELETE",
        "/v0/api-keys/{key_id}",
        "Revoke a key at once",
        "api-keys",
        Access.ADMIN,
        (NO_CONTENT,),
        errors=(404,),
    ),
    *NODE_ROUTES,
    *STATS_ROUTES,
    *REQUEST_ROUTES,
    *LOG_ROUTES,
    # Playground conversations.
    Route(
        "GET",
        "/v0/conversations",
        "Conversations, the latest first",
        "conversations",
        Access.ADMIN,
        (json_reply(200, "Conversations", array(ref("Conversation"))),),
    ),
    Route(
        "POST",
        "/v0/conversations",
        "Start a conversation",
        "conversations",
        Access.ADMIN,
        (json_reply(201, "The conversation", "Conversation"),),
        body=ref("ConversationFields"),
    ),
    Route(
        "GET",
        "/v0/conversations/{cid}",
        "A conversation with its messages",
        "conversations",
        Access.ADMIN,
        (json_reply(200, "The conversation", "Conversation"),),
        errors=(404,),
    ),
    Route(
        "PUT",
        "/v0/conversations/{cid}",
        "Rename, or change the model, system prompt or parameters",
        "conversations",
        Access.ADMIN,
        (json_reply(200, "The conversation", "Conversation"),),
        body=ref("ConversationFields"),
        errors=(404,),
    ),
    Route(
        "DELETE",
        "/v0/conversations/{cid}",
        "Delete a conversation",
        "conversations",
        Access.ADMIN,
        (NO_CONTENT,),
        errors=(404,),
    ),
    Route(
        "POST",
        "/v0/conversations/{cid}/messages",
        "Save one complete message",
        "conversations",
        Access.ADMIN,
        (json_reply(201, "The saved message", "Message"),),
        body=ref("NewMessage"),
        errors=(404,),
    ),
    # The OpenAI-compatible API.
    Route(
        "GET",
        "/v1/models",
        "Models some online node can serve now",
        "openai",
        Access.INFERENCE,
        (
            json_reply(
                200,
                "OpenAI model list",
                obj({"object": string(enum=["list"]), "data": array(ref("Model"))}),
            ),
        ),
    ),
    Route(
        "GET",
        "/v1/models/{name}",
        "One servable model",
        "openai",
        Access.INFERENCE,
        (json_reply(200, "The model", "Model"),),
        errors=(400, 404),
        path_notes=_NAME_NOTE,
    ),
    Route(
        "POST",
        "/v1/chat/completions",
        "OpenAI chat completions, streamed or not",
        "openai",
        Access.INFERENCE,
        (
            json_reply(
                200, "The answer (JSON, or server-sent events with stream)", "ChatCompletion"
            ),
        ),
        body=ref("ChatCompletionRequest"),
        errors=(404, 502, 503),
    ),
    Route(
        "POST",
        "/v1/completions",
        "OpenAI text completions, streamed or not",
        "openai",
        Access.INFERENCE,
        (json_reply(200, "The answer (JSON, or server-sent events with stream)", "Completion"),),
        body=ref("CompletionRequest"),
        errors=(404, 502, 503),
    ),
    Route(
        "POST",
        "/v1/embeddings",
        "OpenAI embeddings",
        "openai",
        Access.INFERENCE,
        (json_reply(200, "The embeddings", "EmbeddingList"),),
        body=ref("EmbeddingRequest"),
        errors=(404, 502, 503),
    ),
    *(
        Route(
            "POST",
            path,
            "Rerank: documents by a reranking model's relevance to a query (Jina/Cohere shape)"
            + ("" if path == "/v1/rerank" else "; an alias of /v1/rerank, as llama.cpp's"),
            "openai",
            Access.INFERENCE,
            (json_reply(200, "The results, best first", "RerankList"),),
            body=ref("RerankRequest"),
            errors=(404, 502, 503),
        )
        for path in ("/v1/rerank", "/v1/reranking", "/rerank", "/reranking")
    ),
    Route(
        "POST",
        "/v1/messages",
        "Anthropic Messages, streamed or not (x-api-key or Bearer)",
        "anthropic",
        Access.INFERENCE,
        (
            json_reply(
                200, "The message (JSON, or Anthropic's events with stream)", "AnthropicMessage"
            ),
        ),
        body=ref("AnthropicMessagesRequest"),
        errors=(404, 502, 503),
    ),
    Route(
        "POST",
        "/v1/messages/count_tokens",
        "Anthropic count_tokens: the prompt's tokens, counted by the model's node",
        "anthropic",
        Access.INFERENCE,
        (json_reply(200, "The count", "AnthropicTokenCount"),),
        body=ref("AnthropicCountTokensRequest"),
        errors=(404, 502, 503),
    ),
    Route(
        "POST",
        "/v1/responses",
        "OpenAI Responses, streamed or not; stored unless store is false",
        "openai",
        Access.INFERENCE,
        (json_reply(200, "The response (JSON, or its events with stream)", "Response"),),
        body=ref("ResponsesRequest"),
        errors=(404, 502, 503),
    ),
    Route(
        "GET",
        "/v1/responses/{response_id}",
        "A stored response (only the API key that created it reads it)",
        "openai",
        Access.INFERENCE,
        (json_reply(200, "The response", "Response"),),
        errors=(404,),
    ),
    Route(
        "DELETE",
        "/v1/responses/{response_id}",
        "Forget a stored response",
        "openai",
        Access.INFERENCE,
        (json_reply(200, "Deleted", "ResponseDeleted"),),
        errors=(404,),
    ),
)
