"""What the Playground sends when a conversation outgrows the model's context (no Qt)."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.wire import JsonValue
from app.ui import attachments
from app.ui.attachments import Attachment
from app.ui.chat_window import (
    DEFAULT_CONTEXT,
    PER_MESSAGE,
    PER_PROMPT,
    TooLong,
    Window,
    corrected,
    exceeded,
    fit,
    message_tokens,
    window,
)

# One byte per token makes the arithmetic readable: a message costs PER_MESSAGE + len(text).
WIN = Window(context=1000, answer=100, bytes_per_token=1.0)


def msg(role: str, text: str) -> JsonValue:
    return {"role": role, "content": text}


def turns(n: int, size: int) -> list[JsonValue]:
    """n user/assistant pairs, each message `size` characters, numbered so they can be told
    apart."""
    out: list[JsonValue] = []
    for i in range(n):
        out.append(msg("user", f"{i:03d}" + "u" * (size - 3)))
        out.append(msg("assistant", f"{i:03d}" + "a" * (size - 3)))
    return out


def content(message: JsonValue) -> Any:
    """A message's content, untyped (the tests know its shape)."""
    assert isinstance(message, dict)
    return message["content"]


def texts(messages: list[JsonValue]) -> list[str]:
    return [str(m["content"])[:3] if isinstance(m, dict) else "" for m in messages]


def test_everything_is_sent_when_it_fits() -> None:
    history = [msg("system", "be brief"), *turns(3, 50), msg("user", "now")]
    fitted = fit(history, WIN)
    assert fitted.messages == history and fitted.dropped == 0 and not fitted.cuts


def test_the_oldest_turns_go_first_the_system_prompt_and_newest_stay() -> None:
    system = msg("system", "s" * 92)  # 100 tokens
    history = [system, *turns(10, 92), msg("user", "new" + "n" * 89)]  # 100 tokens each
    fitted = fit(history, WIN)  # the budget: 1000 - 100 - PER_PROMPT = 884 tokens
    assert fitted.messages[0] == system and fitted.messages[-1] == history[-1]
    # system + newest = 200; 6 more messages (600) fit, a 7th would not.
    assert texts(fitted.messages) == ["sss", "007", "007", "008", "008", "009", "009", "new"]
    assert fitted.dropped == 21 - 7 and fitted.history == 21
    assert fitted.tokens == 800 <= WIN.budget


def test_an_exact_fit_is_sent_whole_one_token_less_drops_a_turn() -> None:
    history = [msg("user", "x" * 100), msg("assistant", "y" * 100), msg("user", "z")]
    exact = sum(message_tokens(m, WIN) for m in history)
    snug = Window(context=exact + 100 + PER_PROMPT, answer=100, bytes_per_token=1.0)
    assert snug.budget == exact
    assert fit(history, snug).dropped == 0
    tight = Window(context=snug.context - 1, answer=100, bytes_per_token=1.0)
    assert fit(history, tight).messages == [history[2]]  # the answer alone would lead: it goes
    assert fit(history, tight).dropped == 2


def test_the_newest_message_alone_too_long_is_refused() -> None:
    budget_text = "n" * (WIN.budget - PER_MESSAGE)
    assert fit([msg("user", budget_text)], WIN).dropped == 0  # exactly the budget: sent
    with pytest.raises(TooLong):
        fit([msg("user", budget_text + "n")], WIN)
    with pytest.raises(TooLong):  # the system prompt counts too
        fit([msg("system", "be brief"), msg("user", budget_text)], WIN)


def with_file(text: str, name: str, body: str) -> JsonValue:
    part = Attachment(name, "text", len(body), text=body).part()
    return {"role": "user", "content": [{"type": "text", "text": text}, part]}


def test_a_large_file_is_cut_to_fit_with_a_note() -> None:
    book = "".join(f"line {i}\n" for i in range(2000))
    history = [*turns(2, 50), with_file("summarise", "book.txt", book)]
    fitted = fit(history, WIN)
    assert fitted.dropped == 4 and len(fitted.messages) == 1  # older turns went first
    assert fitted.tokens <= WIN.budget
    (cut,) = fitted.cuts
    assert cut.index == 4 and cut.name == "book.txt" and cut.total_chars == len(book)
    assert 0 < cut.sent_chars < len(book)
    sent = content(fitted.messages[0])
    assert sent[0] == {"type": "text", "text": "summarise"}  # the user's words whole
    file_text = sent[1]["text"]
    assert file_text.startswith('<file name="book.txt">\nline 0\nline 1\n')  # its start
    assert "[book.txt is cut here: the rest does not fit the context]" in file_text
    assert file_text.endswith("</file>")
    assert content(history[-1])[1]["text"].count("line") == 2000  # the history keeps it whole


def test_small_files_go_whole_and_large_ones_share_the_rest() -> None:
    small, big1, big2 = "s" * 50, "a" * 5000, "b" * 5000
    message: JsonValue = {
        "role": "user",
        "content": [
            {"type": "text", "text": "compare"},
            Attachment("small.txt", "text", 50, text=small).part(),
            Attachment("a.txt", "text", 5000, text=big1).part(),
            Attachment("b.txt", "text", 5000, text=big2).part(),
        ],
    }
    fitted = fit([message], WIN)
    assert [c.name for c in fitted.cuts] == ["a.txt", "b.txt"]
    assert abs(fitted.cuts[0].sent_chars - fitted.cuts[1].sent_chars) <= 1
    assert fitted.tokens <= WIN.budget
    assert small in str(fitted.messages[0])


def test_an_older_file_is_cut_to_what_is_left_and_older_turns_go() -> None:
    document = with_file("read this", "doc.txt", "d" * 3000)
    history = [*turns(2, 50), document, msg("assistant", "ok"), msg("user", "and page 2?")]
    fitted = fit(history, WIN)
    assert fitted.dropped == 4
    assert [c.index for c in fitted.cuts] == [4]  # the document, cut, is still there
    assert fitted.tokens <= WIN.budget


def test_an_image_counts_and_cannot_be_cut() -> None:
    image: JsonValue = {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
    }
    with pytest.raises(TooLong):
        fit([image], Window(800, 100, 1.0))  # an image is ~768 tokens: more than 684 fit
    assert fit([image], Window(4096, 512)).dropped == 0


def test_the_window_keeps_room_for_the_answer() -> None:
    assert window(None, 512).context == DEFAULT_CONTEXT  # unknown: 4096 assumed
    assert window(32768, 512).answer == 512
    assert window(4096, 32768).answer == 1024  # never more than a quarter of the context
    assert window(0, 100).context == DEFAULT_CONTEXT


def test_english_and_japanese_are_estimated_on_the_safe_side() -> None:
    win = window(4096, 512)
    english = "The quick brown fox jumps over the lazy dog. " * 20  # ~200 real tokens
    japanese = "今日は良い天気ですね。" * 20  # ~1.5 characters per real token: ~150
    assert win.tokens(english) >= 280
    assert win.tokens(japanese) >= 200


def test_the_nodes_count_corrects_the_estimate() -> None:
    message = "the prompt is 5210 tokens; this model's context holds 4096"
    assert exceeded(message) == (5210, 4096)
    assert exceeded("something else") is None
    optimistic = Window(8192, 512, bytes_per_token=40.0)
    win = corrected(optimistic, estimate=600, real=5210, context=4096)
    assert win.context == 4096 and win.answer == 512
    assert win.bytes_per_token < 40.0 * 600 / 5210  # the real ratio, with a margin
    history = turns(30, 400)
    assert fit(history, win).tokens <= win.budget
    careful = corrected(Window(8192, 512), estimate=6000, real=5000, context=4096)
    assert careful.bytes_per_token < 3.0  # a smaller context alone never loosens the ratio


def test_a_reopened_conversations_file_is_resent_as_a_part_and_cut_like_new() -> None:
    files = [
        Attachment("a.txt", "text", 5000, text="a" * 5000),
        Attachment("b.md", "text", 12, text="# b\n\n[x]\nyz"),
    ]
    saved = attachments.saved_text("read these", files)
    meta: list[JsonValue] = [{"name": f.name, "kind": f.kind, "size": f.size} for f in files]
    first_sent: list[JsonValue] = [{"type": "text", "text": "read these"}]
    first_sent += [f.part() for f in files]
    assert attachments.resent(saved, meta) == first_sent  # as when it was first sent
    assert attachments.resent("no files", []) == "no files"
    fitted = fit([msg("user", "x" * 300), {"role": "user", "content": first_sent}], WIN)
    assert [c.name for c in fitted.cuts] == ["a.txt"]  # cut, the words and b.md whole
