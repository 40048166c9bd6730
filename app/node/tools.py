"""OpenAI tool calling on any GGUF model.

`tool_choice: "required"` or a named function constrains the output with a JSON-schema
grammar, so the answer *is* a call. With `"auto"` the tools go to the model's own chat
template and the answer is read for the call formats that templates teach models:
`<tool_call>{...}</tool_call>` (Qwen, Hermes), `[TOOL_CALLS][...]` (Mistral) and a bare
`{"name": ..., "arguments"|"parameters": ...}` object (Llama 3.x).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import TypedDict

from app.core.errors import BadRequest
from app.core.wire import JsonObject, JsonValue
from app.node.json_grammar import call_grammar, call_prefix

MARKERS = ("<tool_call>", "[TOOL_CALLS]", "{")
_DECODER = json.JSONDecoder()
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


class FunctionCall(TypedDict):
    """The function a tool call names, with its arguments as JSON text."""

    name: str
    arguments: str


class ToolCall(TypedDict):
    """One tool call in OpenAI's shape."""

    id: str
    type: str
    function: FunctionCall


@dataclass(frozen=True)
class ToolPlan:
    """What to do with a request's tools."""

    template_tools: list[JsonObject] | None  # handed to the chat template
    schema: str | None  # a JSON schema that forces a call, when the call is required
    expect_calls: bool  # read the answer for calls
    grammar: str | None = None  # GBNF forcing a call to `forced` (built from their schemas)
    forced: tuple[str, ...] = ()  # the functions a forced call may name
    several: bool = True  # an answer may hold several calls (`parallel_tool_calls`)

    def calls(self, text: str) -> list[ToolCall] | None:
        """The tool calls in an answer (None: it is text); a forced call is one even when
        cut short; only the first when the request asked for no parallel calls."""
        if self.forced and text:
            found: list[ToolCall] | None = forced_calls(text, self.forced, self.several)
        else:
            found = parse_calls(text)
        return found if self.several or not found else found[:1]


def plan(
    tools: list[JsonValue] | None, choice: JsonValue, parallel: bool | None = None
) -> ToolPlan:
    """Validate `tools` / `tool_choice` and decide how to honour them. `parallel`
    (`parallel_tool_calls`): False, at most one call; else a model that writes several (in
    its template's format) gives several. A forced call's grammar allows several only when
    asked with True: as llama.cpp's server, since a model forced to call keeps calling."""
    if not tools:
        if choice not in (None, "none", "auto"):
            raise BadRequest("'tool_choice' needs 'tools'", param="tool_choice")
        return ToolPlan(None, None, False)
    functions: dict[str, JsonObject] = {}
    checked: list[JsonObject] = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
            raise BadRequest(
                f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}", param="tools"
            )
        checked.append(tool)
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"tools[{i}].function.name is required", param="tools")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise BadRequest(f"tools[{i}].function.parameters must be a JSON schema", param="tools")
        functions[name] = params
    if choice in (None, "auto"):
        return ToolPlan(checked, None, True, several=parallel is not False)
    if choice == "none":
        return ToolPlan(None, None, False)
    if choice == "required":
        return _forced(checked, functions, several=parallel is True)
    chosen = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(chosen, dict):
        name = chosen.get("name")
        if not isinstance(name, str) or name not in functions:
            raise BadRequest(
                f"'tool_choice' names '{name}', which is not in 'tools'", param="tool_choice"
            )
        return _forced(checked, {name: functions[name]})
    raise BadRequest(
        "'tool_choice' must be 'none', 'auto', 'required' or a function", param="tool_choice"
    )


def _forced(
    checked: list[JsonObject], functions: dict[str, JsonObject], several: bool = False
) -> ToolPlan:
    """A plan whose grammar makes the answer a call to one of `functions` (or several calls,
    one a line, when `several`)."""
    grammar = call_grammar(dict(functions))  # a schema it cannot honour is a 400 here, early
    if several:
        grammar = _repeated(grammar)
    return ToolPlan(checked, _schema(functions), True, grammar, tuple(functions), several)


def _repeated(grammar: str) -> str:
    """A GBNF whose root is one or more of `grammar`'s root, a newline apart."""
    name = "call"
    while re.search(rf"^{name}\b", grammar, re.MULTILINE):
        name += "-x"
    body = re.sub(r"^root ::=", f"{name} ::=", grammar, count=1, flags=re.MULTILINE)
    return f'root ::= {name} ( "\\n" {name} )*\n' + body


def forced_calls(text: str, names: tuple[str, ...], several: bool = False) -> list[ToolCall]:
    """The calls in a forced answer (see `json_grammar.call_grammar`): one, or (`several`)
    each JSON object in turn, the last whole or cut short by `max_tokens`."""
    if not several:
        return _forced_call(text, names)
    calls: list[ToolCall] = []
    rest = text.lstrip()
    while rest:
        try:
            _, end = _DECODER.raw_decode(rest)
        except ValueError:
            return calls + _forced_call(rest, names)  # the last one, cut short
        calls += _forced_call(rest[:end], names)
        rest = rest[end:].lstrip()
    return calls


def _forced_call(text: str, names: tuple[str, ...]) -> list[ToolCall]:
    """The call in a forced answer: whole, or cut short by `max_tokens`, when its arguments
    are the JSON text written so far."""
    whole = parse_calls(text)
    if whole:
        return whole
    name = next((n for n in names if text.startswith(call_prefix(n))), None)
    if name is None:  # cut inside the name: the one it was becoming
        name = next((n for n in names if call_prefix(n).startswith(text)), names[0])
    arguments = text[len(call_prefix(name)) :] if text.startswith(call_prefix(name)) else ""
    call: ToolCall = {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    return [call]


def _schema(functions: dict[str, JsonObject]) -> str:
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": name}, "arguments": params},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for name, params in functions.items()
    ]
    return json.dumps(options[0] if len(options) == 1 else {"oneOf": options})


def might_be_call(text: str) -> bool:
    """True while `text` is empty or could still grow into a tool call."""
    head = text.lstrip()
    return not head or any(head.startswith(m) or m.startswith(head) for m in MARKERS)


def parse_calls(text: str) -> list[ToolCall] | None:
    """The tool calls in a model's answer, in OpenAI's shape, or None."""
    head = text.strip()
    found: list[JsonValue] = []
    if head.startswith("<tool_call>"):
        found = [_json(m) for m in _TAGGED.findall(head)]
    elif head.startswith("[TOOL_CALLS]"):
        value = _json(head[len("[TOOL_CALLS]") :])
        found = value if isinstance(value, list) else [value]
    elif head.startswith("{"):
        found = [_json(head)]
    calls: list[ToolCall] = []
    for item in found:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not isinstance(name, str):
            return None
        args = item.get("arguments", item.get("parameters", {}))
        calls.append(
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return calls or None


def _json(text: str) -> JsonValue:
    try:
        value: JsonValue = json.loads(text)
        return value
    except ValueError:
        return None
