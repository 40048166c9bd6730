"""Quitting while an answer streams: what had arrived is saved, marked interrupted, with Retry."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import ENDLESS_REPO
from tests.ui.conftest import App
from tests.ui.test_playground import ready_chat, start_long_answer


def test_quit_mid_answer_keeps_the_partial_answer_with_retry(
    gui: App, caplog: pytest.LogCaptureFixture
) -> None:
    ready_chat(gui, ENDLESS_REPO)
    page = gui.desktop.window.playground.chat
    page.max_tokens.setValue(4000)
    start_long_answer(gui, page, "tell me a long story")
    caplog.set_level(logging.WARNING)
    gui.run(gui.desktop.close())  # what Tray → Quit does before the balancer stops
    arrived = page.widgets[-1].text
    assert len(arrived) > 10 and "interrupted" in page.widgets[-1].stats.text()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The app starts again on the same data: the chat holds the partial answer, with Retry.
    with gui.restarted() as again:
        other = again.window.playground
        gui.wait(lambda: other.chats.count() == 1)
        other.chats.setCurrentRow(0)
        gui.wait(lambda: len(other.chat.widgets) == 2)
        answer = other.chat.widgets[1]
        assert answer.text == arrived and "interrupted" in answer.stats.text()
        assert answer.retry_button.isVisibleTo(answer)
        again.window.show_page("Playground")
        gui.screenshot(again.window, "playground-interrupted")
