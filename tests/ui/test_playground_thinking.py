"""The Playground with a reasoning model: the thinking in a collapsed block with its time,
the answer apart, the thinking never sent back, and kept with the conversation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from app.core.wire import JsonObject
from app.ui.chat_stream import ChatStream
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.test_reasoning import THINK_END, THINKING_REPO, closing_bias, thinking_model
from tests.ui.conftest import App
from tests.ui.test_playground import ready_chat

__all__ = ["thinking_model"]  # the session fixture, shared with the node's tests


def test_thinking_is_shown_apart_and_never_resent(
    gui: App, model_hub: FakeHub, thinking_model: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_hub.add(FakeRepo(THINKING_REPO, {"tiny-thinking-F32.gguf": thinking_model}))
    ready_chat(gui, THINKING_REPO)
    window = gui.desktop.window
    window.show_page("Playground")
    page = window.playground.chat
    page.temperature.setValue(0)
    page.max_tokens.setValue(24)
    first_turn = {
        "model": THINKING_REPO,
        "messages": [{"role": "user", "content": "hello there"}],
        **page.settings.params(),
    }
    thinks = gui.run(closing_bias(post_to(gui), first_turn))
    # What the Playground sends, as the balancer receives it; `thinks` makes the tiny model
    # think a few words, then answer.
    sent: list[JsonObject] = []
    send = ChatStream.deltas

    async def recorded(chat: ChatStream) -> AsyncIterator[tuple[str, str]]:
        chat.body.update(thinks)
        sent.append(json.loads(json.dumps(chat.body)))
        async for piece in send(chat):
            yield piece

    monkeypatch.setattr(ChatStream, "deltas", recorded)
    page.input.setPlainText("hello there")
    page.send()
    gui.wait(lambda: page.task.done(), timeout=30)
    _, answer = page.widgets
    thinking = answer.thinking
    assert thinking.isVisible() and not thinking.expanded and not thinking.body.isVisible()
    label = thinking.toggle.text()
    assert label.startswith("Thought for ") and label.endswith(" s"), label
    thought = thinking.body.text()
    assert thought and answer.text.strip() and "think>" not in answer.text + thought
    gui.screenshot(window, "playground-thinking")
    thinking.toggle.click()  # expands to the thinking itself
    assert thinking.expanded and thinking.body.isVisible()
    gui.screenshot(answer, "playground-thinking-open")

    page.input.setPlainText("and then?")
    page.send()
    gui.wait(lambda: page.task.done(), timeout=30)
    history = sent[1]["messages"]
    assert isinstance(history, list) and len(history) == 3
    before = history[1]
    assert before == {"role": "assistant", "content": answer.text}  # the answer alone
    assert thought not in str(history)

    # Saved with the message: it shows again after a restart, collapsed.
    with gui.restarted() as again:
        other = again.window.playground
        gui.wait(lambda: other.chats.count() == 1)
        other.chats.setCurrentRow(0)
        gui.wait(lambda: len(other.chat.widgets) == 4)
        saved = other.chat.widgets[1].thinking
        assert saved.body.text() == thought and not saved.expanded
        assert saved.toggle.text() == label


def post_to(gui: App) -> Any:
    """POST to the running balancer's API as its admin: (status, JSON body)."""
    headers = {"Authorization": f"Bearer {gui.ctx.admin_token}"}

    async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(gui.ctx.base_url + path, json=body, headers=headers) as r,
        ):
            return r.status, await r.json()

    return post


def never_closing_its_thought(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Playground's requests ban the closing marker: the model thinks until it is stopped
    or runs out of tokens."""
    send = ChatStream.deltas

    async def never_closes(chat: ChatStream) -> AsyncIterator[tuple[str, str]]:
        chat.body["logit_bias"] = {str(THINK_END): -100}
        async for piece in send(chat):
            yield piece

    monkeypatch.setattr(ChatStream, "deltas", never_closes)


def test_thinking_streams_into_the_block(
    gui: App, model_hub: FakeHub, thinking_model: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_hub.add(FakeRepo(THINKING_REPO, {"tiny-thinking-F32.gguf": thinking_model}))
    ready_chat(gui, THINKING_REPO)
    page = gui.desktop.window.playground.chat
    page.max_tokens.setValue(4000)

    never_closing_its_thought(monkeypatch)
    page.input.setPlainText("think it over")
    page.send()
    gui.wait(lambda: page.current is not None and len(page.current.thinking.body.text()) > 20)
    widget = page.current
    assert widget is not None and not page.task.done()
    assert widget.thinking.toggle.text() == "Thinking…" and not widget.thinking.expanded
    assert widget.text == ""  # no answer yet: the thinking is not the answer
    page.stop()
    gui.wait(lambda: page.task.done(), timeout=10)
    assert widget.thinking.toggle.text().startswith("Thought for ")
    assert "stopped" in widget.stats.text()


def test_an_answer_that_was_all_thinking_says_so(
    gui: App, model_hub: FakeHub, thinking_model: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_hub.add(FakeRepo(THINKING_REPO, {"tiny-thinking-F32.gguf": thinking_model}))
    ready_chat(gui, THINKING_REPO)
    page = gui.desktop.window.playground.chat
    page.max_tokens.setValue(12)
    never_closing_its_thought(monkeypatch)
    page.input.setPlainText("think it over")
    page.send()
    gui.wait(lambda: page.task.done(), timeout=30)
    answer = page.widgets[-1]
    assert "spent its 12 tokens thinking and gave no answer: raise max" in answer.text
    assert answer.retry_button.isVisibleTo(answer)
    # Opened again later (or after a language switch rebuilt the window): the same words.
    chat = page.conversation_id
    assert chat is not None
    page.reset()
    gui.desktop.window.playground.open_chat(chat)
    gui.wait(lambda: len(page.widgets) >= 2)
    assert "spent its 12 tokens thinking and gave no answer" in page.widgets[-1].text
