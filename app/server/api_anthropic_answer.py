"""A node's Chat Completions answer as an Anthropic Messages answer: whole, or as Anthropic's
event stream (message_start, ping, content_block_start/delta/stop per block, message_delta,
message_stop), and errors in Anthropic's shape."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from app.core.errors import UpstreamError
from app.server.api_anthropic_request import Asked
from app.server.translate import chunk_of, event_data, is_string, node_events, reasoning_of

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


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-shaped error body (`{"error": {message, ...}}`) in Anthropic's shape."""
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return {
        "type": "error",
        "error": {"type": error_type(status), "message": str(message or "error")},
    }


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def error_event(status: int, message: str) -> bytes:
    """An `error` event, which ends a stream."""
    body = {"error": {"type": error_type(status), "message": message}}
    return _sse("error", body)


def _stop(asked: Asked, finish: object, stop: object) -> dict[str, Any]:
    """`stop_reason` and `stop_sequence` from the node's finish reason and the stop string it
    names (`choices[].stop_reason`, as vLLM and our node name it)."""
    if finish == "stop" and isinstance(stop, str) and stop in asked.stops:
        return {"stop_reason": "stop_sequence", "stop_sequence": stop}
    reason = _STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    return {"stop_reason": reason, "stop_sequence": None}


def _message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def _input(arguments: object) -> dict[str, Any]:
    """A tool call's arguments (JSON text) as the input object a tool_use block carries."""
    try:
        value = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _usage(usage: object) -> dict[str, int]:
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return {
        "input_tokens": prompt if isinstance(prompt, int) else 0,
        "output_tokens": completion if isinstance(completion, int) else 0,
    }


class AnthropicAnswer:
    """The `AnswerShape` (app.server.translate) of one Messages request."""

    def __init__(self, asked: Asked) -> None:
        self.asked = asked

    def whole(self, body: bytes) -> bytes:
        """A chat.completion as a `message`; UpstreamError when the node sent something else."""
        try:
            data = json.loads(body)
            choice = data["choices"][0]
            message = choice["message"]
            return self._message(data, choice, message)
        except (ValueError, LookupError, TypeError, AttributeError):
            raise UpstreamError(
                "the node's answer is not a chat completion", code="bad_node_answer"
            ) from None

    def _message(self, data: Any, choice: Any, message: Any) -> bytes:
        content: list[dict[str, Any]] = []
        thought = reasoning_of(message)
        if self.asked.thinking and thought:
            content.append({"type": "thinking", "thinking": thought, "signature": ""})
        text = message.get("content")
        if isinstance(text, str) and text:
            content.append({"type": "text", "text": text})
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            content.append(
                {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
                    "name": function.get("name", ""),
                    "input": _input(function.get("arguments")),
                }
            )
        if not content:
            content.append({"type": "text", "text": ""})
        answer = {
            "id": _message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.asked.model,
            "content": content,
            **_stop(self.asked, choice.get("finish_reason"), choice.get("stop_reason")),
            "usage": _usage(data.get("usage")),
        }
        return json.dumps(answer).encode()

    def failed(self, message: str) -> bytes:
        """The node stopped answering mid-stream: an `error` event."""
        return error_event(500, message)

    def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The node's chat.completion.chunk events as Anthropic's events."""
        events = _Events(self.asked)
        return node_events(events, chunks, events.start(), events.end_of_stream)


class _Events:
    """The state of one translated stream: which block is open, what the node reported."""

    def __init__(self, asked: Asked) -> None:
        self.asked = asked
        self.index = -1  # the open block's index (-1: none yet)
        self.kind: str | None = None  # the open block's type
        self.calls: dict[int, int] = {}  # the node's tool call index → our block index
        self.finish: str | None = None
        self.stop: object = None  # the stop string the node says ended the answer
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}
        self.over = False
        # The node's text event around its text, and ours (see `_learn`); None until learnt.
        self._known: tuple[bytes, bytes, bytes, bytes] | None = None

    def start(self) -> bytes:
        """The opening events: message_start (an empty message) and a ping."""
        message: dict[str, Any] = {
            "id": _message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.asked.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _sse("message_start", {"message": message}) + _sse("ping", {})

    def _open(self, block: dict[str, Any]) -> list[bytes]:
        events = self._close()
        self.index += 1
        self.kind = block["type"]
        return [*events, _sse("content_block_start", {"index": self.index, "content_block": block})]

    def _close(self) -> list[bytes]:
        if self.kind is None:
            return []
        self.kind = None
        return [_sse("content_block_stop", {"index": self.index})]

    def _delta(self, delta: dict[str, Any]) -> list[bytes]:
        return [_sse("content_block_delta", {"index": self.index, "delta": delta})]

    def fast(self, chunk: bytes) -> bytes | None:
        """Our event for a buffer that is one text event of the node like those before it
        (see `_learn`), without decoding it; None for any other buffer."""
        known = self._known
        if known is None or self.kind != "text":
            return None
        head, tail, out_head, out_tail = known
        if chunk.startswith(head) and chunk.endswith(tail):
            text = chunk[len(head) : len(chunk) - len(tail)]
            if is_string(text):
                return b"".join((out_head, text, out_tail))
        return None

    def feed(self, raw: bytes) -> list[bytes]:
        """The events for one SSE event of the node (without its blank line)."""
        out = self.fast(raw + b"\n\n")
        if out is not None:
            return [out]
        data = event_data(raw)
        if data == b"[DONE]":
            return self.end()
        chunk = chunk_of(data) if data else None
        if chunk is None:
            return []
        if isinstance(chunk.get("error"), dict):  # the node failed after it began
            self.over = True
            # Out of memory is the node's 503 (try again later); anything else its failure.
            busy = chunk["error"].get("code") == "insufficient_memory"
            return [error_event(503 if busy else 500, error_body(500, chunk)["error"]["message"])]
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        events: list[bytes] = []
        for choice in chunk.get("choices") or []:
            events += self._choice(choice)
        if self._known is None and self.kind == "text":
            self._learn(raw, chunk)
        return events

    def _learn(self, raw: bytes, chunk: dict[str, Any]) -> None:
        """Learn the node's text event from this one, if it is one: the events that follow
        differ only in their text, which goes to the client as the same JSON string, never
        decoded and encoded again (the stream's hot path; a node's events are all alike:
        ours encodes each from one template)."""
        choices = chunk.get("choices")
        if chunk.keys() - {"id", "object", "created", "model", "system_fingerprint", "choices"}:
            return
        if not isinstance(choices, list) or len(choices) != 1 or choices[0].get("finish_reason"):
            return
        delta = choices[0].get("delta")
        if not isinstance(delta, dict) or delta.keys() != {"content"}:
            return
        text = json.dumps(delta["content"]).encode()
        if raw.count(text) != 1:
            return
        head, tail = raw.split(text)
        tail += b"\n\n"  # the whole event, as `fast` sees it
        mark = "\x00llmlb\x00"
        out = _sse(
            "content_block_delta",
            {"index": self.index, "delta": {"type": "text_delta", "text": mark}},
        )
        out_head, out_tail = out.split(json.dumps(mark).encode())
        self._known = (head, tail, out_head, out_tail)

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        delta = choice.get("delta") or {}
        thought = reasoning_of(delta)
        if thought and self.asked.thinking:
            if self.kind != "thinking":
                events += self._open({"type": "thinking", "thinking": "", "signature": ""})
            events += self._delta({"type": "thinking_delta", "thinking": thought})
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self.kind != "text":
                events += self._open({"type": "text", "text": ""})
            events += self._delta({"type": "text_delta", "text": text})
        for call in delta.get("tool_calls") or []:
            at = call.get("index", 0)
            function = call.get("function") or {}
            if at not in self.calls:
                block = {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
                    "name": function.get("name", ""),
                    "input": {},
                }
                events += self._open(block)
                self.calls[at] = self.index
            elif self.calls[at] != self.index:
                continue  # a call's arguments after another began: not a shape nodes send
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                events += self._delta({"type": "input_json_delta", "partial_json": arguments})
        if choice.get("finish_reason"):
            self.finish = choice["finish_reason"]
            self.stop = choice.get("stop_reason")
        return events

    def end(self) -> list[bytes]:
        """The closing events: the last block's stop, message_delta, message_stop."""
        self.over = True
        events = self._close() if self.index >= 0 else []
        if self.index < 0:  # never empty: clients read the first block
            events = [*self._open({"type": "text", "text": ""}), *self._close()]
        delta = _stop(self.asked, self.finish, self.stop)
        events.append(_sse("message_delta", {"delta": delta, "usage": self.usage}))
        events.append(_sse("message_stop", {}))
        return events

    def end_of_stream(self) -> bytes:
        """The node's stream ended: closed properly, or cut short (an error event)."""
        if self.over:
            return b""
        if self.finish is not None:
            return b"".join(self.end())
        return error_event(500, "the node's stream ended before the answer did")
