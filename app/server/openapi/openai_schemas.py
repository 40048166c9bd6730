"""The component schemas of the OpenAI-compatible API (/v1): its main request fields, its answers.

Unknown fields are allowed everywhere: the balancer relays the body to a node unchanged.
"""

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
    ref,
    string,
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
    "n": nullable(integer(minimum=1, maximum=8)),
    "stop": _STOP,
    "seed": nullable(integer()),
    "presence_penalty": nullable(number(minimum=-2, maximum=2)),
    "frequency_penalty": nullable(number(minimum=-2, maximum=2)),
    "logit_bias": nullable(free_object()),
    "user": string(),
}

# Chat and text completions come back in the same outer shape, relayed from the node unchanged.
_RELAYED_ANSWER = obj(
    {
        "id": string(),
        "object": string(),
        "created": integer(),
        "model": string(),
        "choices": array(free_object()),
        "usage": free_object(),
    },
    description="The node's answer, relayed unchanged",
)

OPENAI: dict[str, Schema] = {
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
            "logprobs": nullable(integer(minimum=0, maximum=20)),
            "best_of": nullable(integer(minimum=1)),
        },
        ("model", "prompt"),
        description="OpenAI's text completion request; other fields pass through to the node",
    ),
    "EmbeddingRequest": obj(
        {
            "model": string("A model from GET /v1/models", minLength=1),
            "input": one_of(
                string(),
                array(string()),
                array(integer()),
                array(array(integer())),
                description="Texts, or token ids (within the model's vocabulary); each "
                "input whole within the model's context (/v1/models `context_length`), "
                "else 400 context_length_exceeded",
            ),
            "encoding_format": string(
                "base64: the little-endian float32 values", enum=["float", "base64"]
            ),
            "dimensions": integer(
                "Only the model's own size: shortening a vector is right only for models "
                "trained for it, which a GGUF does not declare (else 400)",
                minimum=1,
            ),
            "user": string(),
        },
        ("model", "input"),
        description="OpenAI's embeddings request; other fields pass through to the node",
    ),
    "ChatCompletion": _RELAYED_ANSWER,
    "Completion": _RELAYED_ANSWER,
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
    "RerankRequest": obj(
        {
            "model": string("A model from GET /v1/models with the Reranking capability"),
            "query": string(),
            "documents": array(
                one_of(string(), obj({"text": string()}, ("text",))),
                "Each scored with the query, whole within the model's context",
                minItems=1,
            ),
            "top_n": integer("How many results, best first (default: all)", minimum=1),
            "return_documents": boolean("Each result carries its document's text"),
        },
        ("model", "query", "documents"),
        description="The Jina/Cohere rerank request, as llama.cpp's server takes it",
    ),
    "RerankList": obj(
        {
            "model": string(),
            "object": string(),
            "results": array(
                obj(
                    {
                        "index": integer("The document's place in the request"),
                        "relevance_score": number("The model's score: higher is more relevant"),
                        "document": obj({"text": string()}),
                    },
                    ("index", "relevance_score"),
                ),
                "Best first",
            ),
            "usage": free_object(),
        },
        description="The node's answer, relayed unchanged",
    ),
}
