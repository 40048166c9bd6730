"""The component schemas of llmlb's own API (/v0), and the error object every route answers."""

from __future__ import annotations

from enum import StrEnum

from app.core.types import (
    CONTEXT_SIZE_MAX,
    CONTEXT_SIZE_MIN,
    GPU_LAYERS_MAX,
    HubStatus,
    Lifecycle,
    MessageStatus,
    ModelState,
    NodeStatus,
    Role,
    SyncState,
)
from app.server.openapi.builders import (
    Schema,
    array,
    boolean,
    free_object,
    integer,
    nullable,
    number,
    obj,
    one_of,
    ref,
    string,
)


def _values(kind: type[StrEnum]) -> list[str]:
    """An enum's wire spellings, for a schema's `enum` (one declaration of the states)."""
    return [member.value for member in kind]


_PROGRESS = nullable(
    obj(
        {
            "percent": number(),
            "bytes_downloaded": integer(),
            "bytes_total": integer(),
            "bytes_per_second": integer("summed over the nodes, averaged on each"),
            "seconds_left": nullable(integer("at that speed; null while nothing flows")),
            "retry_at": nullable(number("Unix time of the next try of a waiting download")),
        }
    )
)

_GPU_LAYERS = {
    **nullable(integer(minimum=-1, maximum=GPU_LAYERS_MAX)),
    "description": "Layers the model offloads to the GPU: -1 all, 0 none (CPU only), N that "
    "many; null: each node's own setting (LLMLB_GPU_LAYERS, `auto` by default: as many as fit)",
}
_CONTEXT_SIZE = {
    **nullable(integer(minimum=CONTEXT_SIZE_MIN, maximum=CONTEXT_SIZE_MAX)),
    "description": "Tokens one conversation may hold; null: each node's own setting "
    "(LLMLB_CONTEXT_SIZE; by default what the model was trained for, within the memory)",
}

_NODE_MODEL = obj(
    {
        "name": string(),
        "state": string(enum=_values(ModelState)),
        "downloaded_bytes": integer(),
        "total_bytes": integer(),
        "error": nullable(string()),
        "path": nullable(string()),
        "context_length": nullable(integer()),
    }
)

MANAGEMENT: dict[str, Schema] = {
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
            "status": string(enum=_values(HubStatus)),
            "lifecycle_status": string(enum=_values(Lifecycle)),
            "download_progress": _PROGRESS,
            "ready_nodes": array(string()),
            "hf_info": obj({"downloads": nullable(integer()), "likes": nullable(integer())}),
            "context_length": nullable(integer()),
            "effective_context_length": integer(),
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
                        "bytes_per_second": integer(),
                        "retry_at": nullable(number()),
                    }
                )
            ),
            "gpu_layers": _GPU_LAYERS,
            "context_size": _CONTEXT_SIZE,
        },
        ("id", "status", "lifecycle_status"),
    ),
    "ModelUpdate": obj(
        {"gpu_layers": _GPU_LAYERS, "context_size": _CONTEXT_SIZE},
        (),
        extra=False,
        description="A registered model's settings to change",
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
            "status": string(enum=[Lifecycle.REGISTERED.value]),
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
            "gpu_layers": _GPU_LAYERS,
            "context_size": _CONTEXT_SIZE,
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
            "status": string(enum=_values(NodeStatus)),
            "created_at": number(),
            "last_seen": nullable(number()),
            "registered_at": nullable(number()),
            "tags": array(string()),
            "notes": string(),
            "metrics": free_object(),
            "metrics_stale": boolean(),
            "ready_models": array(integer(), minItems=2, maxItems=2),
            "models": array(_NODE_MODEL),
            "inflight": integer(),
            "speed": {
                "type": "object",
                "additionalProperties": number(minimum=0),
                "description": "measured generation tokens/s per model (a moving average of "
                "this node's answers through the balancer; the dispatcher prefers the fastest)",
            },
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
            "tls_fingerprint": string(
                "SHA-256 of the certificate the node serves with (TLS balancers): 64 hex "
                "digits, colons allowed"
            ),
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
            "sync_state": string(enum=_values(SyncState)),
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
            "role": string(enum=_values(Role)),
            "content": string(),
            "status": string(enum=_values(MessageStatus)),
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
}
