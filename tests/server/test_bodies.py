"""Stored bodies: a stream is kept as the one answer the client would have read, every body
is cut at 256 KB on a character boundary, and what cannot be assembled is kept as sent."""

from __future__ import annotations

import json
from typing import Any

from app.server.bodies import (
    BODY_CAP,
    RAW_STREAM_CAP,
    Capture,
    _assemble_events,
    _assemble_text,
    assemble,
    capped,
    stored,
)


def sse(*events: Any) -> bytes:
    """Chat Completions events as a node streams them, ending with [DONE]."""
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + (
        b"data: [DONE]\n\n"
    )


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


def test_a_stream_is_assembled_into_the_answer_the_client_read() -> None:
    raw = sse(
        chunk({"role": "assistant", "reasoning_content": "let me "}),
        chunk({"reasoning_content": "think"}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({"tool_calls": [{"index": 0, "id": "t1", "type": "function",
                               "function": {"name": "get_", "arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "weather",
                                                        "arguments": 'ty": "Oslo"}'}}]}),
        chunk({}, finish="tool_calls"),
        {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [],
         "usage": {"prompt_tokens": 3, "completion_tokens": 5}},
    )  # fmt: skip
    answer: Any = assemble(raw)  # read as a client reads the JSON
    assert answer is not None
    assert answer["object"] == "chat.completion" and answer["llmlb_assembled"] is True
    assert answer["id"] == "c1" and answer["model"] == "m"
    [choice] = answer["choices"]
    message = choice["message"]
    assert message["content"] == "Hello"
    assert message["reasoning_content"] == "let me think"
    assert message["tool_calls"] == [
        {
            "index": 0,
            "id": "t1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    assert choice["finish_reason"] == "tool_calls"
    assert answer["usage"] == {"prompt_tokens": 3, "completion_tokens": 5}


def test_several_choices_and_an_error_event_are_kept_apart() -> None:
    raw = sse(
        chunk({"content": "a"}, index=0),
        chunk({"content": "b"}, index=1),
        chunk({"content": "c"}, index=0, finish="length"),
        {"error": {"message": "the node stopped", "code": "node_failed"}},
    )
    answer: Any = assemble(raw)  # read as a client reads the JSON
    assert answer is not None
    assert [c["message"]["content"] for c in answer["choices"]] == ["ac", "b"]
    assert answer["error"]["code"] == "node_failed"


def test_a_completions_stream_keeps_its_text() -> None:
    raw = sse({"id": "t", "object": "text_completion", "model": "m",
               "choices": [{"index": 0, "text": "Once", "finish_reason": None}]},
              {"id": "t", "object": "text_completion", "model": "m",
               "choices": [{"index": 0, "text": " upon", "finish_reason": "length"}]})  # fmt: skip
    answer: Any = assemble(raw)  # read as a client reads the JSON
    assert answer is not None and answer["object"] == "text_completion"
    assert answer["choices"] == [{"index": 0, "text": "Once upon", "finish_reason": "length"}]


def test_another_apis_events_are_stored_as_sent() -> None:
    anthropic = (
        b'event: message_start\ndata: {"type": "message_start", "message": {}}\n\n'
        b'event: content_block_delta\ndata: {"type": "content_block_delta"}\n\n'
    )
    assert assemble(anthropic) is None
    assert assemble(b"data: not json\n\n") is None
    capture = Capture()
    capture.parts = [anthropic[:30], anthropic[30:]]
    kept = stored(capture, 200, None)
    assert kept["response"] == anthropic.decode() and kept["response_truncated"] is False


def test_bodies_are_cut_on_a_character_boundary_and_marked() -> None:
    text = "x" + "あ" * BODY_CAP  # 3-byte characters: the cut falls inside one
    data = text.encode()
    kept, cut = capped(data)
    assert cut is True
    size = len(kept.encode())
    assert BODY_CAP - 3 < size <= BODY_CAP and data.startswith(kept.encode())
    assert "\ufffd" not in kept
    assert capped(b"short") == ("short", False)
    capture = Capture()
    capture.keep_request(data)
    assert capture.request is not None and len(capture.request) == BODY_CAP + 1  # bounded
    assert stored(capture, 200, None)["request"] == kept


def test_a_stream_past_the_raw_cap_is_marked_cut() -> None:
    capture = Capture()
    piece = sse(chunk({"content": "y" * 1000}))[: -len(b"data: [DONE]\n\n")]
    capture.parts = [piece] * (RAW_STREAM_CAP // len(piece) + 1)
    kept = stored(capture, 200, None)
    assert kept["response_truncated"] is True
    assert kept["response"] is not None
    assert len(kept["response"].encode()) <= BODY_CAP


def test_a_failure_before_any_answer_stores_what_the_client_was_told() -> None:
    kept = stored(Capture(), 500, "internal error in the balancer")
    assert kept["request"] is None
    assert kept["response"] is not None
    assert json.loads(kept["response"])["error"]["message"] == "internal error in the balancer"


def test_the_quick_reading_agrees_with_parsing_every_event() -> None:
    tricky = ['say "hi"', "back\\slash\\", "日本語 ✓", "line\nbreak", '{"content": "x"}', "\\"]
    raw = sse(
        chunk({"role": "assistant", "content": None}),
        *(chunk({"reasoning_content": t}) for t in tricky),
        *(chunk({"content": t}) for t in tricky),
        chunk({}, finish="stop"),
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 12}},
    )
    quick: Any = _assemble_text(raw)
    parsed = _assemble_events(raw)
    assert quick is not None and quick == parsed
    assert quick["choices"][0]["message"]["content"] == "".join(tricky)
    assert quick["choices"][0]["message"]["reasoning_content"] == "".join(tricky)
    assert quick["choices"][0]["finish_reason"] == "stop" and quick["usage"]["completion_tokens"]
    # Tool calls, several choices and errors are read event by event.
    assert _assemble_text(sse(chunk({"content": "a"}, index=1))) is None
    assert _assemble_text(sse(chunk({"tool_calls": []}))) is None


def test_a_lone_surrogate_or_a_cut_stream_still_stores() -> None:
    capture = Capture()
    capture.parts = [sse(chunk({"content": "\ud83d"}), chunk({"content": "ok"}))]
    kept = stored(capture, 200, None)
    assert kept["response"] is not None
    assert json.loads(kept["response"])["choices"][0]["message"]["content"] == "\ud83dok"
    whole = sse(chunk({"content": "first"}), chunk({"tool_calls": [{"index": 0}]}))
    capture.parts = [whole[:-30]]  # the kept bytes ended inside the last event
    kept = stored(capture, 200, None)
    assert json.loads(kept["response"] or "")["choices"][0]["message"]["content"] == "first"
