"""The Playground, as a user chats: stream, stop, history, attachments, a broken stream."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from tests.conftest import ENDLESS_REPO
from tests.node.conftest import CHAT_REPO
from tests.support.pdf import pdf_of
from tests.ui.conftest import App


def ready_chat(gui: App, repo: str = CHAT_REPO) -> None:
    gui.desktop.state.register(repo=repo)
    page = gui.desktop.window.playground.chat
    gui.wait(lambda: page.model.findData(repo) >= 0, timeout=30)
    page.model.setCurrentIndex(page.model.findData(repo))


def start_long_answer(gui: App, page, text: str) -> None:
    """Send, and return once the answer (from the model that never ends by itself) streams.

    The node writes [DONE] only after its engine stream closes, so while the engine counts
    the stream as active the answer cannot have ended; nothing runs on the loop after the
    check, so the caller acts on an answer still being generated.
    """
    page.input.setPlainText(text)
    page.send()
    runners = gui.ctx.local_node.engines.runners
    gui.wait(lambda: len(page._streamed) > 10 and runners[ENDLESS_REPO].active, timeout=30)
    assert not page.task.done()


def press(widget, key: Qt.Key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    QApplication.sendEvent(widget, QKeyEvent(QEvent.Type.KeyPress, key, modifiers))


def test_send_stream_stats_and_history_survives_a_restart(gui: App) -> None:
    ready_chat(gui)
    window = gui.desktop.window
    window.show_page("Playground")
    playground = window.playground
    page = playground.chat
    page.system.setPlainText("You answer briefly.")
    page.max_tokens.setValue(24)
    page.input.setPlainText("Hello **there**")
    press(page.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)  # a new line only
    assert page.task is None
    press(page.input, Qt.Key.Key_Return)  # Enter sends
    assert page.send_button.text() == "Stop"
    gui.wait(lambda: page.task.done(), timeout=30)
    user, answer = page.widgets
    assert user.role == "user" and "Hello" in user.text
    assert answer.text and "tokens" in answer.stats.text() and "node" in answer.stats.text()
    gui.screenshot(window, "playground")
    gui.wait(lambda: playground.chats.count() == 1)
    # A new window on the same balancer (the app restarted) finds the whole conversation.
    with gui.restarted() as again:
        other = again.window.playground
        gui.wait(lambda: other.chats.count() == 1)
        other.chats.setCurrentRow(0)
        gui.wait(lambda: len(other.chat.widgets) == 2)
        assert other.chat.widgets[1].text == answer.text
        assert other.chat.widgets[0].text.startswith("Hello **there**")


def test_stop_ends_generation_on_the_node(gui: App) -> None:
    ready_chat(gui, ENDLESS_REPO)
    page = gui.desktop.window.playground.chat
    page.max_tokens.setValue(4000)
    start_long_answer(gui, page, "tell me everything")
    runner = gui.ctx.local_node.engines.runners[ENDLESS_REPO]
    cancelled, generated = runner.cancelled_requests, runner.generated_tokens
    press(page.input, Qt.Key.Key_Escape)  # Esc stops
    gui.wait(lambda: page.task.done(), timeout=10)
    gui.wait(lambda: runner.active == 0, timeout=10)
    # The node cancels it at its next step (the request left before the engine thread saw it).
    gui.wait(lambda: runner.cancelled_requests == cancelled + 1, timeout=10)
    assert runner.generated_tokens - generated < 4000 - 10  # it stopped well before max_tokens
    assert page.widgets[-1].text and "stopped" in page.widgets[-1].stats.text()


def test_attachments_text_and_pdf_in_image_refused(gui: App, tmp_path: Path) -> None:
    ready_chat(gui)
    page = gui.desktop.window.playground.chat
    (tmp_path / "notes.txt").write_text("the secret word is teapot")
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(pdf_of([["Quarterly report 42"]]))
    (tmp_path / "cat.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    (tmp_path / "bin.dat").write_bytes(b"\0\1\2" * 100)
    assert page.attach(tmp_path / "notes.txt") and page.attach(pdf)
    assert not page.attach(tmp_path / "cat.png")
    assert "cannot see images" in page.notice.text()
    assert not page.attach(tmp_path / "bin.dat")
    assert "not a text, PDF or image" in page.notice.text()
    assert [a.name for a in page.pending] == ["notes.txt", "doc.pdf"]
    assert "Quarterly report 42" in page.pending[1].text
    page.max_tokens.setValue(4)
    page.input.setPlainText("summarise")
    page.send()
    gui.wait(lambda: page.task.done(), timeout=30)
    sent = page.history[0]["content"]
    assert isinstance(sent, list)
    assert any(isinstance(p, dict) and "teapot" in str(p.get("text", "")) for p in sent)
    assert not page.pending and page.widgets[0].files.names() == ["notes.txt", "doc.pdf"]


def test_a_stream_broken_by_a_dead_node_shows_the_error(gui: App) -> None:
    ready_chat(gui, ENDLESS_REPO)
    page = gui.desktop.window.playground.chat
    page.max_tokens.setValue(4000)
    node = gui.ctx.local_node
    gui.ctx.balancer.dispatcher.detach_local(node.url)  # over HTTP, as a node on the LAN
    start_long_answer(gui, page, "go on")
    for connection in list(node._runner.server.connections):  # the node dies mid-answer:
        connection.force_close()  # its connections drop, as when its process is killed
    gui.wait(lambda: page.task.done(), timeout=15)
    answer = page.widgets[-1]
    assert answer.text.startswith("**Error:**") and answer.retry_button.isVisibleTo(answer)
    assert "stopped answering" in answer.text or "cut off" in answer.text


def test_code_blocks_can_be_copied(qapp) -> None:
    from PySide6.QtGui import QGuiApplication

    from app.ui.chat_widgets import MessageWidget

    widget = MessageWidget("assistant", "Try:\n```python\nprint('hi')\n```\nand | a | b |")
    assert widget.copy_button.isVisibleTo(widget)
    widget.copy_button.click()
    assert QGuiApplication.clipboard().text() == "print('hi')"
    assert not MessageWidget("assistant", "plain words").copy_button.isVisibleTo(widget)


def test_long_answers_are_shown_as_blocks_so_streaming_renders_only_the_last() -> None:
    from app.ui.chat_widgets import BLOCK_CHARS, split_blocks

    text = "# Title\n\nFirst paragraph.\n\n```python\nx = 1\n\ny = 2\n```\n\n" + "word " * 2000
    blocks = split_blocks(text)
    assert blocks[:3] == ["# Title", "First paragraph.", "```python\nx = 1\n\ny = 2\n```"]
    assert all(len(b) <= BLOCK_CHARS for b in blocks[3:]) and len(blocks) > 5
    assert "".join(b.replace(" ", "") for b in blocks[3:]) == "word" * 2000


def test_streaming_updates_touch_only_the_changed_block(qapp) -> None:
    from app.ui.chat_widgets import MessageWidget

    widget = MessageWidget("assistant", "para one\n\npara two")
    first = widget.blocks[0]
    widget.set_text("para one\n\npara two grows")
    assert widget.blocks[0] is first and first.text() == "para one"
    assert widget.blocks[1].text() == "para two grows"
