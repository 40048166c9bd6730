"""The stream translation's fast paths (a node's text events copied without decoding them,
one by one or a buffer of them at once): whatever the text holds and however the node's
bytes are cut, the client reads exactly the node's text in the same events, and an event
shaped to slip fields into ours is read the slow way."""

from __future__ import annotations

import asyncio
import copy
import json
import random
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.server.api_anthropic_answer import AnthropicAnswer
from app.server.api_anthropic_request import Asked, to_chat
from app.server.translate import JSON_STRING, is_string, merged_string

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


def without_ids(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    for _, data in events:
        data.get("message", {}).pop("id", None)
    return events


def merged(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The events with each run of text deltas of one block as one delta (how a buffer of
    the node's text events is sent: the same text, in fewer events)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, data in without_ids(copy.deepcopy(events)):
        delta = data.get("delta", {})
        last = out[-1][1] if out else {}
        if (
            name == "content_block_delta"
            and delta.get("type") == "text_delta"
            and last.get("type") == "content_block_delta"
            and last["delta"].get("type") == "text_delta"
            and last["index"] == data["index"]
        ):
            last["delta"]["text"] += delta["text"]
            continue
        out.append((name, data))
    return out


async def test_a_buffer_of_many_events_reads_as_the_same_events_one_by_one() -> None:
    # A fast upstream's whole answer can arrive in one buffer (the proxy bench's nginx).
    texts = [f" {i}" for i in range(300)] + TEXTS + ["\\u00e9 \\n", "a\\"] * 3
    wire = [event({"content": "", "role": "assistant"})]
    wire += [event({"content": t}) for t in texts] + [event({}, "stop"), b"data: [DONE]\n\n"]
    one_by_one = await translated(wire)
    assert text_of(one_by_one) == "".join(texts)
    whole = b"".join(wire)
    at_once = await translated([whole])
    assert merged(at_once) == merged(one_by_one)
    # The buffer's text events went out as a few deltas, not one each.
    deltas = [e for e in at_once if e[0] == "content_block_delta"]
    assert 1 <= len(deltas) < len(texts) // 10 and text_of(at_once) == "".join(texts)
    for size in (997, 4096, 65536):  # cut anywhere, as TCP reads come
        cuts = [whole[i : i + size] for i in range(0, len(whole), size)]
        assert merged(await translated(cuts)) == merged(one_by_one)


async def test_a_sly_event_among_many_in_one_buffer_is_read_the_slow_way() -> None:
    first = event({"content": "a"})
    head, tail = first.split(b'"a"')
    plain = [event({"content": f"{i}"}) for i in range(20)]
    for sly_text in (b'"b", "injected": "x"', b'"b\\"', b'"b\n"', b'"b"\n\ndata: {}'):
        sly = head + sly_text + tail
        events = await translated([first, b"".join([*plain, sly, *plain, event({}, "stop")])])
        assert all("injected" not in d.get("delta", {}) for _, d in events)
        assert text_of(events).startswith("a" + "".join(f"{i}" for i in range(20)))
        assert text_of(events).endswith("".join(f"{i}" for i in range(20)))


def test_the_check_of_many_texts_at_once_agrees_with_the_check_of_each() -> None:
    one = re.compile(JSON_STRING)
    alphabet = [b'"', b"\\", b"a", b"\n", b"\x01", "é".encode(), b" ", b"u"]
    rng = random.Random(16)
    for _ in range(20000):
        texts = []
        for _ in range(rng.randint(1, 4)):
            middle = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
            texts.append(b'"' + middle + b'"' if rng.random() < 0.7 else middle)
        merged = merged_string(texts)
        assert (merged is not None) == all(one.fullmatch(s) for s in texts), texts
        if merged is not None:  # one literal of the texts' contents, one after another
            assert merged == b'"' + b"".join(s[1:-1] for s in texts) + b'"', texts


async def test_message_start_goes_with_a_quick_node_and_before_a_slow_one() -> None:
    wire = [event({"content": "hi"}), event({}, "stop"), b"data: [DONE]\n\n"]

    async def node(delay: float) -> AsyncIterator[bytes]:
        await asyncio.sleep(delay)
        for buffer in wire:
            yield buffer

    # A node that answers at once: one write carries message_start and its first event.
    writes = [b async for b in AnthropicAnswer(Asked("m", False)).stream(node(0))]
    assert writes[0].startswith(b"event: message_start") and b"text_delta" in writes[0]
    # A node that thinks first: the client hears message_start (and ping) meanwhile.
    stream = AnthropicAnswer(Asked("m", False)).stream(node(2.0))
    started = time.monotonic()
    first = await anext(stream)
    assert time.monotonic() - started < 1.0
    assert first.startswith(b"event: message_start") and b"text_delta" not in first
    assert b"text_delta" in b"".join([b async for b in stream])


async def test_a_node_failing_before_its_first_event_still_opens_the_message() -> None:
    async def node() -> AsyncIterator[bytes]:
        raise ConnectionResetError("the node died")
        yield b""  # an async generator

    stream = AnthropicAnswer(Asked("m", False)).stream(node())
    assert (await anext(stream)).startswith(b"event: message_start")
    with pytest.raises(ConnectionResetError):  # the proxy ends the stream with an error event
        await anext(stream)


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
