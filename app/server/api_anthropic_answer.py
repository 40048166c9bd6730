"""A node's Chat Completions answer as an Anthropic Messages answer: whole, or as Anthropic's
event stream (message_start, ping, content_block_start/delta/stop per block, message_delta,
message_stop; the events themselves in `api_anthropic_stream`), and errors in Anthropic's
shape (`api_anthropic_shapes`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from app.core.errors import UpstreamError
from app.core.wire import JsonObject, JsonValue
from app.server.api_anthropic_request import Asked
from app.server.api_anthropic_shapes import (
    Block,
    MessageJson,
    as_object,
    error_body,
    error_event,
    message_id,
    objects,
    stop_info,
    tool_input,
    tool_use_id,
    usage,
)
from app.server.api_anthropic_stream import Events
from app.server.translate import node_events, reasoning_of

# message_start waits this long (seconds) for the node's first events, to go out in one write
# with them: a write less per stream when the node answers at once (the proxy bench: about a
# third of the translation's cost), and no wait a client would notice when it thinks first.
START_WAIT = 0.005
__all__ = ["AnthropicAnswer", "error_body", "error_event"]


def _not_a_completion() -> UpstreamError:
    return UpstreamError("the node's answer is not a chat completion", code="bad_node_answer")


class AnthropicAnswer:
    """The `AnswerShape` (app.server.translate) of one Messages request."""

    def __init__(self, asked: Asked) -> None:
        self.asked = asked

    def whole(self, body: bytes) -> bytes:
        """A chat.completion as a `message`; UpstreamError when the node sent something else."""
        try:
            data: JsonValue = json.loads(body)
        except ValueError:
            raise _not_a_completion() from None
        choices = data.get("choices") if isinstance(data, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(data, dict) or not isinstance(choice, dict):
            raise _not_a_completion()
        if not isinstance(message, dict):
            raise _not_a_completion()
        return json.dumps(self._message(data, choice, message)).encode()

    def _message(self, data: JsonObject, choice: JsonObject, message: JsonObject) -> MessageJson:
        content: list[Block] = []
        thought = reasoning_of(message)
        if self.asked.thinking and thought:
            content.append({"type": "thinking", "thinking": thought, "signature": ""})
        text = message.get("content")
        if isinstance(text, str) and text:
            content.append({"type": "text", "text": text})
        for call in objects(message.get("tool_calls")):
            function = as_object(call.get("function"))
            ident, name = call.get("id"), function.get("name", "")
            content.append(
                {
                    "type": "tool_use",
                    "id": ident if isinstance(ident, str) and ident else tool_use_id(),
                    "name": name if isinstance(name, str) else "",
                    "input": tool_input(function.get("arguments")),
                }
            )
        if not content:
            content.append({"type": "text", "text": ""})
        stop = stop_info(self.asked, choice.get("finish_reason"), choice.get("stop_reason"))
        return {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.asked.model,
            "content": content,
            "stop_reason": stop["stop_reason"],
            "stop_sequence": stop["stop_sequence"],
            "usage": usage(data.get("usage")),
        }

    def failed(self, message: str) -> bytes:
        """The node stopped answering mid-stream: an `error` event."""
        return error_event(500, message)

    def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The node's chat.completion.chunk events as Anthropic's events."""
        events = Events(self.asked)
        return node_events(
            events,
            chunks,
            events.start(),
            events.end_of_stream,
            bulk=events.feed_all,
            first_wait=START_WAIT,
        )
