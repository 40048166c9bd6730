"""The stream translation's fast path (a node's text events copied without decoding them):
whatever the text holds, the client reads exactly the node's text, and an event shaped to
slip fields into ours is read the slow way."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from app.server.api_anthropic_answer import AnthropicAnswer
from app.server.api_anthropic_request import Asked, to_chat
from app.server.translate import is_string

TEXTS = [" plain", ' "quoted"', " back\\slash\\", " ünïcødé ✓", " tab\tnew\nline", "\\", '"']


def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def translated(buffers: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    async def node() -> AsyncIterator[bytes]:
        for buffer in buffers:
            yield buffer

    out = b"".join([b async for b in AnthropicAnswer(Asked("m", False)).stream(node())])
    events = []
    for block in out.decode().strip().split("\n\n"):
        kind, data = block.split("\n")
        events.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def text_of(events: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(d["delta"]["text"] for k, d in events if k == "content_block_delta")


async def test_every_text_arrives_exactly() -> None:
    wire = [event({"content": t}) for t in TEXTS] + [event({}, "stop"), b"data: [DONE]\n\n"]
    events = await translated(wire)
    assert text_of(events) == "".join(TEXTS)
    assert [k for k, _ in events][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    # The same bytes cut anywhere (no fast path): the same answer.
    whole = b"".join(wire)
    assert text_of(await translated([whole[i : i + 5] for i in range(0, len(whole), 5)])) == (
        "".join(TEXTS)
    )
    # A server that ends its lines with CRLF (SSE allows it): the same answer.
    assert text_of(await translated([b.replace(b"\n", b"\r\n") for b in wire])) == ("".join(TEXTS))


async def test_an_event_that_would_slip_fields_in_is_read_the_slow_way() -> None:
    first = event({"content": "a"})
    head, tail = first.split(b'"a"')
    sly = head + b'"b", "injected": "x"' + tail  # same head and tail, a different middle
    events = await translated([first, sly, event({}, "stop"), b"data: [DONE]\n\n"])
    assert text_of(events) == "ab"
    assert all("injected" not in d.get("delta", {}) for _, d in events)
    assert not is_string(b'"b", "injected": "x"') and not is_string(b'"open\\"')
    assert is_string(b'"esc \\\\ and \\" ok"') and not is_string(b'"\\\\" "')


def test_a_system_message_among_the_turns_is_kept() -> None:
    # What Claude Code 2.1 sends: a system message after the user's (400 before it was read).
    chat, _ = to_chat(
        {
            "model": "m",
            "max_tokens": 8,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
            ],
        }
    )
    assert chat["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "be brief"},
    ]
