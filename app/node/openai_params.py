"""Validate OpenAI request bodies and map them to engine parameters (errors name the field)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from app.core.errors import BadRequest
from app.core.wire import JsonObject, JsonValue
from app.node import reasoning
from app.node.engine.sampler import JSON_GRAMMAR, MAX_TOP_LOGPROBS
from app.node.engine.types import Sampling
from app.node.engine.vision import MARKER, MAX_IMAGES
from app.node.json_grammar import schema_grammar
from app.node.openai_fields import refuse_unsupported

MAX_STOPS = 4
MAX_CHOICES = 8  # `n`: choices run as sequences side by side, each holding a slot
# Names the chat template renderer sets itself: a request's template kwargs may not replace them.
_TEMPLATE_NAMES = frozenset(
    {
        "messages",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "bos_token",
        "eos_token",
        "add_generation_prompt",
        "raise_exception",
        "strftime_now",
    }
)


@dataclass(frozen=True)
class ChatRequest:
    """A validated /v1/chat/completions body."""

    model: str
    messages: list[JsonObject]  # open: roles, content, tool calls, names as clients send them
    sampling: Sampling
    stream: bool
    include_usage: bool
    tools: list[JsonValue] | None  # checked entry by entry in `tools.plan`
    tool_choice: JsonValue
    reasoning_format: str = "auto"  # "none" keeps a model's reasoning inline in content
    template_kwargs: JsonObject = field(default_factory=dict)  # extra chat template variables
    images: tuple[bytes, ...] = ()  # decoded image parts; each stands at a MARKER in the text
    n: int = 1  # choices
    parallel_tool_calls: bool | None = None  # None: not said


@dataclass(frozen=True)
class CompletionRequest:
    """A validated /v1/completions body."""

    model: str
    prompt: str
    sampling: Sampling
    stream: bool
    include_usage: bool
    echo: bool
    n: int = 1  # choices


def _number(body: Mapping[str, JsonValue], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"'{key}' must be a number", param=key)
    if not lo <= value <= hi:
        raise BadRequest(f"'{key}' must be between {lo:g} and {hi:g}", param=key)
    return float(value)


def _integer(body: Mapping[str, JsonValue], key: str, lo: int, hi: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{key}' must be an integer", param=key)
    if not lo <= value <= hi:
        raise BadRequest(f"'{key}' must be between {lo} and {hi}", param=key)
    return value


def _flag(body: Mapping[str, JsonValue], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"'{key}' must be true or false", param=key)
    return value


def model_name(body: Mapping[str, JsonValue]) -> str:
    """The `model` field, which every inference body must carry."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' is required: the name of a model from /v1/models", param="model")
    return model.strip()


def sampling(body: Mapping[str, JsonValue]) -> Sampling:
    """Sampling parameters common to chat and completions."""
    max_tokens = _integer(body, "max_completion_tokens", 1, 1 << 24)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1, 1 << 24)
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    else:
        strings = [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else None
        if strings is None or not isinstance(stop, list) or len(strings) != len(stop):
            raise BadRequest("'stop' must be a string or a list of strings", param="stop")
        if len(strings) > MAX_STOPS:
            raise BadRequest(f"'stop' takes at most {MAX_STOPS} sequences", param="stop")
        stops = tuple(strings)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest("'seed' must be an integer", param="seed")
    bias_in = body.get("logit_bias") or {}
    if not isinstance(bias_in, dict):
        raise BadRequest("'logit_bias' must map token ids to numbers", param="logit_bias")
    try:
        bias = {int(k): _bias(v) for k, v in bias_in.items()}
    except (TypeError, ValueError) as exc:
        raise BadRequest("'logit_bias' must map token ids to numbers", param="logit_bias") from exc
    grammar, schema = _response_format(body.get("response_format"))
    return Sampling(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        top_k=int(_number(body, "top_k", 40, 0, 1 << 20)),
        min_p=_number(body, "min_p", 0.05, 0.0, 1.0),
        seed=seed & 0xFFFFFFFF if seed is not None else None,
        stop=stops,
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        repeat_penalty=_number(body, "repeat_penalty", 1.0, 0.0, 10.0),
        grammar=grammar,
        json_schema=schema,
        logit_bias=bias,
    )


def _bias(value: JsonValue) -> float:
    """A logit bias as float() reads it (a number, or a numeric string); TypeError else."""
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError("not a number")


def _response_format(value: object) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise BadRequest(
            "'response_format' must be an object with a 'type'", param="response_format"
        )
    kind = value["type"]
    if kind == "text":
        return None, None
    if kind == "json_object":
        return JSON_GRAMMAR, None
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise BadRequest(
                "'response_format.json_schema.schema' must be a JSON schema object",
                param="response_format",
            )
        # built here, so a schema it cannot honour is a 400 before any stream starts
        return schema_grammar(schema), json.dumps(schema)
    raise BadRequest(
        f"'response_format.type' {kind!r} is not one of text, json_object, json_schema",
        param="response_format",
    )


def _stream_options(body: Mapping[str, JsonValue]) -> tuple[bool, bool]:
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is None:
        return stream, False
    if not isinstance(options, dict):
        raise BadRequest("'stream_options' must be an object", param="stream_options")
    return stream, bool(options.get("include_usage"))


def _message_text(content: object, index: int, images: list[bytes]) -> str | None:
    """A message's text; each image part becomes MARKER there, its bytes added to `images`."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict):
                raise BadRequest(
                    f"messages[{index}].content parts must be objects", param="messages"
                )
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") in {"image_url", "input_image"}:
                images.append(_image(part, index))
                texts.append(MARKER)
            elif part.get("type") == "input_audio":
                raise BadRequest(
                    "this node does not accept audio; send text or images",
                    param="messages",
                    code="unsupported_content",
                )
            else:
                raise BadRequest(
                    f"messages[{index}] has a content part of an unknown type", param="messages"
                )
        return "\n".join(texts)
    raise BadRequest(
        f"messages[{index}].content must be a string or a list of parts", param="messages"
    )


def _image(part: Mapping[str, JsonValue], index: int) -> bytes:
    """The bytes of an image part (`image_url` as an object or a string, a data: URL)."""
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise BadRequest(f"messages[{index}] has an image part without a URL", param="messages")
    head, comma, data = url.partition(",")
    if not (url.startswith("data:") and comma and head.endswith(";base64")):
        raise BadRequest(
            f"messages[{index}] has an image URL the node cannot use: send the image inline "
            "as a data: URL (data:image/png;base64,...)",
            param="messages",
            code="unsupported_image_url",
        )
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(
            f"messages[{index}] has an image whose base64 data is broken", param="messages"
        ) from exc


def chat_request(body: Mapping[str, JsonValue]) -> ChatRequest:
    """Validate a chat completion body."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list", param="messages")
    clean: list[JsonObject] = []
    images: list[bytes] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{i}] must be an object", param="messages")
        role = message.get("role")
        if role not in {"system", "developer", "user", "assistant", "tool", "function"}:
            raise BadRequest(f"messages[{i}].role {role!r} is not a chat role", param="messages")
        item = dict(message)
        item["role"] = "system" if role == "developer" else role
        item["content"] = _message_text(message.get("content"), i, images)
        clean.append(item)
    if len(images) > MAX_IMAGES:
        raise BadRequest(f"a request takes at most {MAX_IMAGES} images", param="messages")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise BadRequest("'tools' must be a list", param="tools")
    stream, include_usage = _stream_options(body)
    refuse_unsupported(body, chat=True)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise BadRequest("'parallel_tool_calls' must be true or false", param="parallel_tool_calls")
    return ChatRequest(
        model_name(body),
        clean,
        replace(sampling(body), logprobs=_chat_logprobs(body)),
        stream,
        include_usage,
        tools or None,
        body.get("tool_choice"),
        _reasoning_format(body),
        _template_kwargs(body),
        images=tuple(images),
        n=_choices(body),
        parallel_tool_calls=parallel,
    )


def _choices(body: Mapping[str, JsonValue]) -> int:
    """`n`: how many choices to generate."""
    return _integer(body, "n", 1, MAX_CHOICES) or 1


def _chat_logprobs(body: Mapping[str, JsonValue]) -> int | None:
    """`logprobs` + `top_logprobs` of a chat body: None, or how many alternatives per token."""
    top = _integer(body, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    if not _flag(body, "logprobs"):
        if top:
            raise BadRequest("'top_logprobs' needs 'logprobs': true", param="top_logprobs")
        return None
    return top or 0


def _reasoning_format(body: Mapping[str, JsonValue]) -> str:
    """`reasoning_format` as llama.cpp's server takes it (default: split the reasoning out)."""
    value = body.get("reasoning_format")
    if value is None:
        return "auto"
    if not isinstance(value, str) or value not in reasoning.FORMATS:
        raise BadRequest(
            f"'reasoning_format' must be one of {', '.join(reasoning.FORMATS)}",
            param="reasoning_format",
        )
    return value


def _template_kwargs(body: Mapping[str, JsonValue]) -> JsonObject:
    """`chat_template_kwargs`: extra variables for the model's chat template (Qwen3's
    `enable_thinking`), as llama.cpp's server takes them."""
    value = body.get("chat_template_kwargs")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(
            "'chat_template_kwargs' must be an object of template variables",
            param="chat_template_kwargs",
        )
    taken = sorted(k for k in value if k in _TEMPLATE_NAMES)
    if taken:
        raise BadRequest(
            f"'chat_template_kwargs' cannot set {', '.join(taken)}: the node sets it",
            param="chat_template_kwargs",
        )
    return dict(value)


def completion_request(body: Mapping[str, JsonValue]) -> CompletionRequest:
    """Validate a text completion body."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string", param="prompt")
    stream, include_usage = _stream_options(body)
    refuse_unsupported(body, chat=False)
    top = _integer(body, "logprobs", 0, MAX_TOP_LOGPROBS)
    echo = _flag(body, "echo")
    if echo and top is not None:
        raise BadRequest(
            "'logprobs' with 'echo' (the prompt's logprobs) is not supported", param="logprobs"
        )
    return CompletionRequest(
        model_name(body),
        prompt,
        replace(sampling(body), logprobs=top),
        stream,
        include_usage,
        echo,
        n=_choices(body),
    )
