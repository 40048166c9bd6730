"""The Playground's transcript: text wraps, line breaks show, files are chips, Retry replaces."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication, QTextDocument
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from app.ui.chat_widgets import ZWSP, MessageWidget
from tests.conftest import ENDLESS_REPO
from tests.fakes.fake_openai import FakeOpenAI
from tests.node.conftest import CHAT_REPO
from tests.ui.conftest import App
from tests.ui.test_playground import press, ready_chat, start_long_answer

URL = "https://example.com/" + "a1b2c3d4e5" * 40


def rendered_width(label: QLabel) -> float:
    """How wide the label's text is when laid out at the label's width."""
    doc = QTextDocument()
    doc.setDefaultFont(label.font())
    if label.textFormat() == Qt.TextFormat.MarkdownText:
        doc.setMarkdown(label.text())
    else:
        doc.setPlainText(label.text())
    doc.setTextWidth(label.width())
    return doc.idealWidth()


def test_long_unbroken_text_and_titles_wrap_inside_the_window(gui: App) -> None:
    window = gui.desktop.window
    window.resize(900, 650)
    window.show_page("Playground")
    playground = window.playground
    page = playground.chat
    page._add("user", f"Look at {URL}")
    page._add("assistant", f"It says:\n\n```\n{'x=1;' * 150}\n```\n\nand {URL}")
    client = gui.desktop.client
    gui.run(client.create_conversation("t" * 300, CHAT_REPO, "", {}))
    playground.load_chats()
    gui.wait(lambda: playground.chats.count() == 1)
    gui.settle(0.2)
    viewport = page.scroller.viewport()
    assert page.scroller.widget().width() <= viewport.width()
    for message in page.widgets:
        right = message.mapTo(viewport, QPoint(message.width(), 0)).x()
        assert right <= viewport.width()
        for label in message.blocks:
            assert rendered_width(label) <= label.width() + 1
    chats = playground.chats
    gui.wait(lambda: chats.visualItemRect(chats.item(0)).width() <= chats.viewport().width())
    assert chats.viewport().width() >= 100  # titles stay readable
    assert chats.item(0).toolTip() == "t" * 300
    gui.screenshot(window, "playground-long-text")


def test_copied_text_has_no_invisible_wrap_points(qtbot: QtBot) -> None:
    """Long runs wrap at invisible points; a copied URL or command must not carry them."""
    message = MessageWidget("assistant", f"See {URL} now\n\n```\n{'x=1;' * 40}\n```")
    qtbot.addWidget(message)
    message.show()
    for block, whole in zip(message.blocks, (URL, "x=1;" * 40), strict=True):
        assert ZWSP in block.text()  # it does wrap there
        block.setSelection(0, len(block.text()))
        qtbot.keyClick(block, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
        copied = QGuiApplication.clipboard().text()
        assert whole in copied and ZWSP not in copied


def test_the_writers_line_breaks_show(qapp) -> None:
    widgets = [
        MessageWidget("user", "Line one\nLine two"),
        MessageWidget("user", "Line one Line two"),
        MessageWidget("assistant", "roses are red\nviolets are blue"),
    ]
    two, one, answer = (w.blocks[0].heightForWidth(400) for w in widgets)
    assert two > one and answer > one


def test_attachments_are_chips_that_can_be_removed_and_come_back_as_chips(
    gui: App, tmp_path: Path
) -> None:
    ready_chat(gui)
    page = gui.desktop.window.playground.chat
    (tmp_path / "notes.txt").write_text("the secret word is teapot")
    (tmp_path / "wrong.txt").write_text("not this one")
    assert page.attach(tmp_path / "notes.txt") and page.attach(tmp_path / "wrong.txt")
    assert page.files.names() == ["notes.txt", "wrong.txt"]
    chip = page.files.chips[1]
    remove = [b for b in chip.findChildren(QLabel)]
    assert remove and all(not b.pixmap().isNull() for b in remove if b.text() == "")
    gui.screenshot(page.files, "playground-attachment-chips")
    from PySide6.QtWidgets import QToolButton

    chip.findChild(QToolButton).click()  # the user takes the wrong file off
    assert [a.name for a in page.pending] == ["notes.txt"]
    assert page.files.names() == ["notes.txt"]
    page.max_tokens.setValue(4)
    page.input.setPlainText("what is the secret word?")
    page.send()
    gui.wait(lambda: page.task.done(), timeout=30)
    assert page.widgets[0].text == "what is the secret word?"
    assert page.widgets[0].files.names() == ["notes.txt"]
    # Opened again (as after a restart): the words, and the file as a chip, not its text.
    page.show_conversation(gui.run(gui.desktop.client.conversation(str(page.conversation_id))))
    question = page.widgets[0]
    assert question.text == "what is the secret word?" and "teapot" not in question.text
    assert question.files.names() == ["notes.txt"]
    assert "teapot" in str(page.history[0]["content"])  # still sent as context
    icons = [lb for lb in question.files.chips[0].findChildren(QLabel) if lb.pixmap()]
    assert icons and not icons[0].pixmap().isNull()


def test_a_failed_answer_is_shown_and_retry_replaces_it(gui: App) -> None:
    ready_chat(gui)
    window = gui.desktop.window
    window.show_page("Playground")
    page = window.playground.chat
    for n in range(12):  # a transcript taller than the window
        page._add("user" if n % 2 == 0 else "assistant", f"message {n} " + "words " * 80)
    page.model.addItem("gone", "no/such-model")  # a model deleted meanwhile
    page.model.setCurrentIndex(page.model.findData("no/such-model"))
    page.input.setPlainText("hello?")
    page.send()
    gui.wait(lambda: page.task.done(), timeout=30)
    failed = page.widgets[-1]
    assert failed.text.startswith("**Error:**") and failed.retry_button.isVisibleTo(failed)
    bar = page.scroller.verticalScrollBar()
    gui.wait(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    gui.screenshot(window, "playground-failed-answer")
    count = len(page.widgets)
    page.model.setCurrentIndex(page.model.findData(CHAT_REPO))
    page.max_tokens.setValue(6)
    failed.retry_button.click()
    gui.wait(lambda: page.task.done(), timeout=30)
    assert len(page.widgets) == count and failed not in page.widgets
    answer = page.widgets[-1]
    assert not answer.text.startswith("**Error:**") and not answer.retry_button.isVisibleTo(answer)
    # Opened again, the chat holds the question and the one answer that replaced the error.
    page.show_conversation(gui.run(gui.desktop.client.conversation(str(page.conversation_id))))
    assert [w.role for w in page.widgets] == ["user", "assistant"]
    assert page.widgets[1].text == answer.text


def test_a_stopped_answer_can_be_regenerated(gui: App) -> None:
    ready_chat(gui, ENDLESS_REPO)
    page = gui.desktop.window.playground.chat
    page.max_tokens.setValue(4000)
    start_long_answer(gui, page, "go on")
    press(page.input, Qt.Key.Key_Escape)
    gui.wait(lambda: page.task.done(), timeout=10)
    stopped = page.widgets[-1]
    assert stopped.retry_button.isVisibleTo(stopped)
    page.max_tokens.setValue(5)
    stopped.retry_button.click()
    gui.wait(lambda: page.task.done(), timeout=30)
    assert len(page.widgets) == 2 and stopped not in page.widgets
    assert [h["role"] for h in page.history] == ["user", "assistant"]


def test_opening_another_chat_mid_answer_saves_it_where_it_belongs(gui: App) -> None:
    ready_chat(gui, ENDLESS_REPO)
    playground = gui.desktop.window.playground
    page = playground.chat
    page.max_tokens.setValue(4000)
    start_long_answer(gui, page, "first chat")
    first = str(page.conversation_id)
    playground.new_chat()  # the user moves on while the answer streams
    gui.wait(lambda: page.task.done(), timeout=10)
    assert page.widgets == [] and page.history == []

    async def kept() -> bool:
        messages = (await gui.desktop.client.conversation(first))["messages"]
        return [m["status"] for m in messages] == ["done", "stopped"]

    gui.wait(kept, timeout=10)


def test_an_empty_answer_says_so_and_can_be_asked_again(gui: App) -> None:
    """An answer with no text (a server that sends none) reads as finished, not as "…" still
    coming, and offers Retry, also after the chat is opened again."""
    server = FakeOpenAI(["empty-model"], answer="")
    gui.run(server.__aenter__())
    try:

        async def add_server() -> None:
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    f"{gui.ctx.base_url}/v0/nodes/external",
                    json={"name": "silent", "base_url": server.url},
                    headers={"Authorization": f"Bearer {gui.ctx.admin_token}"},
                ) as r:
                    assert r.status == 201, await r.text()

        gui.run(add_server())
        gui.wait(
            lambda: (
                "empty-model" in (gui.ctx.external.served_elsewhere() if gui.ctx.external else ())
            )
        )
        window = gui.desktop.window
        window.show_page("Playground")
        page = window.playground.chat
        page.model.addItem("silent", "empty-model")  # served by the external server only
        page.model.setCurrentIndex(page.model.findData("empty-model"))
        page.input.setPlainText("say nothing")
        page.send()
        gui.wait(lambda: page.task is not None and page.task.done(), timeout=30)
        empty = page.widgets[-1]
        assert "empty answer" in empty.blocks[0].text()
        assert empty.retry_button.isVisibleTo(empty)
        gui.screenshot(window, "playground-empty-answer")
        cid = str(page.conversation_id)
        page.show_conversation(gui.run(gui.desktop.client.conversation(cid)))
        again = page.widgets[-1]
        assert "empty answer" in again.blocks[0].text()
        assert again.retry_button.isVisibleTo(again)
    finally:
        gui.run(server.__aexit__(None, None, None))
