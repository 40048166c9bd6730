"""A node's Chat Completions answer as an OpenAI Responses answer: a response object whole, or
the documented event stream (response.created, response.in_progress, per output item its
added / delta / done events, then response.completed or response.incomplete; a failure ends
it with an `error` event and response.failed), each event with its sequence_number."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from app.core.errors import UpstreamError
from app.server.api_responses_request import Asked
from app.server.translate import chunk_of, event_data, node_events, reasoning_of

# The finished response object and the assistant's chat message (None: nothing to continue).
Keep = Callable[[dict[str, Any], dict[str, Any] | None], None]


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: a prefix and 48 hex digits."""
    return f"{prefix}_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"


def _usage(usage: object) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    prompt = prompt if isinstance(prompt, int) else 0
    completion = completion if isinstance(completion, int) else 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _reasoning_item(ident: str, text: str) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"id": ident, "type": "reasoning", "summary": summary}


def _message_item(ident: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [_text_part(text)] if status != "in_progress" else [],
    }


class ResponsesAnswer:
    """The `AnswerShape` (app.server.translate) of one Responses request."""

    def __init__(self, asked: Asked, keep: Keep) -> None:
        self.asked = asked
        self.keep = keep
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self._events: _Events | None = None

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
            "usage": None if usage is None else _usage(usage),
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
            output.append(_reasoning_item(new_id("rs"), thought))
        text = message.get("content")
        status = "incomplete" if cut else "completed"
        if isinstance(text, str) and text:
            output.append(_message_item(new_id("msg"), text, status))
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
        events = self._events or _Events(self)
        return b"".join(events.fail(message))

    def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The node's chat.completion.chunk events as the Responses events."""
        events = self._events = _Events(self)
        return node_events(events, chunks, events.start(), events.end_of_stream)


class _Events:
    """The state of one translated stream: the items so far, the open one, the node's usage."""

    def __init__(self, answer: ResponsesAnswer) -> None:
        self.answer = answer
        self.sequence = 0
        self.output: list[dict[str, Any]] = []  # finished items
        self.item: dict[str, Any] | None = None  # the open item, as it will be when done
        self.calls: dict[int, int] = {}  # the node's tool call index → our output index
        self.text = ""  # the answer's text, for the stored conversation
        self.reply_calls: list[dict[str, Any]] = []
        self.finish: str | None = None
        self.usage: object = None
        self.over = False

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

    def start(self) -> bytes:
        """response.created and response.in_progress (an empty response)."""
        response = self.answer.response("in_progress", [])
        return self._event("response.created", response=response) + self._event(
            "response.in_progress", response=response
        )

    def fast(self, chunk: bytes) -> bytes | None:
        """No fast path: every event of the node is decoded."""
        return None

    @property
    def _index(self) -> int:
        return len(self.output)

    def _open(self, item: dict[str, Any]) -> list[bytes]:
        events = self._close()
        self.item = item
        shown = {**item, "status": "in_progress"} if "status" in item else item
        if item["type"] == "message":
            shown = _message_item(item["id"], "", "in_progress")
        elif item["type"] == "reasoning":
            shown = _reasoning_item(item["id"], "")
        events.append(
            self._event("response.output_item.added", output_index=self._index, item=shown)
        )
        at = {"item_id": item["id"], "output_index": self._index}
        if item["type"] == "message":
            part = _text_part("")
            events.append(
                self._event("response.content_part.added", **at, content_index=0, part=part)
            )
        elif item["type"] == "reasoning":
            part = {"type": "summary_text", "text": ""}
            events.append(
                self._event(
                    "response.reasoning_summary_part.added", **at, summary_index=0, part=part
                )
            )
        return events

    def _close(self, status: str = "completed") -> list[bytes]:
        item = self.item
        if item is None:
            return []
        self.item = None
        at = {"item_id": item["id"], "output_index": self._index}
        events = []
        if item["type"] == "message":
            text = item["content"][0]["text"]
            item["status"] = status
            events.append(
                self._event(
                    "response.output_text.done", **at, content_index=0, text=text, logprobs=[]
                )
            )
            events.append(
                self._event(
                    "response.content_part.done", **at, content_index=0, part=_text_part(text)
                )
            )
        elif item["type"] == "reasoning":
            text = item["summary"][0]["text"]
            events.append(
                self._event(
                    "response.reasoning_summary_text.done", **at, summary_index=0, text=text
                )
            )
            part = {"type": "summary_text", "text": text}
            events.append(
                self._event(
                    "response.reasoning_summary_part.done", **at, summary_index=0, part=part
                )
            )
        else:
            item["status"] = status
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    **at,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
        events.append(self._event("response.output_item.done", output_index=self._index, item=item))
        self.output.append(item)
        return events

    def feed(self, raw: bytes) -> list[bytes]:
        """The events for one SSE event of the node (without its blank line)."""
        data = event_data(raw)
        if data == b"[DONE]":
            return self.end()
        chunk = chunk_of(data) if data else None
        if chunk is None:
            return []
        if isinstance(chunk.get("error"), dict):  # the node failed after it began
            message = chunk["error"].get("message")
            return self.fail(str(message or "the node failed mid-answer"))
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        events: list[bytes] = []
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict):
                events += self._choice(choice)
        return events

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        delta = choice.get("delta") or {}
        thought = reasoning_of(delta)
        if thought:
            if self.item is None or self.item["type"] != "reasoning":
                summary = [{"type": "summary_text", "text": ""}]
                events += self._open({"id": new_id("rs"), "type": "reasoning", "summary": summary})
            assert self.item is not None
            self.item["summary"][0]["text"] += thought
            events.append(
                self._delta("response.reasoning_summary_text.delta", thought, summary_index=0)
            )
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self.item is None or self.item["type"] != "message":
                events += self._open(_message_item(new_id("msg"), "", "completed"))
            assert self.item is not None
            self.item["content"][0]["text"] += text
            self.text += text
            events.append(
                self._delta("response.output_text.delta", text, content_index=0, logprobs=[])
            )
        for call in delta.get("tool_calls") or []:
            events += self._call(call)
        if choice.get("finish_reason"):
            self.finish = choice["finish_reason"]
        return events

    def _delta(self, kind: str, delta: str, **fields: Any) -> bytes:
        assert self.item is not None
        return self._event(
            kind, item_id=self.item["id"], output_index=self._index, delta=delta, **fields
        )

    def _call(self, call: Any) -> list[bytes]:
        if not isinstance(call, dict):
            return []
        at = call.get("index", 0)
        function = call.get("function") or {}
        events: list[bytes] = []
        if at not in self.calls:
            ident = call.get("id") or new_id("call")
            name = function.get("name", "")
            events += self._open(self.answer.function_call(ident, name, "", "completed"))
            self.calls[at] = self._index
            self.reply_calls.append(
                {"id": ident, "type": "function", "function": {"name": name, "arguments": ""}}
            )
        elif self.calls[at] != self._index or self.item is None:
            return []  # a call's arguments after another began: not a shape nodes send
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            assert self.item is not None
            self.item["arguments"] += arguments
            self.reply_calls[-1]["function"]["arguments"] += arguments
            events.append(self._delta("response.function_call_arguments.delta", arguments))
        return events

    def end(self) -> list[bytes]:
        """The closing events: the last item's, then response.completed (or .incomplete)."""
        self.over = True
        cut = self.finish == "length"
        events = self._close("incomplete" if cut else "completed")
        status = "incomplete" if cut else "completed"
        response = self.answer.response(status, self.output, self.usage)
        reply: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        for call in self.reply_calls:
            call["function"]["arguments"] = call["function"]["arguments"] or "{}"
        if self.reply_calls:
            reply["tool_calls"] = self.reply_calls
        self.answer.keep(response, reply)
        events.append(self._event(f"response.{status}", response=response))
        return events

    def end_of_stream(self) -> bytes:
        """The node's stream ended: closed properly, or cut short (a failure)."""
        if self.over:
            return b""
        if self.finish is not None:
            return b"".join(self.end())
        return b"".join(self.fail("the node's stream ended before the answer did"))

    def fail(self, message: str) -> list[bytes]:
        """An `error` event and response.failed: the answer ends unfinished."""
        self.over = True
        response = self.answer.response("failed", self.output, self.usage)
        response["error"] = {"code": "server_error", "message": message}
        return [
            self._event("error", code="server_error", message=message, param=None),
            self._event("response.failed", response=response),
        ]
