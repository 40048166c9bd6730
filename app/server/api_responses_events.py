"""The OpenAI Responses event stream of one answer, from the node's Chat Completions chunks:
response.created and response.in_progress, per output item (reasoning, message,
function_call) its added / delta / done events, then response.completed or
response.incomplete; a failure ends it with an `error` event and response.failed. Every event
carries its sequence_number."""

from __future__ import annotations

import json
import uuid
from typing import Any, Protocol

from app.server.translate import chunk_of, event_data, is_string, reasoning_of

_TEXT_DELTA = "response.output_text.delta"


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: a prefix and 48 hex digits."""
    return f"{prefix}_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"


def usage_of(usage: object) -> dict[str, Any]:
    """A node's usage block as the Responses API counts it."""
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


def text_part(text: str) -> dict[str, Any]:
    """An output_text content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(ident: str, text: str) -> dict[str, Any]:
    """A reasoning item: the model's thinking as its summary."""
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"id": ident, "type": "reasoning", "summary": summary}


def message_item(ident: str, text: str, status: str) -> dict[str, Any]:
    """An assistant message item (its content empty while in progress)."""
    return {
        "id": ident,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [text_part(text)] if status != "in_progress" else [],
    }


class Answer(Protocol):
    """What the stream needs of its answer (api_responses_answer.ResponsesAnswer)."""

    def response(self, status: str, output: list[Any], usage: object = None) -> dict[str, Any]:
        """The response object in this state."""
        ...

    def function_call(self, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
        """A function_call item."""
        ...

    def keep(self, response: dict[str, Any], reply: dict[str, Any] | None) -> None:
        """Store the finished response (and the assistant's chat message)."""
        ...


class Events:
    """The state of one translated stream: the items so far, the open one, the node's usage."""

    def __init__(self, answer: Answer) -> None:
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
        # The node's text event around its text, and ours around the sequence number and the
        # text (see `_learn`); None until learnt, and again whenever an item opens or closes.
        self._known: tuple[bytes, bytes, bytes, bytes, bytes] | None = None

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
        """Our text delta for a buffer that is one text event of the node like the one learnt
        (`_learn`): its text goes to the client as the same JSON string, never encoded again
        (the stream's hot path); None for any other buffer."""
        known = self._known
        if known is None:
            return None
        head, tail, out_head, out_mid, out_tail = known
        if chunk.startswith(head) and chunk.endswith(tail):
            literal = chunk[len(head) : len(chunk) - len(tail)]
            if is_string(literal):
                self._add_text(json.loads(literal))
                sequence = str(self.sequence).encode()
                self.sequence += 1
                return b"".join((out_head, sequence, out_mid, literal, out_tail))
        return None

    def _learn(self, raw: bytes, chunk: dict[str, Any]) -> None:
        """Learn the node's text event from this one, if it is one: the events that follow
        differ only in their text (a node encodes them from one template)."""
        choices = chunk.get("choices")
        if chunk.keys() - {"id", "object", "created", "model", "system_fingerprint", "choices"}:
            return
        if not isinstance(choices, list) or len(choices) != 1 or choices[0].get("finish_reason"):
            return
        delta = choices[0].get("delta")
        if not isinstance(delta, dict) or delta.keys() != {"content"} or self.item is None:
            return
        text = json.dumps(delta["content"]).encode()
        if raw.count(text) != 1:
            return
        head, tail = raw.split(text)
        mark = json.dumps("\x00llmlb\x00").encode()
        data = {"type": _TEXT_DELTA, "sequence_number": 0, "item_id": self.item["id"],
                "output_index": self._index, "delta": "\x00llmlb\x00", "content_index": 0,
                "logprobs": []}  # fmt: skip
        out = f"event: {_TEXT_DELTA}\ndata: {json.dumps(data)}\n\n".encode()
        at = out.index(b'"sequence_number": 0') + len(b'"sequence_number": ')
        out_mid, out_tail = out[at + 1 :].split(mark)
        self._known = (head, tail + b"\n\n", out[:at], out_mid, out_tail)

    def _add_text(self, text: str) -> None:
        assert self.item is not None
        self.item["content"][0]["text"] += text
        self.text += text

    @property
    def _index(self) -> int:
        return len(self.output)

    def _open(self, item: dict[str, Any]) -> list[bytes]:
        events = self._close()
        self._known = None
        self.item = item
        shown = {**item, "status": "in_progress"} if "status" in item else item
        if item["type"] == "message":
            shown = message_item(item["id"], "", "in_progress")
        elif item["type"] == "reasoning":
            shown = reasoning_item(item["id"], "")
        events.append(
            self._event("response.output_item.added", output_index=self._index, item=shown)
        )
        at = {"item_id": item["id"], "output_index": self._index}
        if item["type"] == "message":
            part = text_part("")
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
        self._known = None
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
                    "response.content_part.done", **at, content_index=0, part=text_part(text)
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
        if self._known is None and self.item is not None and self.item["type"] == "message":
            self._learn(raw, chunk)
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
                events += self._open(message_item(new_id("msg"), "", "completed"))
            self._add_text(text)
            events.append(self._delta(_TEXT_DELTA, text, content_index=0, logprobs=[]))
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
