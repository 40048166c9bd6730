"""The component schemas of OpenAI's Responses API (/v1/responses): what the balancer reads
and answers (app/server/api_responses*.py)."""

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

_ITEM = obj(
    {
        "type": string(
            "message (the default), function_call, function_call_output or reasoning (not read)",
            enum=["message", "function_call", "function_call_output", "reasoning"],
        ),
        "role": string(enum=["user", "assistant", "system", "developer"]),
        "content": one_of(
            string(), array(free_object("input_text, output_text or input_image (image_url)"))
        ),
        "call_id": string(),
        "name": string(),
        "namespace": string(),
        "arguments": string("JSON text"),
        "output": one_of(string(), array(free_object("input_text"))),
    },
    description="An input item",
)
_OUTPUT_ITEM = obj(
    {
        "id": string(),
        "type": string(enum=["message", "function_call", "reasoning"]),
        "status": string(enum=["completed", "incomplete", "in_progress"]),
        "role": string(enum=["assistant"]),
        "content": array(free_object("output_text")),
        "call_id": string(),
        "name": string(),
        "namespace": string("The namespace tool the function belongs to"),
        "arguments": string(),
        "summary": array(free_object("summary_text: the model's reasoning")),
    },
    ("id", "type"),
    description="An output item",
)
_HINT = free_object("Accepted and not used")

RESPONSES: dict[str, Schema] = {
    "ResponsesRequest": obj(
        {
            "model": string("A model from GET /v1/models", minLength=1),
            "input": one_of(string(), array(_ITEM)),
            "instructions": nullable(string()),
            "tools": array(
                obj(
                    {
                        "type": string(
                            "function, or namespace (function tools offered as "
                            "{namespace}__{name}); hosted tools (web_search, file_search, "
                            "computer_use, code_interpreter, image_generation, local_shell, "
                            "custom, mcp) are dropped with a note in `warnings`"
                        ),
                        "name": string(),
                        "description": string(),
                        "parameters": free_object("JSON Schema of the arguments"),
                        "tools": array(free_object("A function tool")),
                    },
                    ("type",),
                )
            ),
            "tool_choice": one_of(
                string(enum=["auto", "none", "required"]),
                obj({"type": string(enum=["function"]), "name": string()}, ("type", "name")),
            ),
            "parallel_tool_calls": boolean(),
            "max_output_tokens": integer(minimum=1),
            "temperature": number(minimum=0, maximum=2),
            "top_p": number(minimum=0, maximum=1),
            "text": obj({"format": free_object("{type: text | json_object | json_schema}")}),
            "reasoning": obj({"effort": nullable(string()), "summary": nullable(string())}),
            "stream": boolean("Answer as the Responses API's server-sent events"),
            "store": boolean("Keep the response (default true) for GET and previous_response_id"),
            "previous_response_id": nullable(string()),
            "truncation": string(enum=["disabled"]),
            "metadata": _HINT,
            "include": array(string(), description="Accepted and not used"),
            "prompt_cache_key": string("Accepted and not used"),
            "client_metadata": _HINT,
        },
        ("model",),
        description="The Responses request; a field not listed here is refused by name",
    ),
    "Response": obj(
        {
            "id": string(),
            "object": string(enum=["response"]),
            "created_at": integer(),
            "status": string(enum=["completed", "incomplete", "failed", "in_progress"]),
            "incomplete_details": nullable(obj({"reason": string()})),
            "model": string(),
            "output": array(_OUTPUT_ITEM),
            "previous_response_id": nullable(string()),
            "usage": nullable(
                obj(
                    {
                        "input_tokens": integer(),
                        "output_tokens": integer(),
                        "total_tokens": integer(),
                    }
                )
            ),
            "warnings": array(string(), description="What the request asked that was dropped"),
        },
        ("id", "object", "status", "model", "output"),
        description="A response (streamed: its events)",
    ),
    "ResponseDeleted": obj(
        {"id": string(), "object": string(enum=["response"]), "deleted": boolean()},
        ("id", "deleted"),
    ),
}
