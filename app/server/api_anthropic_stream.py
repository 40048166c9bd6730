"""A node's Chat Completions event stream as Anthropic's events, one stream's state at a time.

Most of a long answer is text events that differ only in their text: once one is learnt, the
rest are translated without decoding them (one at a time, or a buffer of them at once), the
text copied as the same JSON string after checks that it is one (so a node cannot slip fields
into our events). Anything else is decoded and read through isinstance checks.
"""

from __future__ import annotations

import json
from operator import itemgetter

from app.core.wire import JsonObject, JsonValue
from app.server.api_anthropic_request import Asked
from app.server.api_anthropic_shapes import (
    Block,
    Delta,
    Usage,
    as_object,
    error_body,
    error_event,
    message_id,
    objects,
    sse,
    stop_info,
    tool_use_id,
    usage,
)
from app.server.translate import event_data, is_string, merged_string, reasoning_of

_CHUNK_FIELDS = frozenset({"id", "object", "created", "model", "system_fingerprint", "choices"})


class _Learnt:
    """A node's text event around its text, and ours around the same text (see `_learn`)."""

    __slots__ = ("head", "index", "out_head", "out_tail", "tail")

    def __init__(self, head: bytes, tail: bytes, out_head: bytes, out_tail: bytes, index: int):
        self.head, self.tail, self.out_head, self.out_tail = head, tail, out_head, out_tail
        self.index = index  # the text block's index in our events


class Events:
    """The state of one translated stream: which block is open, what the node reported."""

    def __init__(self, asked: Asked) -> None:
        self.asked = asked
        self.index = -1  # the open block's index (-1: none yet)
        self.kind: str | None = None  # the open block's type
        self.calls: dict[int, int] = {}  # the node's tool call index → our block index
        self.finish: JsonValue = None
        self.stop: JsonValue = None  # the stop string the node says ended the answer
        self.usage: Usage = {"input_tokens": 0, "output_tokens": 0}
        self.over = False
        self._learnt: _Learnt | None = None

    def start(self) -> bytes:
        """The opening events: message_start (an empty message) and a ping."""
        message_start = sse(
            {
                "type": "message_start",
                "message": {
                    "id": message_id(),
                    "type": "message",
                    "role": "assistant",
                    "model": self.asked.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            }
        )
        return message_start + sse({"type": "ping"})

    def _open(self, block: Block) -> list[bytes]:
        events = self._close()
        self.index += 1
        self.kind = block["type"]
        start = sse({"type": "content_block_start", "index": self.index, "content_block": block})
        return [*events, start]

    def _close(self) -> list[bytes]:
        if self.kind is None:
            return []
        self.kind = None
        return [sse({"type": "content_block_stop", "index": self.index})]

    def _delta(self, delta: Delta) -> list[bytes]:
        return [sse({"type": "content_block_delta", "index": self.index, "delta": delta})]

    def _in_learnt_block(self) -> _Learnt | None:
        learnt = self._learnt
        if learnt is None or self.kind != "text" or self.index != learnt.index:
            return None
        return learnt

    def fast(self, chunk: bytes) -> bytes | None:
        """Our event for a buffer that is one text event of the node like the learnt one,
        without decoding it; None for any other buffer."""
        learnt = self._in_learnt_block()
        if learnt is None:
            return None
        head, tail = learnt.head, learnt.tail
        if chunk.startswith(head) and chunk.endswith(tail):
            text = chunk[len(head) : len(chunk) - len(tail)]
            if is_string(text):
                return b"".join((learnt.out_head, text, learnt.out_tail))
        return None

    def feed_all(self, complete: bytes) -> bytes:
        """Our events for whole events of the node (ending with their blank line). Text events
        like the learnt one, up to the last of them, are translated at once by `_bulk` when
        nothing else lies between (the stream's hot path: no Python per event); anything
        else one event at a time."""
        out: list[bytes] = []
        at, size = 0, len(complete)
        tried = False  # `_bulk` is tried once a buffer: it reads all the buffer holds
        while at < size and not self.over:
            learnt = None if tried else self._in_learnt_block()
            if learnt is not None:
                tried = True
                last = complete.rfind(learnt.tail, at)
                end = last + len(learnt.tail)
                bulk = None if last < at else self._bulk(learnt, complete, at, end)
                if bulk is not None:
                    out.append(bulk)
                    at = end
                    continue
            end = complete.find(b"\n\n", at)
            out += self.feed(complete[at:end])
            at = end + 2
        return b"".join(out)

    @staticmethod
    def _bulk(learnt: _Learnt, complete: bytes, at: int, end: int) -> bytes | None:
        """Our events for `complete[at:end]` when it holds only text events like the learnt
        one, else None. The texts are cut at the known offsets; the bytes rebuilt from them
        must be the node's exactly, and each text one JSON string (`merged_string`)."""
        head, tail = learnt.head, learnt.tail
        if not complete.startswith(head, at):
            return None
        events = complete[at:end].split(b"\n\n")
        events.pop()  # after the last blank line
        start, cut = len(head), len(tail) - 2  # the tail ends with the blank line
        texts = list(map(itemgetter(slice(start, -cut)), events))  # in C: no Python per event
        rebuilt = (tail + head).join(texts)
        if len(rebuilt) != end - len(tail) - at - start:
            return None
        if not complete.startswith(rebuilt, at + start):
            return None
        # One text delta for the buffer's texts: the text and when it arrives are the node's;
        # one event instead of hundreds to write and read.
        merged = merged_string(texts)
        return None if merged is None else learnt.out_head + merged + learnt.out_tail

    def feed(self, raw: bytes) -> list[bytes]:
        """The events for one SSE event of the node (without its blank line)."""
        out = self.fast(raw + b"\n\n")
        if out is not None:
            return [out]
        data = event_data(raw)
        if not data:
            return []
        if data == b"[DONE]":
            return self.end()
        try:
            chunk: JsonValue = json.loads(data)
        except ValueError:
            return []
        if not isinstance(chunk, dict):
            return []
        error = chunk.get("error")
        if isinstance(error, dict):  # the node failed after it began
            self.over = True
            # Out of memory is the node's 503 (try again later); anything else its failure.
            busy = error.get("code") == "insufficient_memory"
            return [error_event(503 if busy else 500, error_body(500, chunk)["error"]["message"])]
        if chunk.get("usage"):
            self.usage = usage(chunk["usage"])
        events: list[bytes] = []
        for choice in objects(chunk.get("choices")):
            events += self._choice(choice)
        if self._learnt is None and self.kind == "text":
            self._learn(raw, chunk)
        return events

    def _learn(self, raw: bytes, chunk: JsonObject) -> None:
        """Learn the node's text event from this one, if it is one: the events that follow
        differ only in their text, which goes to the client as the same JSON string, never
        decoded and encoded again (the stream's hot path; a node's events are all alike:
        ours encodes each from one template)."""
        choices = chunk.get("choices")
        if chunk.keys() - _CHUNK_FIELDS or not isinstance(choices, list) or len(choices) != 1:
            return
        choice = choices[0]
        if not isinstance(choice, dict) or choice.get("finish_reason"):
            return
        delta = choice.get("delta")
        if not isinstance(delta, dict) or delta.keys() != {"content"}:
            return
        text = json.dumps(delta["content"]).encode()
        if raw.count(text) != 1:
            return
        head, tail = raw.split(text)
        if b"\n" in head or b"\n" in tail:  # one line, as every node writes its events
            return
        tail += b"\n\n"  # the whole event, as `fast` sees it
        mark = "\x00llmlb\x00"
        out = sse(
            {
                "type": "content_block_delta",
                "index": self.index,
                "delta": {"type": "text_delta", "text": mark},
            }
        )
        out_head, out_tail = out.split(json.dumps(mark).encode())
        self._learnt = _Learnt(head, tail, out_head, out_tail, self.index)

    def _choice(self, choice: JsonObject) -> list[bytes]:
        events: list[bytes] = []
        delta = as_object(choice.get("delta"))
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
        for call in objects(delta.get("tool_calls")):
            index = call.get("index", 0)
            at = index if isinstance(index, int) else 0
            function = as_object(call.get("function"))
            if at not in self.calls:
                ident, name = call.get("id"), function.get("name")
                events += self._open(
                    {
                        "type": "tool_use",
                        "id": ident if isinstance(ident, str) and ident else tool_use_id(),
                        "name": name if isinstance(name, str) else "",
                        "input": {},
                    }
                )
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
        delta = stop_info(self.asked, self.finish, self.stop)
        events.append(sse({"type": "message_delta", "delta": delta, "usage": self.usage}))
        events.append(sse({"type": "message_stop"}))
        return events

    def end_of_stream(self) -> bytes:
        """The node's stream ended: closed properly, or cut short (an error event)."""
        if self.over:
            return b""
        if self.finish is not None:
            return b"".join(self.end())
        return error_event(500, "the node's stream ended before the answer did")
