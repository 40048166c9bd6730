"""The component schemas of Anthropic's Messages API (/v1/messages): what the balancer reads
and answers (app/server/api_anthropic*.py)."""

from __future__ import annotations

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
    string,
)

_BLOCK = obj(
    {
        "type": string(
            enum=["text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"]
        ),
        "text": string(),
        "source": free_object("An image: {type: base64, media_type, data} or {type: url, url}"),
        "id": string(),
        "name": string(),
        "input": free_object(),
        "tool_use_id": string(),
        "content": one_of(string(), array(free_object())),
        "is_error": boolean(),
    },
    ("type",),
    description="A content block",
)
_TEXT_BLOCK = obj({"type": string(enum=["text"]), "text": string()}, ("type", "text"))
_PROMPT: dict[str, Schema] = {
    "model": string("A model from GET /v1/models", minLength=1),
    "system": one_of(string(), array(_TEXT_BLOCK)),
    "messages": array(
        obj(
            {
                "role": string(enum=["user", "assistant"]),
                "content": one_of(string(), array(_BLOCK)),
            },
            ("role", "content"),
        ),
        minItems=1,
    ),
    "tools": array(
        obj(
            {
                "name": string(),
                "description": string(),
                "input_schema": free_object("JSON Schema of the input"),
                "type": string("Absent or 'custom'; hosted tools are dropped"),
            },
            ("name",),
        )
    ),
    "tool_choice": obj(
        {"type": string(enum=["auto", "any", "tool", "none"]), "name": string()}, ("type",)
    ),
    "thinking": obj(
        {
            "type": string(enum=["enabled", "disabled", "adaptive"]),
            "budget_tokens": integer(),
        },
        ("type",),
    ),
    "metadata": free_object("Accepted and not used"),
    "context_management": free_object("Accepted and not used"),
}

ANTHROPIC: dict[str, Schema] = {
    "AnthropicMessagesRequest": obj(
        {
            **_PROMPT,
            "max_tokens": integer(minimum=1),
            "stop_sequences": array(string(), maxItems=4),
            "temperature": number(minimum=0, maximum=1),
            "top_p": number(minimum=0, maximum=1),
            "top_k": integer(minimum=0),
            "stream": boolean("Answer as Anthropic's server-sent events"),
            "output_config": obj(
                {"effort": string(), "format": free_object("{type: json_schema, schema}")}
            ),
        },
        ("model", "messages", "max_tokens"),
        description="Anthropic's Messages request; a field not listed here is refused by name",
    ),
    "AnthropicCountTokensRequest": obj(
        _PROMPT, ("model", "messages"), description="Anthropic's count_tokens request"
    ),
    "AnthropicMessage": obj(
        {
            "id": string(),
            "type": string(enum=["message"]),
            "role": string(enum=["assistant"]),
            "model": string(),
            "content": array(_BLOCK),
            "stop_reason": nullable(
                string(enum=["end_turn", "max_tokens", "stop_sequence", "tool_use"])
            ),
            "stop_sequence": nullable(string()),
            "usage": obj({"input_tokens": integer(), "output_tokens": integer()}),
        },
        ("id", "type", "role", "content", "stop_reason", "usage"),
        description="Anthropic's message (streamed: its events)",
    ),
    "AnthropicTokenCount": obj({"input_tokens": integer()}, ("input_tokens",)),
    "AnthropicError": obj(
        {
            "type": string(enum=["error"]),
            "error": obj({"type": string(), "message": string()}, ("type", "message")),
        },
        ("type", "error"),
        description="An error in Anthropic's shape",
    ),
}
