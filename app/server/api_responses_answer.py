"""A node's Chat Completions answer as an OpenAI Responses answer: a response object whole, or
the documented event stream (`api_responses_events`). Errors are OpenAI's (the app's middleware)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from app.core.errors import UpstreamError
from app.server.api_responses_events import (
    Events,
    message_item,
    new_id,
    reasoning_item,
    usage_of,
)
from app.server.api_responses_request import Asked
from app.server.translate import node_events, reasoning_of

# The finished response object and the assistant's chat message (None: nothing to continue).
Keep = Callable[[dict[str, Any], dict[str, Any] | None], None]


class ResponsesAnswer:
    """The `AnswerShape` (app.server.translate) of one Responses request."""

    def __init__(self, asked: Asked, keep: Keep) -> None:
        self.asked = asked
        self.keep = keep
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self._events: Events | None = None

    def response(self, status: str, output: list[Any], usage: object = None) -> dict[str, Any]:
        """The response object in this state."""
        answer: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": self.asked.model,
            "output": output,
            **self.asked.echo,
            "usage": None if usage is None else usage_of(usage),
        }
        if status == "incomplete":
            answer["incomplete_details"] = {"reason": "max_output_tokens"}
        if self.asked.notes:  # what we could not offer: said, so the agent knows
            answer["warnings"] = list(self.asked.notes)
        return answer

    def function_call(self, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
        """A function_call item; a namespaced function is named back as the client named it."""
        item: dict[str, Any] = {
            "id": new_id("fc"),
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        }
        if name in self.asked.names:
            item["namespace"], item["name"] = self.asked.names[name]
        return item

    def whole(self, body: bytes) -> bytes:
        """A chat.completion as a response; UpstreamError when the node sent something else."""
        try:
            data = json.loads(body)
            choice = data["choices"][0]
            message = choice["message"]
            output, reply = self._output(message, choice.get("finish_reason") == "length")
        except (ValueError, LookupError, TypeError, AttributeError):
            raise UpstreamError(
                "the node's answer is not a chat completion", code="bad_node_answer"
            ) from None
        status = "incomplete" if choice.get("finish_reason") == "length" else "completed"
        answer = self.response(status, output, data.get("usage"))
        self.keep(answer, reply)
        return json.dumps(answer).encode()

    def _output(self, message: Any, cut: bool) -> tuple[list[Any], dict[str, Any]]:
        output: list[Any] = []
        thought = reasoning_of(message)
        if thought:
            output.append(reasoning_item(new_id("rs"), thought))
        text = message.get("content")
        status = "incomplete" if cut else "completed"
        if isinstance(text, str) and text:
            output.append(message_item(new_id("msg"), text, status))
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            ident = call.get("id") or new_id("call")
            name, arguments = function.get("name", ""), function.get("arguments") or "{}"
            output.append(self.function_call(ident, name, arguments, status))
            calls.append(
                {
                    "id": ident,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
        reply: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            reply["tool_calls"] = calls
        return output, reply

    def failed(self, message: str) -> bytes:
        """The node stopped answering mid-stream: an `error` event, then response.failed."""
        events = self._events or Events(self)
        return b"".join(events.fail(message))

    def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The node's chat.completion.chunk events as the Responses events."""
        events = self._events = Events(self)
        return node_events(events, chunks, events.start(), events.end_of_stream)
