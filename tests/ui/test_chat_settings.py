"""The Playground's settings belong to each chat: loaded, saved as edited, titles kept."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.core.wire import JsonObject
from tests.node.conftest import CHAT_REPO
from tests.ui.conftest import App
from tests.ui.test_playground import ready_chat


def saved(gui: App, cid: str) -> Any:
    return gui.run(gui.desktop.client.conversation(cid))


def test_each_chat_brings_its_own_parameters_and_edits_are_saved(gui: App) -> None:
    ready_chat(gui)
    client = gui.desktop.client
    tuned: JsonObject = {"temperature": 1.0, "max_tokens": 3000, "seed": 42, "stop": ["END", "###"]}
    first = gui.run(client.create_conversation("tuned", CHAT_REPO, "Be terse.", tuned))
    plain = gui.run(client.create_conversation("plain", CHAT_REPO, "", {"temperature": 0.2}))
    playground = gui.desktop.window.playground
    page = playground.chat
    playground.load_chats()
    gui.wait(lambda: playground.chats.count() == 2)
    rows = {playground.chats.item(i).data(Qt.ItemDataRole.UserRole): i for i in range(2)}
    playground.chats.setCurrentRow(rows[first["id"]])
    gui.wait(lambda: page.conversation_id == first["id"])
    assert (page.temperature.value(), page.max_tokens.value()) == (1.0, 3000)
    assert page.seed.text() == "42" and page.stop_words.text() == "END, ###"
    assert page.system.toPlainText() == "Be terse."
    playground.chats.setCurrentRow(rows[plain["id"]])  # the other chat: its own, not these
    gui.wait(lambda: page.conversation_id == plain["id"])
    assert (page.temperature.value(), page.max_tokens.value()) == (0.2, 512)
    assert page.seed.text() == "" and page.stop_words.text() == ""
    # Edits mid-chat are saved with the chat, stop words trimmed.
    page.temperature.setValue(0.9)
    page.stop_words.setText("zzz, qqq")

    async def stops_saved() -> bool:
        conv = await client.conversation(plain["id"])
        return conv["params"].get("stop") == ["zzz", "qqq"]

    gui.wait(stops_saved, timeout=10)
    assert saved(gui, plain["id"])["params"]["temperature"] == 0.9
    gui.screenshot(page, "playground-chat-parameters")


def test_an_unchanged_title_is_not_saved_again(gui: App) -> None:
    client = gui.desktop.client
    older = gui.run(client.create_conversation("older", CHAT_REPO, "", {}))
    newer = gui.run(client.create_conversation("newer", CHAT_REPO, "", {}))
    playground = gui.desktop.window.playground
    page = playground.chat
    renames: list[str] = []
    real = client.rename_conversation

    async def counted(cid: str, title: str) -> Any:
        renames.append(title)
        return await real(cid, title)

    client.rename_conversation = counted  # type: ignore[method-assign,assignment]
    page.show_conversation(saved(gui, older["id"]))
    page.title.editingFinished.emit()  # the user tabs through the Title field
    page.title.setText("older, renamed")
    page.title.editingFinished.emit()

    async def renamed() -> bool:
        return (await client.conversation(older["id"]))["title"] == "older, renamed"

    gui.wait(renamed)
    assert renames == ["older, renamed"]
    assert saved(gui, newer["id"])["updated_at"] < saved(gui, older["id"])["updated_at"]


def test_tab_moves_focus_out_of_the_text_boxes(gui: App) -> None:
    page = gui.desktop.window.playground.chat
    for box in (page.system, page.input):
        box.setFocus()
        QTest.keyClick(box, Qt.Key.Key_Tab)  # as the keyboard delivers it
        assert "\t" not in box.toPlainText()
        assert box.tabChangesFocus()


def test_the_picker_counts_nodes_in_words_and_the_stop_placeholder_fits(gui: App) -> None:
    ready_chat(gui)
    window = gui.desktop.window
    window.show_page("Playground")
    page = window.playground.chat
    label = page.model.itemText(page.model.currentIndex())
    assert label.endswith("(1 node)") and "node(s)" not in label
    window.resize(800, 600)
    gui.settle(0.1)
    field = page.stop_words
    needed = field.fontMetrics().horizontalAdvance(field.placeholderText())
    assert field.width() > needed
    assert page.seed.width() > page.seed.fontMetrics().horizontalAdvance("seed 42")
    assert window.playground.minimumSizeHint().width() <= 800 - 200  # beside the page list
    gui.screenshot(window, "playground-800x600")
