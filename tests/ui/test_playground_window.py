"""The Playground holds a conversation longer than the model's context: the oldest turns
are left out (a quiet line says so), and when the node counts more tokens than the estimate
did, what is sent is trimmed further and asked again, without an error for the user."""

from __future__ import annotations

from pathlib import Path

from app.core.wire import JsonValue
from app.ui import chat_window
from app.ui.chat_stream import ChatStream
from app.ui.chat_window import DEFAULT_CONTEXT
from app.ui.client import ApiError
from app.ui.i18n import set_language
from tests.node.conftest import CHAT_REPO
from tests.support.pdf import pdf_of
from tests.ui.conftest import App
from tests.ui.test_playground import ready_chat

# Words the tiny model's vocabulary holds whole (one token each, ~7 bytes): real tokens are
# fewer than the Playground's estimate, as with real models and English text.
WORDS = "hello world question assistant thanks please "
TURN_CHARS = 6000  # ~850 real tokens a message: six turns outgrow a 4096-token context
TURNS = 6


def chat_turns(gui: App, page, turns: int) -> None:
    """Send `turns` long messages one after another, each answered before the next."""
    for i in range(turns):
        page.input.setPlainText(f"turn {i}: " + WORDS * (TURN_CHARS // len(WORDS)))
        page.send()
        gui.wait(lambda: page.task is not None and page.task.done(), timeout=60)
        answer = page.widgets[-1]
        assert not answer.text.startswith("**Error:**"), answer.text
        assert "tokens" in answer.stats.text()


def the_whole_history_does_not_fit(gui: App, page) -> None:
    """Sent untrimmed, the conversation is refused by the node: it really is too long."""
    messages: list[JsonValue] = list(page.history)

    async def send_all() -> str | None:
        chat = ChatStream(
            gui.desktop.state.client, {"model": CHAT_REPO, "messages": messages, "max_tokens": 4}
        )
        try:
            async for _ in chat.deltas():
                pass
        except ApiError as exc:
            return exc.code
        return None

    assert gui.run(send_all()) == "context_length_exceeded"


def test_a_conversation_longer_than_the_context_still_answers(gui: App) -> None:
    ready_chat(gui)
    listed = gui.run(gui.desktop.state.client.openai_models())
    context = next(m.get("context_length") for m in listed if m["id"] == CHAT_REPO)
    # The node's effective context for the tiny model: the gui fixture's context_size.
    assert context == 4096
    window = gui.desktop.window
    window.show_page("Playground")
    page = window.playground.chat
    page.system.setPlainText("You answer briefly.")
    page.max_tokens.setValue(8)
    chat_turns(gui, page, TURNS)
    the_whole_history_does_not_fit(gui, page)
    fitted = page.fitting.last
    assert fitted is not None and fitted.dropped > 0
    assert page.fitting.resent == 0  # the estimate alone was enough
    sent = fitted.messages
    assert sent[0] == {"role": "system", "content": "You answer briefly."}
    assert isinstance(sent[1], dict) and isinstance(sent[-1], dict)
    assert str(sent[-1]["content"]).startswith(f"turn {TURNS - 1}:")  # the newest
    assert str(sent[1]["content"]).startswith("turn ")  # the kept history starts with a user
    # The quiet line sits right above the first message sent, and says why.
    marker = page.marker
    assert marker.isVisibleTo(page)
    assert "Earlier messages are not sent" in marker.text() and "4k context" in marker.text()
    at = page.messages.indexOf(marker)
    below = page.messages.itemAt(at + 1).widget()
    assert below is page.widgets[fitted.dropped] and below.role == "user"
    page.scroller.ensureWidgetVisible(marker)
    gui.screenshot(window, "playground-trimmed")
    set_language("ja")
    try:
        marker.show_fit(fitted, chat_window.window(context, 8))
        assert marker.text().startswith("以前のメッセージは送信されません")
        assert "4k" in marker.text()
    finally:
        set_language("en")
    page.reset()  # a new conversation has nothing left out
    assert not marker.isVisibleTo(page)


def test_when_the_node_counts_more_the_playground_trims_further_and_resends(gui: App) -> None:
    ready_chat(gui)
    page = gui.desktop.window.playground.chat
    page.max_tokens.setValue(8)
    page.fitting.bytes_per_token = 40.0  # far too optimistic: the node will disagree
    chat_turns(gui, page, TURNS)  # every answer arrives; none shows an error
    assert page.fitting.resent >= 1
    learned = page.fitting.learned[CHAT_REPO]
    assert learned.bytes_per_token < 40.0 and learned.context <= DEFAULT_CONTEXT
    assert page.fitting.last is not None and page.fitting.last.dropped > 0
    assert page.marker.isVisibleTo(page)
    resent = page.fitting.resent
    chat_turns(gui, page, 1)  # what was learned is used next time: no more 400s
    assert page.fitting.resent == resent


def test_a_message_too_long_for_the_context_is_kept_to_shorten(gui: App) -> None:
    ready_chat(gui)
    page = gui.desktop.window.playground.chat
    text = "hello " * 4000  # ~8000 tokens estimated, in a 4k context
    page.input.setPlainText(text)
    page.send()
    assert page.task is None and not page.widgets  # nothing sent or saved
    assert "too long for the model's 4k context" in page.notice.text()
    assert page.input.toPlainText() == text


def test_a_large_file_is_cut_to_fit_with_a_notice(gui: App, tmp_path: Path) -> None:
    ready_chat(gui)
    page = gui.desktop.window.playground.chat
    page.max_tokens.setValue(8)
    book = tmp_path / "book.txt"
    book.write_text("".join(f"{WORDS}{i}\n" for i in range(3000)))  # ~130 kB
    assert page.attach(book)
    page.input.setPlainText("summarise")
    page.send()
    gui.wait(lambda: page.task.done(), timeout=60)
    user, answer = page.widgets
    assert not answer.text.startswith("**Error:**"), answer.text
    note = user.stats.text()
    assert note.startswith("book.txt is cut to fit the model's 4k context: its first ")
    (cut,) = page.fitting.last.cuts
    assert f"{cut.sent_chars:,} of {cut.total_chars:,} characters" in note
    assert 0 < cut.sent_chars < cut.total_chars


def test_a_40_page_pdf_and_a_30_turn_conversation_answer_without_an_error(
    gui: App, tmp_path: Path
) -> None:
    ready_chat(gui)
    page = gui.desktop.window.playground.chat
    page.max_tokens.setValue(4)
    report = tmp_path / "report.pdf"
    report.write_bytes(
        pdf_of([[f"{WORDS}page {p} line {i}" for i in range(45)] for p in range(40)])
    )
    assert page.attach(report)
    page.input.setPlainText("summarise the report")
    page.send()
    gui.wait(lambda: page.task.done(), timeout=60)
    user, answer = page.widgets
    assert not answer.text.startswith("**Error:**"), answer.text
    assert user.stats.text().startswith("report.pdf is cut to fit the model's 4k context")
    # Thirty more turns, short ones: the conversation goes on, oldest turns left out.
    for i in range(30):
        page.input.setPlainText(f"turn {i}: " + WORDS * 40)
        page.send()
        gui.wait(lambda: page.task.done(), timeout=60)
        assert not page.widgets[-1].text.startswith("**Error:**"), page.widgets[-1].text
    assert len(page.widgets) == 62
