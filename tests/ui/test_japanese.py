"""The whole UI in Japanese, switched live from Settings: every text a user can read or a
screen reader speaks, on every page, in the dialogs and in the tray menu, is Japanese; only
names (models, nodes, keys, chats), code and a few proper nouns stay as they are.

The check reads the real widgets, hidden ones included (a "Restart now" button or an error
line shows later), so a string that never went through tr() is found wherever it lives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QSpinBox,
    QTabBar,
    QTextEdit,
    QWidget,
)

from app.core.desktop_config import DesktopConfig
from app.core.remote import RemoteTokens
from app.ui.chat_widgets import MessageWidget, TextBlock
from app.ui.connect_dialog import ConnectDialog
from app.ui.gpu_layers_dialog import GpuLayersDialog
from app.ui.i18n import language, set_language
from app.ui.register_dialog import RegisterDialog
from tests.ui.conftest import App
from tests.ui.test_contrast import fill_the_playground, show, switch

PAGES = (
    "overview", "model-hub", "local", "playground", "nodes", "requests", "logs", "settings"
)  # fmt: skip
# Proper nouns and units that read the same in a Japanese UI.
KEPT = {
    "llmlb", "api", "apis", "gpu", "gpus", "cpu", "ram", "vram", "lan", "url", "openai",
    "hugging", "face", "gguf", "json", "csv", "readme", "tok", "http", "https", "bearer",
    "ok", "mb", "gb", "kb", "tb", "ms", "id", "cuda", "metal", "vulkan", "rocm", "mmproj",
    "tokens", "top", "p", "max", "seed", "min", "ja", "en", "english", "enter", "shift", "esc",
    "tls", "sha", "ctrl",
}  # fmt: skip
WORD = re.compile(r"[A-Za-z][A-Za-z']+")
# Code shown as code: rich-text code, backticks, the OpenAI client snippet, key prefixes,
# addresses, paths and repos (anything with a slash).
CODE = re.compile(r"<(code|pre)>.*?</\1>|`[^`]*`|OpenAI\([^)]*\)|llmlb-[\w-]*|\S*/\S+", re.S)
TAG = re.compile(r"<[^>]+>")


def texts(widget: QWidget) -> Iterator[tuple[str, str]]:
    """Everything `widget` can show or say: its text, placeholder, items, tooltip, name."""
    kind = type(widget).__name__
    if isinstance(widget, TextBlock):
        return  # a message's own text: the user's or the model's words
    if isinstance(widget, MessageWidget):
        yield kind, widget.who.text()  # its accessible name is who wrote it and their words
        return
    if isinstance(widget, QLabel):
        yield kind, widget.text()
    if isinstance(widget, QAbstractButton):
        yield kind, widget.text()
    if isinstance(widget, QLineEdit | QPlainTextEdit | QTextEdit):
        yield kind + " placeholder", widget.placeholderText()
    if isinstance(widget, QTextEdit) and widget.isReadOnly():
        yield kind, widget.toPlainText()
    if isinstance(widget, QComboBox):
        for i in range(widget.count()):
            yield kind + " item", widget.itemText(i)
    if isinstance(widget, QSpinBox | QDoubleSpinBox):
        yield kind + " suffix", widget.suffix()
        yield kind + " prefix", widget.prefix()
    if isinstance(widget, QAbstractSpinBox):
        yield kind + " special", widget.specialValueText()
    if isinstance(widget, QGroupBox):
        yield kind, widget.title()
    if isinstance(widget, QTabBar):
        for i in range(widget.count()):
            yield kind, widget.tabText(i)
    if isinstance(widget, QAbstractItemView) and widget.model() is not None:
        model, top = widget.model(), QModelIndex()
        # A list model hides its columnCount (one column).
        columns = 1 if isinstance(model, QAbstractListModel) else model.columnCount(top)
        for column in range(columns):
            yield kind + " header", str(model.headerData(column, Qt.Orientation.Horizontal) or "")
        for row in range(min(model.rowCount(top), 30)):
            for column in range(columns):
                index = model.index(row, column)
                yield kind + " item", str(model.data(index) or "")
                yield kind + " tooltip", str(model.data(index, Qt.ItemDataRole.ToolTipRole) or "")
    if isinstance(widget, QMenu):
        for action in widget.actions():
            yield "QMenu", action.text()
    if widget.isWindow():
        yield kind + " title", widget.windowTitle()
    yield kind + " tooltip", widget.toolTip()
    yield kind + " accessible name", widget.accessibleName()


def data_strings(gui: App) -> list[str]:
    """The names and values that come from the balancer, not from the UI (longest first)."""
    state = gui.desktop.state
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, str) and len(value) > 1:
            found.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk([state.hub, state.models, state.nodes, state.cluster, state.api_keys])
    chat = gui.desktop.window.playground.chats
    walk([chat.item(i).toolTip() for i in range(chat.count())])
    walk(state.client.base_url)
    # The history and the log entries the Requests and Logs pages show (a log line's first
    # line is what its row says).
    window = gui.desktop.window
    walk(window.requests.model.rows)
    walk(window.logs.model.entries)
    walk([e["message"].split("\n", 1)[0] for e in window.logs.model.entries])
    return sorted(found, key=len, reverse=True)


def english(root: QWidget, data: list[str]) -> list[str]:
    """Texts under `root` with English words that are not names, code or kept nouns."""
    found = []
    for widget in [root, *root.findChildren(QWidget)]:
        for what, text in texts(widget):
            plain = TAG.sub(" ", CODE.sub(" ", text))
            for value in data:
                plain = plain.replace(value, " ")
            words = [w for w in WORD.findall(plain) if w.lower().strip("'") not in KEPT]
            if words:
                found.append(f"{what}: {text[:90]!r} ({' '.join(words[:4])})")
    return sorted(set(found))


@pytest.fixture
def japanese(gui: App) -> Iterator[App]:
    """The app with content on every page, switched to Japanese from Settings (as a user does)
    and back to English at the end."""
    window = gui.desktop.window
    window.resize(QSize(1280, 1000))
    fill_the_playground(gui)
    gui.wait(lambda: window.nodes.table.model().rowCount() > 0)
    chat = window.playground.chat.conversation_id
    assert chat is not None
    window.show_page("Settings")
    settings = window.settings
    settings.language.setCurrentIndex(settings.language.findData("ja"))
    settings.save_button.click()
    gui.wait(lambda: window.sidebar.item(0).text() == "概要")
    try:
        yield gui
    finally:
        switch(gui, "light")
        set_language("en")


def test_the_whole_ui_switches_to_japanese_live_and_back(japanese: App, tmp_path: Path) -> None:
    gui = japanese
    window = gui.desktop.window
    assert language() == "ja"
    # Rebuilt in place: the same page, the same conversation, the settings saved.
    assert window.pages.currentWidget() is window.settings
    gui.wait(lambda: window.settings.result.text() == "保存しました。")
    gui.wait(lambda: window.playground.chat.conversation_id is not None)
    gui.wait(lambda: len(window.playground.chat.widgets) >= 2)
    gui.wait(lambda: window.nodes.table.model().rowCount() > 0)
    gui.wait(lambda: window.hub.cards)
    data = data_strings(gui)
    left: list[str] = []
    for scheme in ("light", "dark"):
        switch(gui, scheme)
        for page in PAGES:
            show(gui, page)
            if page == "nodes":
                window.nodes.table.selectRow(0)  # the detail pane, filled
            gui.screenshot(window, f"{page}-{scheme}-ja")
    left += english(window, data)
    left += english(gui.desktop.tray.menu, data)
    model = gui.desktop.state.models[0]
    for dialog in (
        RegisterDialog(gui.desktop.state, window),
        ConnectDialog(DesktopConfig(), RemoteTokens(tmp_path / "config"), window),
        GpuLayersDialog(gui.desktop.state, model, window),
    ):
        left += english(dialog, data)
        dialog.deleteLater()
    assert not left, "English left in the Japanese UI:\n" + "\n".join(left)

    # And back to English, live.
    window.show_page("Settings")
    settings = window.settings
    settings.language.setCurrentIndex(settings.language.findData("en"))
    settings.save_button.click()
    gui.wait(lambda: window.sidebar.item(0).text() == "Overview")
    assert window.models.tabText(0) == "Model Hub"
