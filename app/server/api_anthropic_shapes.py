"""Anthropic's Messages API shapes that we build, declared once (blocks, the message, stream
events, errors), and the small readers of a node's Chat Completions fields they are made of.
What the node sends is JSON we did not write: read through isinstance checks, never trusted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Literal, TypeAlias, TypedDict

from app.core.wire import JsonObject, JsonValue
from app.server.api_anthropic_request import Asked

_STOP_REASONS = {"length": "max_tokens", "tool_calls": "tool_use"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


# -- content blocks -------------------------------------------------------------------------
class TextBlock(TypedDict):
    """Text the model wrote."""

    type: Literal["text"]
    text: str


class ThinkingBlock(TypedDict):
    """The model's reasoning (no signature: nothing to verify it against)."""

    type: Literal["thinking"]
    thinking: str
    signature: str


class ToolUseBlock(TypedDict):
    """A tool call: its id, the tool's name, and the input object."""

    type: Literal["tool_use"]
    id: str
    name: str
    input: JsonObject


Block: TypeAlias = TextBlock | ThinkingBlock | ToolUseBlock


class Usage(TypedDict):
    """Tokens read and written."""

    input_tokens: int
    output_tokens: int


class StopInfo(TypedDict):
    """Why the answer ended, and the stop sequence that ended it."""

    stop_reason: str | None
    stop_sequence: str | None


class MessageJson(TypedDict):
    """A whole answer (also the empty one that opens a stream)."""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[Block]
    stop_reason: str | None
    stop_sequence: str | None
    usage: Usage


# -- stream events ----------------------------------------------------------------------------
class TextDelta(TypedDict):
    """More text of a text block."""

    type: Literal["text_delta"]
    text: str


class ThinkingDelta(TypedDict):
    """More reasoning of a thinking block."""

    type: Literal["thinking_delta"]
    thinking: str


class InputJsonDelta(TypedDict):
    """More of a tool_use block's input, as JSON text."""

    type: Literal["input_json_delta"]
    partial_json: str


Delta: TypeAlias = TextDelta | ThinkingDelta | InputJsonDelta


class MessageStart(TypedDict):
    """The stream's first event: the message, empty."""

    type: Literal["message_start"]
    message: MessageJson


class Ping(TypedDict):
    """A keep-alive."""

    type: Literal["ping"]


class BlockStart(TypedDict):
    """A content block opens."""

    type: Literal["content_block_start"]
    index: int
    content_block: Block


class BlockDelta(TypedDict):
    """More of the open block."""

    type: Literal["content_block_delta"]
    index: int
    delta: Delta


class BlockStop(TypedDict):
    """The open block is complete."""

    type: Literal["content_block_stop"]
    index: int


class MessageDelta(TypedDict):
    """The end of the answer: why it stopped, and the usage."""

    type: Literal["message_delta"]
    delta: StopInfo
    usage: Usage


class MessageStop(TypedDict):
    """The stream's last event."""

    type: Literal["message_stop"]


class ErrorDetail(TypedDict):
    """What went wrong, in Anthropic's terms."""

    type: str
    message: str


class ErrorJson(TypedDict):
    """An error answer's body, or the `error` event that ends a stream."""

    type: Literal["error"]
    error: ErrorDetail


Event: TypeAlias = (
    MessageStart
    | Ping
    | BlockStart
    | BlockDelta
    | BlockStop
    | MessageDelta
    | MessageStop
    | ErrorJson
)


def sse(event: Event) -> bytes:
    """One event on the wire: its type as the SSE event name, itself as the data."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


# -- errors -----------------------------------------------------------------------------------
def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, body: Mapping[str, object]) -> ErrorJson:
    """An OpenAI-shaped error body (`{"error": {message, ...}}`) in Anthropic's shape."""
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return {
        "type": "error",
        "error": {"type": error_type(status), "message": str(message or "error")},
    }


def error_event(status: int, message: str) -> bytes:
    """An `error` event, which ends a stream."""
    return sse({"type": "error", "error": {"type": error_type(status), "message": message}})


# -- reading the node's answer ----------------------------------------------------------------
def stop_info(asked: Asked, finish: JsonValue, stop: JsonValue) -> StopInfo:
    """`stop_reason` and `stop_sequence` from the node's finish reason and the stop string it
    names (`choices[].stop_reason`, as vLLM and our node name it)."""
    if finish == "stop" and isinstance(stop, str) and stop in asked.stops:
        return {"stop_reason": "stop_sequence", "stop_sequence": stop}
    reason = _STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    return {"stop_reason": reason, "stop_sequence": None}


def message_id() -> str:
    """A new message id."""
    return f"msg_{uuid.uuid4().hex[:24]}"


def tool_use_id() -> str:
    """A tool call id, for a node that gave none."""
    return f"toolu_{uuid.uuid4().hex[:24]}"


def tool_input(arguments: JsonValue) -> JsonObject:
    """A tool call's arguments (JSON text) as the input object a tool_use block carries."""
    try:
        value = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def usage(value: JsonValue) -> Usage:
    """The node's usage block (prompt and completion tokens) as Anthropic's."""
    fields = value if isinstance(value, dict) else {}
    prompt, completion = fields.get("prompt_tokens"), fields.get("completion_tokens")
    return {
        "input_tokens": prompt if isinstance(prompt, int) else 0,
        "output_tokens": completion if isinstance(completion, int) else 0,
    }


def objects(value: JsonValue) -> list[JsonObject]:
    """The objects of a JSON list (anything else in it skipped); [] for a non-list."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def as_object(value: JsonValue) -> JsonObject:
    """A JSON object, or {} for anything else."""
    return value if isinstance(value, dict) else {}
