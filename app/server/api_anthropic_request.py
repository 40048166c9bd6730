"""An Anthropic Messages request as the internal Chat Completions body (errors name the field).

Blocks map as llama.cpp's server maps them: `system` becomes the first message, `text` blocks
text parts, `image` blocks `image_url` parts (base64 sources as data: URLs), an assistant's
`tool_use` blocks its `tool_calls`, a user's `tool_result` blocks `tool` messages (before the
rest of that turn, as Anthropic orders them). Fields that only carry hints are accepted and
dropped; a field we do not know is refused by name rather than silently ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from app.core.errors import BadRequest
from app.core.wire import JsonObject, JsonValue
from app.server.chat_body import (
    ChatAssistantMessage,
    ChatBody,
    ChatImagePart,
    ChatMessage,
    ChatPart,
    ChatResponseFormat,
    ChatTool,
    ChatToolCall,
    ChatToolChoice,
    ChatToolMessage,
)

# Accepted and dropped: metadata and client hints that do not change the answer.
HINTS = frozenset(
    {
        "metadata",
        "context_management",
        "service_tier",
        "container",
        "cache_control",
        "diagnostics",
        "inference_geo",
        "speed",
        "user_profile_id",
        "workspace_id",
    }
)
FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "stream",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
    }
)


@dataclass(frozen=True, slots=True)
class Asked:
    """What the answer's translation needs to know of the request."""

    model: str
    thinking: bool  # the client asked for thinking blocks
    stops: tuple[str, ...] = ()  # the client's stop_sequences


def _text_of(content: JsonValue, where: str) -> str:
    """A string, or text blocks joined (a system prompt, a tool result)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"{where} must be a string or a list of text blocks", param=where)
    texts = []
    for i, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise BadRequest(f"{where}[{i}] must be a text block", param=where)
        text = block.get("text")
        if not isinstance(text, str):
            raise BadRequest(f"{where}[{i}].text must be a string", param=where)
        texts.append(text)
    return "\n".join(texts)


def _image(block: JsonObject, where: str) -> ChatImagePart:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        media, data = source.get("media_type"), source.get("data")
        if isinstance(media, str) and isinstance(data, str):
            return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if isinstance(source, dict) and source.get("type") == "url":
        url = source.get("url")
        if isinstance(url, str):
            return {"type": "image_url", "image_url": {"url": url}}
    raise BadRequest(
        f"{where}.source must be a base64 source (media_type, data) or a url source", param=where
    )


def _tool_result(block: JsonObject, where: str) -> ChatToolMessage:
    ident = block.get("tool_use_id")
    if not isinstance(ident, str) or not ident:
        raise BadRequest(f"{where}.tool_use_id must be a string", param=where)
    content = block.get("content", "")
    if isinstance(content, list):  # text blocks (images in a result are not read)
        content = [b for b in content if isinstance(b, dict) and b.get("type") == "text"]
    text = _text_of(content, f"{where}.content")
    if block.get("is_error") is True:
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": ident, "content": text}


def _tool_call(block: JsonObject, where: str) -> ChatToolCall:
    ident, name, args = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(ident, str) or not isinstance(name, str) or not isinstance(args, dict):
        raise BadRequest(f"{where} needs an id, a name and an input object", param=where)
    return {
        "id": ident,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }


def _turn(message: JsonValue, i: int) -> list[ChatMessage]:
    """One Anthropic message as one or more chat messages."""
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise BadRequest(f"{where} must be an object", param="messages")
    role = message.get("role")
    if role == "system":  # a system message among the turns (Claude Code sends them)
        return [{"role": "system", "content": _text_of(message.get("content"), where)}]
    if role not in ("user", "assistant"):
        raise BadRequest(f"{where}.role must be 'user', 'assistant' or 'system'", param="messages")
    content = message.get("content")
    if isinstance(content, str):
        if role == "user":
            return [{"role": "user", "content": content}]
        return [{"role": "assistant", "content": content}]
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content must be a string or a list of blocks", param="messages")
    parts: list[ChatPart] = []
    texts: list[str] = []
    calls: list[ChatToolCall] = []
    results: list[ChatMessage] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(block, dict) or not isinstance(kind, str):
            raise BadRequest(f"{at} must be a block with a 'type'", param="messages")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"{at}.text must be a string", param="messages")
            parts.append({"type": "text", "text": text})
            texts.append(text)
        elif kind == "image" and role == "user":
            parts.append(_image(block, at))
        elif kind == "tool_use" and role == "assistant":
            calls.append(_tool_call(block, at))
        elif kind == "tool_result" and role == "user":
            results.append(_tool_result(block, at))
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue  # past thinking is not shown to the model again (as Anthropic does)
        else:
            raise BadRequest(
                f"{at}: a '{kind}' block is not supported in a {role} message", param="messages"
            )
    turns = results
    if role == "assistant":
        text = "".join(texts)
        turn: ChatAssistantMessage = {"role": "assistant", "content": text or None}
        if calls:
            turn["tool_calls"] = calls
        if text or calls:
            turns.append(turn)
    elif parts:
        plain = len(texts) == len(parts)
        turns.append({"role": "user", "content": "\n".join(texts) if plain else parts})
    return turns


def _tools(value: JsonValue) -> list[ChatTool]:
    if not isinstance(value, list):
        raise BadRequest("'tools' must be a list", param="tools")
    out: list[ChatTool] = []
    for i, tool in enumerate(value):
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not isinstance(name, str):
            raise BadRequest(f"tools[{i}] must be an object with a name", param="tools")
        if tool.get("type") not in (None, "custom"):
            continue  # a tool Anthropic hosts (web search, code execution): we cannot run it
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise BadRequest(f"tools[{i}].input_schema must be a JSON schema", param="tools")
        tool_out: ChatTool = {"type": "function", "function": {"name": name, "parameters": schema}}
        description = tool.get("description")
        if isinstance(description, str):
            tool_out["function"]["description"] = description
        out.append(tool_out)
    return out


def _tool_choice(value: JsonValue) -> ChatToolChoice:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    name = value.get("name") if isinstance(value, dict) else None
    if kind == "tool" and isinstance(name, str):
        return {"type": "function", "function": {"name": name}}
    raise BadRequest(
        "'tool_choice' must be {type: auto|any|none} or {type: tool, name}", param="tool_choice"
    )


def _thinking(value: JsonValue) -> bool:
    if value is None:
        return False
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("enabled", "disabled", "adaptive"):
        raise BadRequest("'thinking.type' must be 'enabled' or 'disabled'", param="thinking")
    return bool(kind != "disabled")


def _output_format(value: JsonValue) -> ChatResponseFormat | None:
    """`output_config.format` (a JSON schema) as `response_format`; `effort` is a hint."""
    if not isinstance(value, dict):
        raise BadRequest("'output_config' must be an object", param="output_config")
    form = value.get("format")
    if form is None:
        return None
    if not isinstance(form, dict) or form.get("type") != "json_schema":
        raise BadRequest("'output_config.format.type' must be 'json_schema'", param="output_config")
    schema = form.get("schema")
    if not isinstance(schema, dict):
        raise BadRequest(
            "'output_config.format.schema' must be a JSON schema", param="output_config"
        )
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def to_chat(body: JsonObject) -> tuple[ChatBody, Asked]:
    """The chat body for an Anthropic Messages body, and what its answer needs to know."""
    unknown = sorted(k for k in body if k not in FIELDS and k not in HINTS)
    if unknown:
        raise BadRequest(f"'{unknown[0]}' is not supported here", param=unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required: the name of a model from /v1/models", param="model")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest("'max_tokens' is required: a positive integer", param="max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list", param="messages")
    chat: list[ChatMessage] = []
    if body.get("system") is not None:
        chat.append({"role": "system", "content": _text_of(body["system"], "system")})
    for i, message in enumerate(messages):
        chat.extend(_turn(message, i))
    thinking = _thinking(body.get("thinking"))
    stream = body.get("stream") is True
    out: ChatBody = {
        "model": model,
        "messages": chat,
        "max_tokens": max_tokens,
        # Models whose template switches thinking (Qwen3's) think only when asked to.
        "chat_template_kwargs": {"enable_thinking": thinking},
    }
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadRequest("'stop_sequences' must be a list of strings", param="stop_sequences")
        strings = [s for s in stops if isinstance(s, str)]  # all of them
        if strings:
            out["stop"] = strings
    # The node checks the sampling values' ranges and names the field.
    if body.get("temperature") is not None:
        out["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if body.get("top_k") is not None:
        out["top_k"] = body["top_k"]
    if body.get("output_config") is not None:
        form = _output_format(body["output_config"])
        if form is not None:
            out["response_format"] = form
    if body.get("tools"):
        tools = _tools(body["tools"])
        if tools:
            out["tools"] = tools
    if body.get("tool_choice") is not None:
        choice = _tool_choice(body["tool_choice"])
        if "tools" in out:
            out["tool_choice"] = choice
    return out, Asked(model, thinking, tuple(out.get("stop", [])))
