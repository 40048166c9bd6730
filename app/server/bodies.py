"""What each /v1 request sent and got back, kept for the request history, capped.

The request path only keeps references (`Capture`: the body's bytes, the answer's bytes, a
stream's buffers in a list up to RAW_STREAM_CAP). Everything costly happens later, in the
history's flusher on the database thread (`stored`): cutting each body to BODY_CAP bytes on a
character boundary, and assembling a streamed answer into the one chat.completion object the
client would have got without `stream`.
"""

from __future__ import annotations

import json
import re

from app.core.wire import JsonObject, JsonValue
from app.db.rows import StoredBodies

BODY_CAP = 256 * 1024  # bytes kept of each body (UTF-8)
# Bytes of a stream's events kept to assemble it: its SSE framing and per-token JSON weigh
# several times the text it carries, so this holds an answer whose text fills BODY_CAP.
RAW_STREAM_CAP = 1024 * 1024


class Capture:
    """References to one request's bodies, taken on the request path without copying."""

    __slots__ = ("parts", "request", "response", "stream_size")

    def __init__(self) -> None:
        self.request: bytes | None = None  # as the client sent it, before any translation
        self.response: bytes | None = None  # a whole answer as relayed, or our error's body
        self.parts: list[bytes] | None = None  # a stream's buffers as relayed (RAW_STREAM_CAP)
        self.stream_size = 0  # their bytes, once the stream ended

    @property
    def size(self) -> int:
        """The bytes this capture keeps alive until the history is written."""
        request, response = self.request, self.response
        return (
            (0 if request is None else len(request))
            + (0 if response is None else len(response))
            + self.stream_size
        )

    def keep_request(self, raw: bytes) -> None:
        """The client's body; only what BODY_CAP keeps (+1 byte to see the cut) stays alive."""
        self.request = raw if len(raw) <= BODY_CAP else raw[: BODY_CAP + 1]

    def keep_response(self, raw: bytes) -> None:
        """A whole answer's body (see `keep_request`)."""
        self.response = raw if len(raw) <= BODY_CAP else raw[: BODY_CAP + 1]


def capped(data: bytes) -> tuple[str, bool]:
    """At most BODY_CAP bytes of `data` as text, cut before a character, and whether it was
    cut. Bytes that are not UTF-8 read as U+FFFD (a text column holds text)."""
    if len(data) <= BODY_CAP:
        return data.decode("utf-8", "replace"), False
    end = BODY_CAP
    while end > 0 and data[end] & 0xC0 == 0x80:  # data[end] continues a character: cut before
        end -= 1
    return data[:end].decode("utf-8", "replace"), True


def stored(capture: Capture, status: int, error: str | None) -> StoredBodies:
    """The capped text of a capture (on the database thread: this parses and assembles)."""
    request, request_cut = (None, False) if capture.request is None else capped(capture.request)
    response: str | None = None
    response_cut = False
    if capture.parts is not None:
        raw = b"".join(capture.parts)
        answer = assemble(raw)
        if answer is None:  # not Chat/Completions events (another API's): the text as sent
            response, response_cut = capped(raw)
        else:
            # A lone surrogate a node sent escaped ("\\ud83d") is written as that escape again.
            text = json.dumps(answer, ensure_ascii=False).encode("utf-8", "backslashreplace")
            response, response_cut = capped(text)
        response_cut = response_cut or len(raw) >= RAW_STREAM_CAP
    elif capture.response is not None:
        response, response_cut = capped(capture.response)
    elif status >= 400 and error is not None:  # failed before any answer: what we said
        body = {"error": {"message": error, "type": "server_error", "param": None, "code": None}}
        response = json.dumps(body, ensure_ascii=False)
    return {
        "request": request,
        "request_truncated": request_cut,
        "response": response,
        "response_truncated": response_cut,
    }


def assemble(raw: bytes) -> JsonObject | None:
    """A Chat Completions (or Completions) stream as one answer object: each choice's
    content, reasoning_content and tool_calls merged from its deltas, its finish_reason, the
    usage block, marked `llmlb_assembled`. None when the events are not that API's."""
    if raw.startswith(b"event:") or b"\nevent:" in raw:
        return None  # named events: Anthropic's or the Responses API's
    return _assemble_text(raw) or _assemble_events(raw)


def _assemble_text(raw: bytes) -> JsonObject | None:
    """The usual stream (one choice of text, no tool calls, no error) read without parsing
    each event: the content strings are found by their key (JSON escapes quotes inside
    strings, so `"content":"` is always a key) and decoded in one call, the first and the
    usage event parsed whole. A 1,000-event stream: ~1 ms where parsing each takes ~4 (a
    GIL the event loop shares). None for anything else: `_assemble_events` reads it."""
    if b'"tool_calls"' in raw or b'"error"' in raw or _OTHER_CHOICE.search(raw):
        return None
    first = _event_at(raw, raw.find(b"data:"))
    if first is None or not isinstance(first.get("choices"), list):
        return None
    if first.get("object") == "text_completion":
        return None
    message: JsonObject = {"role": "assistant", "content": _strings(_CONTENT, raw)}
    if b'"reasoning_content"' in raw and (reasoning := _strings(_REASONING, raw)) is not None:
        message["reasoning_content"] = reasoning
    answer: JsonObject = {
        "id": first.get("id"),
        "object": "chat.completion",
        "created": first.get("created"),
        "model": first.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _last_finish(raw),
            }
        ],
        "llmlb_assembled": True,
    }
    at = raw.rfind(b'"usage"')
    if at >= 0:
        event = _event_at(raw, raw.rfind(b"data:", 0, at))
        if event is not None and isinstance(event.get("usage"), dict):
            answer["usage"] = event["usage"]
    return answer


# A JSON string literal, unrolled (`[^"\\]*` runs between escapes) for the regex engine's speed.
_STRING = rb'("[^"\\]*(?:\\.[^"\\]*)*")'
_CONTENT = re.compile(rb'"content"\s*:\s*' + _STRING)
_REASONING = re.compile(rb'"reasoning_content"\s*:\s*' + _STRING)
_FINISH = re.compile(rb'"finish_reason"\s*:\s*"([^"\\]*)"')
_OTHER_CHOICE = re.compile(rb'"index"\s*:\s*[1-9]')  # a second choice (n > 1)


def _last_finish(raw: bytes) -> str | None:
    """The last finish_reason given (the events before it say null): found from the end as
    nodes space it (compact, or Python's `": "`), else by the pattern."""
    at = max(raw.rfind(b'"finish_reason":"'), raw.rfind(b'"finish_reason": "'))
    if at >= 0:
        found = _FINISH.match(raw, at)
        return found[1].decode("utf-8", "replace") if found else None
    every = _FINISH.findall(raw)
    return every[-1].decode("utf-8", "replace") if every else None


def _strings(key: re.Pattern[bytes], raw: bytes) -> str | None:
    """Every string value of `key` in `raw`, decoded and joined; None when there is none."""
    found = key.findall(raw)
    if not found:
        return None
    try:
        return "".join(json.loads(b"[" + b",".join(found) + b"]"))
    except ValueError:  # a stream cut mid-string, or a bad escape: what can be read
        return "".join(_loose(piece) for piece in found)


def _loose(literal: bytes) -> str:
    try:
        return str(json.loads(literal))
    except ValueError:
        return ""


def _event_at(raw: bytes, at: int) -> JsonObject | None:
    """The JSON object of the `data:` line starting at `at`, if it is one."""
    if at < 0:
        return None
    end = raw.find(b"\n", at)
    try:
        event = json.loads(raw[at + 5 : end if end >= 0 else len(raw)])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _assemble_events(raw: bytes) -> JsonObject | None:
    """Any Chat Completions or Completions stream, each event parsed."""
    head: JsonObject | None = None
    choices: dict[int, _Choice] = {}
    usage: JsonValue = None
    error: JsonValue = None
    lines = raw.decode("utf-8", "replace").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.startswith("data:"):
            continue  # blank separators, `: comments`, `id:`/`retry:` fields
        payload = line[5:].strip()
        if payload == "[DONE]":
            continue
        try:
            event = json.loads(payload)
        except ValueError:
            if n == len(lines):
                break  # the last event, cut where the stream's kept bytes ended
            return None
        if not isinstance(event, dict):
            return None
        if "error" in event and "choices" not in event:
            error = event["error"]  # the node's, or ours when it died mid-stream
            continue
        found = event.get("choices")
        if not isinstance(found, list):
            return None
        head = head or event
        if isinstance(event.get("usage"), dict):
            usage = event["usage"]
        for c in found:
            if isinstance(c, dict):
                index = c.get("index", 0)
                choices.setdefault(index if isinstance(index, int) else 0, _Choice()).add(c)
    if head is None and error is None:
        return None
    text = head is not None and head.get("object") == "text_completion"
    first: JsonObject = head or {}
    whole: list[JsonValue] = [choices[i].whole(i, text) for i in sorted(choices)]
    answer: JsonObject = {
        "id": first.get("id"),
        "object": "text_completion" if text else "chat.completion",
        "created": first.get("created"),
        "model": first.get("model"),
        "choices": whole,
        "llmlb_assembled": True,
    }
    if usage is not None:
        answer["usage"] = usage
    if error is not None:
        answer["error"] = error
    return answer


class _Call:
    """One tool call's pieces: its id and type as first given, its name and arguments streamed
    as pieces of one string each."""

    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: list[str] = []
        self.arguments: list[str] = []

    def whole(self, index: int) -> JsonObject:
        """The call, its name and arguments joined."""
        return {
            "index": index,
            "id": self.id,
            "type": self.type or "function",
            "function": {"name": "".join(self.name), "arguments": "".join(self.arguments)},
        }


class _Choice:
    """One choice's pieces, gathered from its deltas in order."""

    __slots__ = ("content", "finish", "reasoning", "tools")

    def __init__(self) -> None:
        self.content: list[str] | None = None
        self.reasoning: list[str] | None = None
        self.tools: dict[int, _Call] = {}
        self.finish: JsonValue = None

    def add(self, choice: JsonObject) -> None:
        if choice.get("finish_reason") is not None:
            self.finish = choice["finish_reason"]
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = {"content": choice.get("text")}  # a Completions chunk: `text`
        if isinstance(piece := delta.get("content"), str):
            if self.content is None:
                self.content = []
            self.content.append(piece)
        if isinstance(piece := delta.get("reasoning_content"), str):
            if self.reasoning is None:
                self.reasoning = []
            self.reasoning.append(piece)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                self._tool(call)

    def _tool(self, call: JsonObject) -> None:
        index = call.get("index", len(self.tools))
        whole = self.tools.setdefault(index if isinstance(index, int) else 0, _Call())
        if isinstance(given := call.get("id"), str) and whole.id is None:
            whole.id = given
        if isinstance(given := call.get("type"), str) and whole.type is None:
            whole.type = given
        function = call.get("function")
        if isinstance(function, dict):
            if isinstance(piece := function.get("name"), str):
                whole.name.append(piece)
            if isinstance(piece := function.get("arguments"), str):
                whole.arguments.append(piece)

    def whole(self, index: int, text: bool) -> JsonObject:
        content = None if self.content is None else "".join(self.content)
        if text:
            return {"index": index, "text": content or "", "finish_reason": self.finish}
        message: JsonObject = {"role": "assistant", "content": content}
        if self.reasoning is not None:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tools:
            calls: list[JsonValue] = [self.tools[i].whole(i) for i in sorted(self.tools)]
            message["tool_calls"] = calls
        return {"index": index, "message": message, "finish_reason": self.finish}
