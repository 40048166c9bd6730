"""An OpenAI Responses request as the internal Chat Completions body (errors name the field).

Items map as llama.cpp's server maps them: `instructions` and system/developer messages become
system messages, a message's `input_text`/`output_text` parts text, `input_image` parts
`image_url` parts, `function_call` items an assistant's `tool_calls`, `function_call_output`
items `tool` messages; `reasoning` items are context the model does not read again. Function
tools grouped in a `namespace` tool are offered as `{namespace}__{name}` and named back in the
answer. Hosted tools we cannot run are dropped with a note; hints are accepted and dropped;
any other field that would change the answer is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.core.errors import BadRequest

FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "text",
        "reasoning",
        "stream",
        "store",
        "previous_response_id",
        "truncation",
        "background",
    }
)
# Accepted and dropped: metadata and client hints that do not change the answer.
HINTS = frozenset(
    {
        "metadata",
        "user",
        "include",
        "prompt_cache_key",
        "prompt_cache_retention",
        "client_metadata",
        "service_tier",
        "safety_identifier",
        "stream_options",
    }
)
# Tools OpenAI runs on its side: we cannot, so they are dropped (with a note), not refused.
HOSTED_TOOLS = (
    "web_search",
    "file_search",
    "computer",
    "code_interpreter",
    "image_generation",
    "local_shell",
    "custom",
    "mcp",
    "shell",
    "apply_patch",
    "tool_search",
)
SEPARATOR = "__"  # between a namespace and its function's name, as offered to the model


@dataclass(frozen=True, slots=True)
class Asked:
    """What the answer's translation needs to know of the request."""

    model: str
    echo: dict[str, Any]  # the request's settings, which the response object repeats
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # flat → (namespace, name)
    notes: tuple[str, ...] = ()  # what was dropped (hosted tools), said in the response
    context: list[dict[str, Any]] = field(default_factory=list)  # the conversation, for store
    store: bool = True


def _text(content: object, where: str, kinds: tuple[str, ...]) -> str:
    """A string, or the text of parts of the given kinds joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"{where} must be a string or a list of parts", param="input")
    texts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds or not isinstance(part.get("text"), str):
            raise BadRequest(
                f"{where}[{i}] must be a part of type {' or '.join(kinds)}", param="input"
            )
        texts.append(part["text"])
    return "\n".join(texts)


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        raise BadRequest(
            f"{where}.image_url must be a URL or a data: URL (file ids are not supported)",
            param="input",
        )
    image: dict[str, Any] = {"url": url}
    if isinstance(part.get("detail"), str):
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _user_content(content: object, where: str) -> object:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"{where} must be a string or a list of parts", param="input")
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and isinstance(part, dict):
            parts.append(_image(part, f"{where}[{i}]"))
        else:
            raise BadRequest(
                f"{where}[{i}]: a part of type '{kind}' is not supported here", param="input"
            )
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _call(item: dict[str, Any], where: str, names: dict[str, tuple[str, str]]) -> dict[str, Any]:
    ident, name, args = item.get("call_id"), item.get("name"), item.get("arguments", "{}")
    if not isinstance(ident, str) or not isinstance(name, str) or not isinstance(args, str):
        raise BadRequest(
            f"{where} needs a call_id, a name and arguments (a JSON string)", param="input"
        )
    space = item.get("namespace")
    if isinstance(space, str) and space:
        name = f"{space}{SEPARATOR}{name}"
    return {"id": ident, "type": "function", "function": {"name": name, "arguments": args}}


def _output_text(output: object, where: str) -> str:
    if isinstance(output, list):  # text parts (images and files in a result are not read)
        output = [p for p in output if isinstance(p, dict) and p.get("type") == "input_text"]
    return _text(output, f"{where}.output", ("input_text",))


def _messages(items: object, names: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """The chat messages for `input`: a string, or a list of items."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise BadRequest("'input' must be a string or a list of items", param="input")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object", param="input")
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            call = _call(item, where, names)
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":  # calls of one turn together
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            ident = item.get("call_id")
            if not isinstance(ident, str):
                raise BadRequest(f"{where}.call_id must be a string", param="input")
            text = _output_text(item.get("output", ""), where)
            out.append({"role": "tool", "tool_call_id": ident, "content": text})
        elif kind == "reasoning":
            continue  # past reasoning is not shown to the model again
        else:
            raise BadRequest(f"{where}: an item of type '{kind}' is not supported", param="input")
    return out


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role, content = item.get("role"), item.get("content")
    if role in ("system", "developer"):
        return {"role": "system", "content": _text(content, f"{where}.content", ("input_text",))}
    if role == "assistant":
        text = _text(content, f"{where}.content", ("output_text", "refusal", "input_text"))
        return {"role": "assistant", "content": text}
    if role == "user":
        return {"role": "user", "content": _user_content(content, f"{where}.content")}
    raise BadRequest(f"{where}.role must be user, assistant, system or developer", param="input")


def _function(tool: dict[str, Any], where: str, name: str) -> dict[str, Any]:
    parameters = tool.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise BadRequest(f"{where}.parameters must be a JSON schema", param="tools")
    function: dict[str, Any] = {"name": name, "parameters": parameters}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tools(value: object, names: dict[str, tuple[str, str]], notes: list[str]) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequest("'tools' must be a list", param="tools")
    out = []
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not isinstance(kind, str):
            raise BadRequest(f"{where} must be an object with a 'type'", param="tools")
        if kind == "function":
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                raise BadRequest(f"{where}.name must be a string", param="tools")
            out.append(_function(tool, where, tool["name"]))
        elif kind == "namespace":
            space, inner = tool.get("name"), tool.get("tools")
            if not isinstance(space, str) or not space or not isinstance(inner, list):
                raise BadRequest(f"{where} needs a name and a list of tools", param="tools")
            for j, member in enumerate(inner):
                at = f"{where}.tools[{j}]"
                if not isinstance(member, dict) or member.get("type") != "function":
                    notes.append(f"{at}: only function tools are offered from a namespace")
                    continue
                if not isinstance(member.get("name"), str) or not member["name"]:
                    raise BadRequest(f"{at}.name must be a string", param="tools")
                flat = f"{space}{SEPARATOR}{member['name']}"
                names[flat] = (space, member["name"])
                out.append(_function(member, at, flat))
        elif kind.startswith(HOSTED_TOOLS):
            notes.append(
                f"the tool '{kind}' runs on OpenAI's side and is not available here; "
                "it was not offered to the model"
            )
        else:
            raise BadRequest(f"{where}: a tool of type '{kind}' is not supported", param="tools")
    return out


def _tool_choice(value: object, offered: set[str]) -> object:
    if value in ("auto", "none", "required"):
        return value
    if isinstance(value, dict) and value.get("type") == "function":
        name, space = value.get("name"), value.get("namespace")
        if isinstance(name, str) and isinstance(space, str) and space:
            name = f"{space}{SEPARATOR}{name}"
        if isinstance(name, str) and name in offered:
            return {"type": "function", "function": {"name": name}}
        raise BadRequest(
            f"'tool_choice' names the function '{name}', which is not among the tools",
            param="tool_choice",
        )
    raise BadRequest(
        "'tool_choice' must be auto, none, required or {type: function, name}", param="tool_choice"
    )


def _format(text: object) -> dict[str, Any] | None:
    """`text.format` as `response_format`; `text.verbosity` is a hint."""
    if not isinstance(text, dict):
        raise BadRequest("'text' must be an object", param="text")
    form = text.get("format")
    if form is None:
        return None
    kind = form.get("type") if isinstance(form, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema" and isinstance(form, dict):
        schema = form.get("schema")
        if not isinstance(schema, dict):
            raise BadRequest("'text.format.schema' must be a JSON schema", param="text.format")
        spec = {"name": form.get("name") or "output", "schema": schema}
        if isinstance(form.get("strict"), bool):
            spec["strict"] = form["strict"]
        return {"type": "json_schema", "json_schema": spec}
    raise BadRequest(
        "'text.format.type' must be text, json_object or json_schema", param="text.format"
    )


def _thinking(reasoning: object) -> bool | None:
    """Whether to let the model think: not said (None, the model's way) unless asked."""
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise BadRequest("'reasoning' must be an object", param="reasoning")
    return reasoning.get("effort") not in ("none",)


def _checked(body: dict[str, Any]) -> None:
    unknown = sorted(k for k in body if k not in FIELDS and k not in HINTS)
    if unknown:
        raise BadRequest(f"'{unknown[0]}' is not supported here", param=unknown[0])
    if body.get("truncation") not in (None, "disabled"):
        raise BadRequest(
            "'truncation' must be 'disabled': the context is never cut here", param="truncation"
        )
    if body.get("background") not in (None, False):
        raise BadRequest("'background' responses are not supported", param="background")
    for key in ("store", "stream", "parallel_tool_calls"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise BadRequest(f"'{key}' must be true or false", param=key)


def to_chat(
    body: dict[str, Any], previous: list[dict[str, Any]] | None = None
) -> tuple[dict[str, Any], Asked]:
    """The chat body for a Responses body (continuing the `previous` conversation's chat
    messages, if any), and what its answer needs to know."""
    _checked(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required: the name of a model from /v1/models", param="model")
    if "input" not in body and previous is None:
        raise BadRequest("'input' is required: a string or a list of items", param="input")
    names: dict[str, tuple[str, str]] = {}
    notes: list[str] = []
    tools = _tools(body["tools"], names, notes) if body.get("tools") is not None else []
    context = [*(previous or []), *_messages(body.get("input", []), names)]
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise BadRequest("'instructions' must be a string", param="instructions")
    # Instructions are the request's own: a continuation does not inherit them (as OpenAI).
    system = [{"role": "system", "content": instructions}] if instructions else []
    out: dict[str, Any] = {"model": model, "messages": _merged([*system, *context])}
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    limit = body.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise BadRequest(
                "'max_output_tokens' must be a positive integer", param="max_output_tokens"
            )
        out["max_tokens"] = limit
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]  # the node checks the ranges and names the field
    if body.get("text") is not None and (form := _format(body["text"])) is not None:
        out["response_format"] = form
    thinking = _thinking(body.get("reasoning"))
    if thinking is not None:  # models whose template switches thinking (Qwen3's)
        out["chat_template_kwargs"] = {"enable_thinking": thinking}
    if tools:
        out["tools"] = tools
        if body.get("tool_choice") is not None:
            offered = {t["function"]["name"] for t in tools}
            out["tool_choice"] = _tool_choice(body["tool_choice"], offered)
        if isinstance(body.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    echo = {
        "instructions": instructions,
        "max_output_tokens": limit,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [t for t in body.get("tools") or [] if t.get("type") in ("function", "namespace")],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "metadata": body.get("metadata") or {},
        "user": body.get("user"),
    }
    store = body.get("store") is not False
    return out, Asked(model, echo, names, tuple(notes), context, store)


def _merged(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent system messages as one (Codex sends instructions as several developer
    messages; many chat templates take one system message, first)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if out and message["role"] == "system" == out[-1]["role"]:
            out[-1] = {"role": "system", "content": f"{out[-1]['content']}\n\n{message['content']}"}
        else:
            out.append(message)
    return out
