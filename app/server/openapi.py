"""The OpenAPI 3.1 document of the balancer's HTTP API, one declaration per route.

Built in code from small typed builders rather than written as one big JSON file, so a
schema used by several routes is declared once; tests/server/test_openapi.py checks that
every route of the app is declared here and that nothing here is missing from the app.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiohttp import web

from app import __version__

Schema = dict[str, Any]

routes = web.RouteTableDef()


# -- schema builders ------------------------------------------------------------------
def ref(name: str) -> Schema:
    """A reference to a schema in components."""
    return {"$ref": f"#/components/schemas/{name}"}


def string(description: str = "", **constraints: Any) -> Schema:
    """A string schema."""
    return _described({"type": "string", **constraints}, description)


def integer(description: str = "", **constraints: Any) -> Schema:
    """An integer schema."""
    return _described({"type": "integer", **constraints}, description)


def number(description: str = "", **constraints: Any) -> Schema:
    """A number schema."""
    return _described({"type": "number", **constraints}, description)


def boolean(description: str = "") -> Schema:
    """A boolean schema."""
    return _described({"type": "boolean"}, description)


def array(items: Schema, description: str = "", **constraints: Any) -> Schema:
    """An array schema."""
    return _described({"type": "array", "items": items, **constraints}, description)


def nullable(schema: Schema) -> Schema:
    """The schema, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def one_of(*schemas: Schema, description: str = "") -> Schema:
    """Any one of these shapes (OpenAI's string-or-array fields)."""
    return _described({"anyOf": list(schemas)}, description)


def obj(
    properties: dict[str, Schema],
    required: tuple[str, ...] = (),
    *,
    extra: bool = True,
    description: str = "",
) -> Schema:
    """An object schema; `extra` says whether unknown fields are allowed (and ignored)."""
    out: Schema = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    if not extra:
        out["additionalProperties"] = False
    return _described(out, description)


def free_object(description: str = "") -> Schema:
    """Any JSON object."""
    return _described({"type": "object"}, description)


def _described(schema: Schema, description: str) -> Schema:
    if description:
        schema["description"] = description
    return schema


# -- route declarations -----------------------------------------------------------------
class Access(Enum):
    """Who may call a route (see app/server/auth.py)."""

    ADMIN = "admin"  # /v0: the admin token
    NODE_READ = "node_read"  # /v0 paths a node may read with its own X-Node-Token
    JOIN = "join"  # node registration: the cluster join token (or the admin token)
    NODE = "node"  # a node's heartbeat: its X-Node-Token
    INFERENCE = "inference"  # /v1: an API key, unless the server is open (loopback, no keys)
    PUBLIC = "public"  # no credentials
    METRICS = "metrics"  # open on loopback; the admin token when bound beyond it


_SECURITY: dict[Access, list[dict[str, list[str]]]] = {
    Access.ADMIN: [{"adminToken": []}, {"adminTokenQuery": []}],
    Access.NODE_READ: [{"adminToken": []}, {"adminTokenQuery": []}, {"nodeToken": []}],
    Access.JOIN: [{"joinToken": []}],
    Access.NODE: [{"nodeToken": []}],
    Access.INFERENCE: [{"apiKey": []}, {}],
    Access.PUBLIC: [{}],
    Access.METRICS: [{}, {"adminToken": []}],
}


@dataclass(frozen=True)
class Reply:
    """One documented answer: status, description, and its body (JSON unless `media` says)."""

    status: int
    description: str
    schema: Schema | None = None
    media: str = "application/json"


@dataclass(frozen=True)
class Query:
    """A query parameter."""

    name: str
    schema: Schema
    description: str = ""


@dataclass(frozen=True)
class Route:
    """One route: method, aiohttp-style path, what it takes and what it answers."""

    method: str
    path: str  # OpenAPI form: `{name}` even where aiohttp matches `{name:.+}`
    summary: str
    tag: str
    access: Access
    replies: tuple[Reply, ...]
    body: Schema | None = None
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = ()  # error statuses beyond those the access and body imply
    path_notes: dict[str, str] | None = None  # description of each path parameter


def error(status: int, description: str) -> Reply:
    """An error answer in OpenAI's shape."""
    return Reply(status, description, ref("Error"))


_ERROR_TEXT = {
    400: "The request is wrong (bad JSON, a wrong type, a bad name); `error.param` names the field",
    401: "No or wrong credentials",
    404: "Not found",
    409: "Conflict with the current state",
    413: "The body is larger than this endpoint accepts",
    502: "An upstream (Hugging Face, or every node tried) failed or did not answer",
    503: "Cannot answer now (serving paused, model downloading, no capable node)",
}

_NO_CONTENT = Reply(204, "Done; no body")


# -- component schemas ------------------------------------------------------------------
_MODEL_NAME = string(
    "A model name: a catalog id or a lower-cased `org/repo`, optionally with `:QUANT`; "
    "it may contain `/`"
)

_PROGRESS = nullable(
    obj(
        {
            "percent": number(),
            "bytes_downloaded": integer(),
            "bytes_total": integer(),
        }
    )
)

_NODE_MODEL = obj(
    {
        "name": string(),
        "state": string(enum=["pending", "downloading", "ready", "error"]),
        "downloaded_bytes": integer(),
        "total_bytes": integer(),
        "error": nullable(string()),
        "path": nullable(string()),
    }
)

_CONTENT_PART = one_of(
    obj({"type": string(enum=["text"]), "text": string()}, ("type", "text")),
    obj(
        {
            "type": string(enum=["image_url"]),
            "image_url": obj({"url": string(), "detail": string()}, ("url",)),
        },
        ("type", "image_url"),
    ),
    obj(
        {
            "type": string(enum=["input_audio"]),
            "input_audio": obj({"data": string(), "format": string()}, ("data", "format")),
        },
        ("type", "input_audio"),
    ),
    obj({"type": string(enum=["file"]), "file": free_object()}, ("type", "file")),
    description="A part of a message's content",
)

_TOOL = obj(
    {
        "type": string(enum=["function"]),
        "function": obj(
            {
                "name": string(),
                "description": string(),
                "parameters": free_object("JSON Schema of the arguments"),
                "strict": nullable(boolean()),
            },
            ("name",),
        ),
    },
    ("type", "function"),
)

_STOP = nullable(one_of(string(), array(string(), maxItems=4)))

_SAMPLING: dict[str, Schema] = {
    "model": string("A model from GET /v1/models", minLength=1),
    "stream": nullable(boolean("Answer as server-sent events ending `data: [DONE]`")),
    "stream_options": nullable(obj({"include_usage": boolean()})),
    "max_tokens": nullable(integer(minimum=1)),
    "temperature": nullable(number(minimum=0, maximum=2)),
    "top_p": nullable(number(minimum=0, maximum=1)),
    "n": nullable(integer(minimum=1)),
    "stop": _STOP,
    "seed": nullable(integer()),
    "presence_penalty": nullable(number(minimum=-2, maximum=2)),
    "frequency_penalty": nullable(number(minimum=-2, maximum=2)),
    "logit_bias": nullable(free_object()),
    "user": string(),
}

COMPONENTS: dict[str, Schema] = {
    "Error": obj(
        {
            "error": obj(
                {
                    "message": string(),
                    "type": string(),
                    "param": nullable(string()),
                    "code": nullable(string()),
                },
                ("message", "type", "param", "code"),
            )
        },
        ("error",),
        description="OpenAI's error object",
    ),
    "HubEntry": obj(
        {
            "id": string(),
            "name": string(),
            "repo": string(),
            "recommended_filename": string(),
            "size_bytes": integer(),
            "required_memory_bytes": integer(),
            "status": string(enum=["available", "downloading", "downloaded"]),
            "lifecycle_status": string(enum=["registered", "pending", "ready", "error"]),
            "download_progress": _PROGRESS,
            "ready_nodes": array(string()),
            "hf_info": obj({"downloads": nullable(integer()), "likes": nullable(integer())}),
        },
        ("id", "status"),
        description="A catalog entry or a registered model, with its status",
    ),
    "RegisteredModel": obj(
        {
            "id": string(),
            "name": string(),
            "repo": string(),
            "recommended_filename": string(),
            "quantization": nullable(string()),
            "size_bytes": integer(),
            "required_memory_bytes": integer(),
            "source": string(enum=["catalog", "url"]),
            "status": string(),
            "lifecycle_status": string(),
            "download_progress": _PROGRESS,
            "ready_nodes": array(string()),
            "nodes": array(
                obj(
                    {
                        "node_id": string(),
                        "state": string(),
                        "downloaded_bytes": integer(),
                        "total_bytes": integer(),
                        "error": nullable(string()),
                        "node_online": boolean(),
                        "path": nullable(string()),
                    }
                )
            ),
        },
        ("id", "status", "lifecycle_status"),
    ),
    "RegisterRequest": {
        **obj(
            {
                "model_id": string("A catalog id, optionally `:QUANT`"),
                "repo": string("A Hugging Face repo id (`org/name`) or any huggingface.co URL"),
                "filename": string("The GGUF file, when the repo has several"),
                "display_name": string(),
            }
        ),
        "oneOf": [{"required": ["model_id"]}, {"required": ["repo"]}],
    },
    "Registered": obj(
        {
            "name": string(),
            "status": string(enum=["registered"]),
            "filename": string(),
            "size_bytes": integer(),
            "required_memory_bytes": integer(),
            "warnings": array(string()),
        },
        ("name", "status", "filename", "size_bytes", "required_memory_bytes", "warnings"),
    ),
    "Manifest": obj(
        {
            "name": string(),
            "format": string(),
            "quantization": nullable(string()),
            "repo": string(),
            "revision": nullable(string()),
            "capabilities": array(string()),
            "files": array(
                obj(
                    {
                        "name": string(),
                        "url": string(),
                        "size": integer(),
                        "sha256": nullable(string()),
                    },
                    ("name", "url", "size"),
                )
            ),
        },
        ("name", "format", "files"),
    ),
    "NewApiKey": obj(
        {
            "id": string(),
            "name": string(),
            "key": string("The secret, shown in this answer only"),
            "prefix": string(),
            "created_at": number(),
        },
        ("id", "name", "key"),
    ),
    "ApiKey": obj(
        {
            "id": string(),
            "name": string(),
            "prefix": string(),
            "created_at": number(),
            "last_used_at": nullable(number()),
        },
        ("id", "name", "prefix"),
    ),
    "Node": obj(
        {
            "id": string(),
            "name": string(),
            "url": string(),
            "kind": string(enum=["local", "remote", "external"]),
            "status": string(enum=["pending", "registering", "online", "offline"]),
            "created_at": number(),
            "last_seen": nullable(number()),
            "tags": array(string()),
            "notes": string(),
            "metrics": free_object(),
            "metrics_stale": boolean(),
            "ready_models": array(integer(), minItems=2, maxItems=2),
            "models": array(_NODE_MODEL),
            "inflight": integer(),
        },
        ("id", "name", "url", "kind", "status"),
    ),
    "NodeRegistration": obj(
        {
            "url": string("The node's http(s) base URL", pattern="^https?://"),
            "name": string(),
            "node_id": string("Set when a known node registers again"),
            "node_token": string("The token it was given, to keep its identity"),
            "local": boolean("The in-process node (with the admin token only)"),
            "runtime_version": string(),
            "llmlb_version": string(),
            "gpu_devices": array(free_object()),
            "supported_runtimes": array(string()),
        },
        ("url",),
    ),
    "Heartbeat": obj(
        {
            "node_id": string(),
            "models": array(_NODE_MODEL),
            "active_requests": integer(),
            "loaded_models": array(string()),
            "ready_models": array(integer()),
            "sync_state": string(enum=["idle", "running", "success", "failed"]),
            "sync_progress": nullable(
                obj(
                    {
                        "model_id": string(),
                        "file": string(),
                        "downloaded_bytes": integer(),
                        "total_bytes": integer(),
                    }
                )
            ),
            "system": free_object("CPU, memory and device use"),
            "slots": integer(minimum=1),
            "free_slots": integer(minimum=0),
        }
    ),
    "ExternalNode": obj(
        {
            "name": string(minLength=1),
            "base_url": string("Its http(s) URL, with or without /v1", pattern="^https?://"),
            "api_key": nullable(string()),
            "slots": nullable(integer("Requests it runs at once", minimum=1)),
        },
        ("name", "base_url"),
    ),
    "NodeUpdate": obj(
        {
            "name": string(minLength=1, maxLength=100),
            "tags": one_of(array(string()), string("Comma-separated")),
            "notes": string(),
        }
    ),
    "ConversationFields": obj(
        {
            "title": string(maxLength=100_000),
            "model": string(maxLength=100_000),
            "system_prompt": string(maxLength=100_000),
            "params": free_object("Sampling parameters the Playground sends"),
        }
    ),
    "Conversation": obj(
        {
            "id": string(),
            "title": string(),
            "model": string(),
            "system_prompt": string(),
            "params": free_object(),
            "created_at": number(),
            "updated_at": number(),
            "messages": array(ref("Message")),
        },
        ("id", "title", "model", "system_prompt", "params", "created_at", "updated_at"),
    ),
    "NewMessage": obj(
        {
            "role": string(enum=["system", "user", "assistant"]),
            "content": string(),
            "status": string(enum=["done", "stopped", "error"]),
            "attachments": array(free_object()),
            "stats": free_object(),
        },
        ("role", "content"),
    ),
    "Message": obj(
        {
            "id": integer(),
            "role": string(),
            "content": string(),
            "attachments": array({}),
            "status": string(),
            "stats": free_object(),
            "created_at": number(),
        },
        ("id", "role", "content", "status"),
    ),
    "Model": obj(
        {
            "id": string(),
            "object": string(enum=["model"]),
            "created": integer(),
            "owned_by": string(),
            "ready": boolean(),
            "lifecycle_status": string(),
            "size_bytes": integer(),
            "required_memory_bytes": integer(),
            "context_length": nullable(integer()),
            "capabilities": array(string()),
            "ready_nodes": array(string()),
        },
        ("id", "object"),
        description="An OpenAI model object with llmlb's extension fields",
    ),
    "ChatMessage": obj(
        {
            "role": string(enum=["system", "developer", "user", "assistant", "tool", "function"]),
            "content": nullable(one_of(string(), array(_CONTENT_PART))),
            "name": string(),
            "tool_calls": array(free_object()),
            "tool_call_id": string(),
            "reasoning_content": nullable(string()),
        },
        ("role",),
    ),
    "ChatCompletionRequest": obj(
        {
            **_SAMPLING,
            "messages": array(ref("ChatMessage"), minItems=1),
            "max_completion_tokens": nullable(integer(minimum=1)),
            "logprobs": nullable(boolean()),
            "top_logprobs": nullable(integer(minimum=0, maximum=20)),
            "tools": array(_TOOL),
            "tool_choice": one_of(
                string(enum=["none", "auto", "required"]),
                obj({"type": string(), "function": obj({"name": string()})}),
            ),
            "parallel_tool_calls": boolean(),
            "response_format": obj(
                {
                    "type": string(enum=["text", "json_object", "json_schema"]),
                    "json_schema": free_object(),
                },
                ("type",),
            ),
            "reasoning_effort": string(),
        },
        ("model", "messages"),
        description="OpenAI's chat completion request; other fields pass through to the node",
    ),
    "CompletionRequest": obj(
        {
            **_SAMPLING,
            "prompt": one_of(string(), array(string()), array(integer()), array(array(integer()))),
            "echo": boolean(),
            "suffix": nullable(string()),
            "logprobs": nullable(integer(minimum=0, maximum=5)),
            "best_of": nullable(integer(minimum=1)),
        },
        ("model", "prompt"),
        description="OpenAI's text completion request; other fields pass through to the node",
    ),
    "EmbeddingRequest": obj(
        {
            "model": string("A model from GET /v1/models", minLength=1),
            "input": one_of(string(), array(string()), array(integer()), array(array(integer()))),
            "encoding_format": string(enum=["float", "base64"]),
            "dimensions": integer(minimum=1),
            "user": string(),
        },
        ("model", "input"),
        description="OpenAI's embeddings request; other fields pass through to the node",
    ),
    "ChatCompletion": obj(
        {
            "id": string(),
            "object": string(),
            "created": integer(),
            "model": string(),
            "choices": array(free_object()),
            "usage": free_object(),
        },
        description="The node's answer, relayed unchanged",
    ),
    "Completion": obj(
        {
            "id": string(),
            "object": string(),
            "created": integer(),
            "model": string(),
            "choices": array(free_object()),
            "usage": free_object(),
        },
        description="The node's answer, relayed unchanged",
    ),
    "EmbeddingList": obj(
        {
            "object": string(),
            "data": array(
                obj(
                    {
                        "object": string(),
                        "index": integer(),
                        "embedding": one_of(array(number()), string()),
                    }
                )
            ),
            "model": string(),
            "usage": free_object(),
        },
        description="The node's answer, relayed unchanged",
    ),
}


# -- the routes ---------------------------------------------------------------------------
def _json(status: int, description: str, name_or_schema: str | Schema) -> Reply:
    schema = ref(name_or_schema) if isinstance(name_or_schema, str) else name_or_schema
    return Reply(status, description, schema)


_NAME_NOTE = {"name": "A model name; may contain `/` (sent as is, not percent-encoded)"}
_SSE = "text/event-stream"

ROUTES: tuple[Route, ...] = (
    # Outside /v0 and /v1: liveness, the root, Prometheus metrics.
    Route(
        "GET",
        "/health",
        "Liveness: the balancer answers",
        "service",
        Access.PUBLIC,
        (_json(200, "Alive", obj({"status": string(), "version": string()})),),
    ),
    Route(
        "GET",
        "/",
        "The service's name, version and OpenAI base URL",
        "service",
        Access.PUBLIC,
        (
            _json(
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
        Access.ADMIN,
        (_json(200, "The OpenAPI 3.1 document of /v0 and /v1", free_object()),),
    ),
    # Models.
    Route(
        "GET",
        "/v0/models/hub",
        "The catalog and registered models, with statuses (never waits on Hugging Face)",
        "models",
        Access.ADMIN,
        (_json(200, "Hub entries", array(ref("HubEntry"))),),
    ),
    Route(
        "POST",
        "/v0/models/register",
        "Register a catalog model or a Hugging Face repo (metadata only)",
        "models",
        Access.ADMIN,
        (_json(201, "Registered", "Registered"),),
        body=ref("RegisterRequest"),
        errors=(409, 502),
    ),
    Route(
        "GET",
        "/v0/models",
        "Registered models with per-node state and progress",
        "models",
        Access.NODE_READ,
        (_json(200, "Registered models", array(ref("RegisteredModel"))),),
    ),
    Route(
        "GET",
        "/v0/models/registry/{name}/manifest.json",
        "What a node downloads for a model",
        "models",
        Access.NODE_READ,
        (_json(200, "The manifest", "Manifest"),),
        errors=(400, 404),
        path_notes=_NAME_NOTE,
    ),
    Route(
        "GET",
        "/v0/models/{name}",
        "One registered model with its state",
        "models",
        Access.ADMIN,
        (_json(200, "The model", "RegisteredModel"),),
        errors=(400, 404),
        path_notes=_NAME_NOTE,
    ),
    Route(
        "DELETE",
        "/v0/models/{name}",
        "Unregister a model; every node deletes its files at its next sync",
        "models",
        Access.ADMIN,
        (_NO_CONTENT,),
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
        (_json(201, "The new key", "NewApiKey"),),
        body=obj({"name": string(minLength=1, maxLength=100)}, ("name",)),
    ),
    Route(
        "GET",
        "/v0/api-keys",
        "API keys, without their secrets",
        "api-keys",
        Access.ADMIN,
        (_json(200, "Keys", array(ref("ApiKey"))),),
    ),
    Route(
        "DELETE",
        "/v0/api-keys/{key_id}",
        "Revoke a key at once",
        "api-keys",
        Access.ADMIN,
        (_NO_CONTENT,),
        errors=(404,),
    ),
    # Nodes and the cluster.
    Route(
        "POST",
        "/v0/nodes",
        "A node registers: with the join token it waits for approval, with the admin token "
        "it is approved",
        "nodes",
        Access.JOIN,
        (
            _json(
                201,
                "Registered",
                obj(
                    {
                        "node_id": string(),
                        "status": string(),
                        "node_token": string(),
                        "manifest_version": string(),
                    },
                    ("node_id", "status", "node_token"),
                ),
            ),
        ),
        body=ref("NodeRegistration"),
    ),
    Route(
        "POST",
        "/v0/health",
        "A node's heartbeat",
        "nodes",
        Access.NODE,
        (
            _json(
                200,
                "The node's status and the manifest version",
                obj({"status": string(), "manifest_version": string()}),
            ),
        ),
        body=ref("Heartbeat"),
    ),
    Route(
        "GET",
        "/v0/nodes",
        "Every node with status, metrics and model states",
        "nodes",
        Access.ADMIN,
        (_json(200, "Nodes", array(ref("Node"))),),
    ),
    Route(
        "POST",
        "/v0/nodes/external",
        "Add any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio) as a node",
        "nodes",
        Access.ADMIN,
        (_json(201, "The new node", {"allOf": [ref("Node"), obj({"node_id": string()})]}),),
        body=ref("ExternalNode"),
    ),
    Route(
        "GET",
        "/v0/nodes/{node_id}",
        "One node",
        "nodes",
        Access.ADMIN,
        (_json(200, "The node", "Node"),),
        errors=(404,),
    ),
    Route(
        "POST",
        "/v0/nodes/{node_id}/approve",
        "Let a pending node in",
        "nodes",
        Access.ADMIN,
        (_json(200, "The node", "Node"),),
        errors=(404,),
    ),
    Route(
        "PUT",
        "/v0/nodes/{node_id}",
        "Rename a node, set its tags and notes",
        "nodes",
        Access.ADMIN,
        (_json(200, "The node", "Node"),),
        body=ref("NodeUpdate"),
        errors=(404,),
    ),
    Route(
        "DELETE",
        "/v0/nodes/{node_id}",
        "Forget a node (it must register again)",
        "nodes",
        Access.ADMIN,
        (_NO_CONTENT,),
        errors=(404,),
    ),
    Route(
        "GET",
        "/v0/cluster",
        "The join token and how nodes find this balancer",
        "nodes",
        Access.ADMIN,
        (
            _json(
                200,
                "The cluster",
                obj(
                    {
                        "join_token": string(),
                        "discovery": boolean(),
                        "lan": boolean(),
                        "discovered": array(free_object()),
                    },
                    ("join_token", "discovery", "lan"),
                ),
            ),
        ),
    ),
    Route(
        "POST",
        "/v0/cluster/join-token/rotate",
        "A new join token (refused while LLMLB_JOIN_TOKEN fixes it)",
        "nodes",
        Access.ADMIN,
        (_json(200, "The new token", obj({"join_token": string()}, ("join_token",))),),
        errors=(409,),
    ),
    Route(
        "GET",
        "/v0/serving",
        "Whether /v1 inference is paused",
        "serving",
        Access.ADMIN,
        (_json(200, "The state", obj({"paused": boolean()}, ("paused",))),),
    ),
    Route(
        "PUT",
        "/v0/serving",
        "Pause or resume /v1 inference (management and downloads go on)",
        "serving",
        Access.ADMIN,
        (_json(200, "The new state", obj({"paused": boolean()}, ("paused",))),),
        body=obj({"paused": boolean()}, ("paused",)),
    ),
    Route(
        "GET",
        "/v0/requests",
        "The newest requests first (kept 7 days)",
        "serving",
        Access.ADMIN,
        (_json(200, "Request records", array(free_object())),),
        query=(Query("limit", integer(minimum=1, maximum=1000), "How many (1 to 1000)"),),
        errors=(400,),
    ),
    Route(
        "GET",
        "/v0/events",
        "A WebSocket that pushes every event as JSON `{type, data}` (send the upgrade headers)",
        "events",
        Access.ADMIN,
        (
            Reply(101, "Switching to the WebSocket protocol"),
            error(400, "Not a WebSocket upgrade request"),
        ),
    ),
    # Playground conversations.
    Route(
        "GET",
        "/v0/conversations",
        "Conversations, the latest first",
        "conversations",
        Access.ADMIN,
        (_json(200, "Conversations", array(ref("Conversation"))),),
    ),
    Route(
        "POST",
        "/v0/conversations",
        "Start a conversation",
        "conversations",
        Access.ADMIN,
        (_json(201, "The conversation", "Conversation"),),
        body=ref("ConversationFields"),
    ),
    Route(
        "GET",
        "/v0/conversations/{cid}",
        "A conversation with its messages",
        "conversations",
        Access.ADMIN,
        (_json(200, "The conversation", "Conversation"),),
        errors=(404,),
    ),
    Route(
        "PUT",
        "/v0/conversations/{cid}",
        "Rename, or change the model, system prompt or parameters",
        "conversations",
        Access.ADMIN,
        (_json(200, "The conversation", "Conversation"),),
        body=ref("ConversationFields"),
        errors=(404,),
    ),
    Route(
        "DELETE",
        "/v0/conversations/{cid}",
        "Delete a conversation",
        "conversations",
        Access.ADMIN,
        (_NO_CONTENT,),
        errors=(404,),
    ),
    Route(
        "POST",
        "/v0/conversations/{cid}/messages",
        "Save one complete message",
        "conversations",
        Access.ADMIN,
        (_json(201, "The saved message", "Message"),),
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
            _json(
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
        (_json(200, "The model", "Model"),),
        errors=(400, 404),
        path_notes=_NAME_NOTE,
    ),
    Route(
        "POST",
        "/v1/chat/completions",
        "OpenAI chat completions, streamed or not",
        "openai",
        Access.INFERENCE,
        (_json(200, "The answer (JSON, or server-sent events with stream)", "ChatCompletion"),),
        body=ref("ChatCompletionRequest"),
        errors=(404, 502, 503),
    ),
    Route(
        "POST",
        "/v1/completions",
        "OpenAI text completions, streamed or not",
        "openai",
        Access.INFERENCE,
        (_json(200, "The answer (JSON, or server-sent events with stream)", "Completion"),),
        body=ref("CompletionRequest"),
        errors=(404, 502, 503),
    ),
    Route(
        "POST",
        "/v1/embeddings",
        "OpenAI embeddings",
        "openai",
        Access.INFERENCE,
        (_json(200, "The embeddings", "EmbeddingList"),),
        body=ref("EmbeddingRequest"),
        errors=(404, 502, 503),
    ),
)

_STREAMED = {"/v1/chat/completions", "/v1/completions"}


# -- the document ---------------------------------------------------------------------------
def _operation(route: Route) -> Schema:
    op: Schema = {
        "summary": route.summary,
        "operationId": _operation_id(route),
        "tags": [route.tag],
        "security": _SECURITY[route.access],
    }
    params: list[Schema] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            **({"description": note} if (note := (route.path_notes or {}).get(name)) else {}),
        }
        for name in _path_params(route.path)
    ]
    params += [
        {"name": q.name, "in": "query", "required": False, "schema": q.schema}
        | ({"description": q.description} if q.description else {})
        for q in route.query
    ]
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    responses: dict[str, Schema] = {}
    for reply in route.replies:
        answer: Schema = {"description": reply.description}
        if reply.schema is not None:
            content = {reply.media: {"schema": reply.schema}}
            if reply.status == 200 and route.path in _STREAMED:
                content[_SSE] = {"schema": string("`data: {chunk}` lines, then `data: [DONE]`")}
            answer["content"] = content
        responses[str(reply.status)] = answer
    statuses = set(route.errors)
    if route.body is not None:
        statuses |= {400, 413}
    if route.access not in {Access.PUBLIC, Access.METRICS}:
        statuses.add(401)
    if route.path.startswith("/v1/") and route.method == "POST":
        statuses.add(503)  # serving paused
    for status in sorted(statuses):
        responses.setdefault(str(status), _reply(error(status, _ERROR_TEXT[status])))
    op["responses"] = responses
    return op


def _reply(reply: Reply) -> Schema:
    answer: Schema = {"description": reply.description}
    if reply.schema is not None:
        answer["content"] = {reply.media: {"schema": reply.schema}}
    return answer


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def _operation_id(route: Route) -> str:
    words = [p.strip("{}") for p in route.path.split("/") if p and p not in {"v0", "v1"}]
    cleaned = "_".join(w.replace("-", "_").replace(".", "_") for w in words) or "root"
    return f"{route.method.lower()}_{cleaned}"


@functools.cache
def build_document() -> Schema:
    """The OpenAPI 3.1 document (built once; callers must not change it)."""
    paths: dict[str, dict[str, Schema]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llmlb",
            "version": __version__,
            "description": (
                "The llmlb balancer: `/v0` is the management API (admin token), `/v1` is "
                "OpenAI-compatible (an API key, unless the server is on loopback with no keys). "
                "Every error has OpenAI's shape `{error: {message, type, param, code}}`."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token (LLMLB_ADMIN_TOKEN, or the data dir's file)",
                },
                "adminTokenQuery": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "token",
                    "description": "The admin token as a query parameter (for WebSocket clients)",
                },
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from POST /v0/api-keys (or the admin token)",
                },
                "joinToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The cluster join token (GET /v0/cluster), or the admin token",
                },
                "nodeToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Node-Token",
                    "description": "The token a node was given when it registered",
                },
            },
        },
    }


# Behind the admin token like the rest of /v0: the document holds no secrets, but making
# it public means adding it to auth.SELF_AUTHENTICATED-like public paths in app/server/auth.py
# (then change its `Access` above to PUBLIC).
@routes.get("/v0/openapi.json")
async def document(request: web.Request) -> web.Response:
    """This API's OpenAPI document, naming this server as the one to call."""
    doc = copy.copy(build_document())
    doc["servers"] = [{"url": str(request.url.origin())}]
    return web.json_response(doc)
