"""Every page by keyboard alone, as a user who cannot use a mouse (or who listens to a screen
reader) meets it: Tab from the page's start reaches every control, in reading order, each with
a name a screen reader says and a focus indicator that shows; Space and Enter do what a click
does; the sidebar switches pages by arrow keys and Ctrl+1…7; message text is selected and
copied from the keyboard; a node's load and a model's state are said in words, not colour alone.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTabBar,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)
from pytestqt.qtbot import QtBot

from app.core.catalog import load_catalog
from app.core.types import HubStatus, Lifecycle, NodeStatus
from app.core.wire import HubEntry, NodeJson
from app.ui import theme
from app.ui.chat_widgets import TextBlock
from app.ui.main_window import PAGES, MainWindow
from app.ui.model_card import ModelCard
from app.ui.nodes_page import NodesModel
from tests.ui.conftest import MACHINE, App
from tests.ui.test_contrast import EDGE, fill_the_playground, pixels, ratio, show, switch

CONTROLS = (
    QAbstractButton,
    QLineEdit,
    QComboBox,
    QAbstractSpinBox,
    QAbstractItemView,
    QPlainTextEdit,
    QTextEdit,
    QTabBar,
)
TOLERANCE = 4  # px: widgets in one row may sit a few pixels above or left of each other
WALKED = (
    "overview", "model-hub", "local", "playground", "nodes", "requests", "logs", "settings"
)  # fmt: skip


def keyboard_text(widget: QWidget) -> bool:
    """A label whose text is selected from the keyboard (a message, a command to copy)."""
    return isinstance(widget, QLabel) and bool(
        widget.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByKeyboard
    )


def part_of_another(widget: QWidget) -> bool:
    """A piece Qt builds inside a control (a spin box's or combo's line edit, a line edit's
    clear button, a tab bar's scroll arrows, a table's header): the control is the stop."""
    parent = widget.parentWidget()
    return isinstance(widget, QHeaderView) or isinstance(
        parent, QAbstractSpinBox | QComboBox | QLineEdit | QTabBar
    )


def controls(root: QWidget) -> list[QWidget]:
    """The enabled, shown controls inside `root` that a user acts on."""
    found: list[QWidget] = [root] if isinstance(root, CONTROLS) else []
    found += root.findChildren(QWidget)
    return [
        w
        for w in found
        if (isinstance(w, CONTROLS) or keyboard_text(w))
        and w.window() is root.window()
        and w.isVisible()
        and w.isEnabled()
        and not part_of_another(w)
    ]


def name_of(widget: QWidget) -> str:
    """What a screen reader says for the control: its accessible name, else its own text."""
    if widget.accessibleName().strip():
        return widget.accessibleName()
    if isinstance(widget, QAbstractButton | QLabel):
        return widget.text().strip()
    if isinstance(widget, QTabBar):
        return ", ".join(widget.tabText(i) for i in range(widget.count()) if widget.tabText(i))
    return ""


def describe(widget: QWidget | None) -> str:
    if widget is None:
        return "nothing"
    return f"{type(widget).__name__} {name_of(widget)[:50]!r}"


def tab_walk(gui: App, start: QWidget, limit: int = 400) -> list[QWidget]:
    """Press Tab from `start` until focus comes back to it; the widgets focused on the way.
    Focus that stays put (a control that keeps Tab to itself) or loops elsewhere ends the walk
    (and the test: what comes after is never reached)."""
    start.setFocus(Qt.FocusReason.TabFocusReason)
    gui.wait(start.hasFocus, timeout=5)
    chain: list[QWidget] = []
    for _ in range(limit):
        here = QApplication.focusWidget()
        assert here is not None, "focus left the window"
        QTest.keyClick(here, Qt.Key.Key_Tab)
        focused = QApplication.focusWidget()
        assert focused is not None, "focus left the window"
        if focused is start:
            return chain
        assert focused not in chain, (
            f"Tab keeps focus in a loop (or on one control): {describe(here)} → "
            f"{describe(focused)}; reached so far: {[describe(w) for w in chain]}"
        )
        chain.append(focused)
    raise AssertionError(f"Tab never came back to {describe(start)}")


def reading_rects(a: QWidget, b: QWidget) -> tuple[QRect, QRect] | None:
    """Where a and b sit, as the parts of their nearest common ancestor that hold them (the
    scroll area for a control inside one, the pane of a splitter, the card for a card's
    button): read in that ancestor, whatever is scrolled. None when one holds the other."""
    if a.isAncestorOf(b) or b.isAncestorOf(a):
        return None
    common = a.parentWidget()
    while common is not None and not common.isAncestorOf(b):
        common = common.parentWidget()
    assert common is not None

    def held(w: QWidget) -> QRect:
        while w.parentWidget() is not common:
            parent = w.parentWidget()
            assert parent is not None
            w = parent
        return w.geometry()

    return held(a), held(b)


def reads_after(a: QWidget, b: QWidget) -> bool:
    """Whether b comes after a in reading order: below it, or to its right in the same row
    (a column to the right starts at its top, as a second column of text does)."""
    if b.isAncestorOf(a):
        return False  # back out to the container a control sits in
    rects = reading_rects(a, b)
    if rects is None:
        return True  # a control inside the one before (a button in a table's row)
    ra, rb = rects
    if rb.top() >= ra.bottom() - TOLERANCE:
        return True
    return rb.left() >= ra.right() - TOLERANCE


def focus_shows(gui: App, widget: QWidget, away: QWidget) -> str | None:
    """Why focus on `widget` is not visible (None: it is): what focus draws on it must stand
    out from the unfocused widget by 3:1 (WCAG 1.4.11) over more than a text caret does: at
    least as much as a line down both its sides."""
    away.setFocus(Qt.FocusReason.TabFocusReason)
    gui.wait(away.hasFocus, timeout=5)
    before = pixels(widget.grab().toImage())
    widget.setFocus(Qt.FocusReason.TabFocusReason)
    gui.wait(widget.hasFocus, timeout=5)
    after = pixels(widget.grab().toImage())
    if before.shape != after.shape:
        return None  # focus resized it: that shows
    changed = np.any(before != after, axis=2)
    if not changed.any():
        return "focus draws nothing"
    strong = int((ratio(after[changed], before[changed]) >= EDGE).sum())
    needed = 2 * widget.height()
    return None if strong >= needed else f"focus marks {strong} px at 3:1, not {needed}"


@pytest.fixture
def shown(gui: App, tmp_path: Path) -> Iterator[App]:
    """The window shown and active, with a conversation in the Playground (and a file to send
    with the next message), a node selected (its actions enabled) and LAN serving ticked
    without an API key (its warning's button shown)."""
    window = gui.desktop.window
    window.resize(QSize(1280, 1000))
    window.show()
    window.activateWindow()
    gui.wait(lambda: QApplication.activeWindow() is window, timeout=5)
    fill_the_playground(gui)
    gui.wait(lambda: window.nodes.table.model().rowCount() > 0)
    gui.wait(lambda: window.local.table.rowCount() > 0)
    notes = tmp_path / "notes.txt"
    notes.write_text("to read", encoding="utf-8")
    assert window.playground.chat.attach(notes)
    window.nodes.table.selectRow(0)
    gui.wait(window.nodes.edit_button.isEnabled)
    window.settings.lan.setChecked(True)
    assert window.settings.lan_create_key.isVisibleTo(window.settings)
    try:
        yield gui
    finally:
        switch(gui, "light")


def page_widget(window: MainWindow, page: str) -> QWidget:
    return {
        "overview": window.overview,
        "model-hub": window.models,
        "local": window.models,
        "playground": window.playground,
        "nodes": window.nodes,
        "requests": window.requests,
        "logs": window.logs,
        "settings": window.settings,
    }[page]


def check_walk(gui: App, root: QWidget, start: QWidget, where: str) -> list[str]:
    """Walk `root`'s controls by Tab from `start`; what a keyboard user would miss (focus as
    the scheme in force shows it: callers walk in each scheme, switched once for all, as a
    switch restyles every widget)."""
    chain = tab_walk(gui, start)
    if root.isAncestorOf(start):
        chain.insert(0, start)  # a dialog's walk starts on its first field
    failures = [
        f"{where}: not reached by Tab: {describe(w)}" for w in controls(root) if w not in chain
    ]
    failures += [
        f"{where}: reached but not part of it: {describe(w)}"
        for w in chain
        if not (root.isAncestorOf(w) or w is root)
    ]
    order = [start, *chain] if chain[:1] != [start] else chain
    failures += [
        f"{where}: out of reading order: {describe(a)} → {describe(b)}"
        for a, b in itertools.pairwise(order)
        if not reads_after(a, b)
    ]
    failures += [
        f"{where}: no name a screen reader says: {describe(w)}" for w in chain if not name_of(w)
    ]
    failures += [
        f"{where}: a name with symbols a screen reader spells out: {describe(w)}"
        for w in chain
        if any(unicodedata.category(c) == "So" for c in name_of(w))
    ]
    scheme = "dark" if theme.is_dark() else "light"
    for i, w in enumerate(chain):
        why = focus_shows(gui, w, chain[i - 1] if len(chain) > 1 else start)
        if why:
            failures.append(f"{where} ({scheme}): {describe(w)}: {why}")
    return failures


def in_both_schemes(gui: App, walk: Callable[[], list[str]]) -> list[str]:
    """What `walk` finds in light and in dark (each finding once)."""
    failures: list[str] = []
    for scheme in ("light", "dark"):
        switch(gui, scheme)
        failures += walk()
    switch(gui, "light")
    return list(dict.fromkeys(failures))


def test_every_page_by_tab_reaches_each_control_in_reading_order_named_and_focus_visible(
    shown: App,
) -> None:
    gui = shown
    window = gui.desktop.window

    def every_page() -> list[str]:
        failures: list[str] = []
        for page in WALKED:
            show(gui, page)
            root = page_widget(window, page)
            if page in ("model-hub", "local"):
                # The tab bar that chose the tab is part of the walk too.
                assert window.models.tabBar() in tab_walk(gui, window.sidebar)
            failures += check_walk(gui, root, window.sidebar, page)
        return failures

    failures = in_both_schemes(gui, every_page)
    assert not failures, "\n".join(failures)


def test_the_banners_come_first_then_the_sidebar_and_the_page(shown: App) -> None:
    gui = shown
    window = gui.desktop.window
    show(gui, "overview")
    window.banner.show_message("Lost connection to the balancer: test.")
    window.paused.show()
    dismiss = next(b for b in window.banner.findChildren(QPushButton) if b.text() == "✕")
    root = window.centralWidget()
    assert root is not None
    failures = in_both_schemes(gui, lambda: check_walk(gui, root, dismiss, "banners"))
    assert not failures, "\n".join(failures)


def test_a_refresh_leaves_the_keyboard_where_it_was(shown: App) -> None:
    gui = shown
    window = gui.desktop.window
    show(gui, "local")
    delete = window.local.table.cellWidget(0, window.local.table.columnCount() - 1)
    assert isinstance(delete, QPushButton)
    focus_on(gui, delete)
    refreshed: list[bool] = []
    gui.desktop.state.hubChanged.connect(lambda: refreshed.append(True))
    gui.desktop.state.refresh()  # as the poll does every few seconds
    gui.wait(lambda: refreshed)
    assert QApplication.focusWidget() is delete, describe(QApplication.focusWidget())


def test_a_refresh_keeps_the_api_key_picked_by_arrow_keys(shown: App) -> None:
    gui = shown
    window = gui.desktop.window
    show(gui, "settings")
    keys = window.settings.keys
    gui.desktop.state.create_key("my editor", lambda _key: None)
    gui.wait(lambda: keys.count() == 1)
    focus_on(gui, keys)
    QTest.keyClick(keys, Qt.Key.Key_Home)
    assert keys.currentRow() == 0
    refreshed: list[bool] = []
    gui.desktop.state.nodesChanged.connect(lambda: refreshed.append(True))
    gui.desktop.state.refresh()  # as the poll does every few seconds
    gui.wait(lambda: refreshed)
    assert keys.currentRow() == 0 and keys.hasFocus()


def test_the_register_and_connect_dialogs_by_tab(shown: App) -> None:
    gui = shown
    window = gui.desktop.window

    def both_dialogs() -> list[str]:
        show(gui, "model-hub")
        register = window.hub.open_register_dialog()
        gui.wait(register.isVisible, timeout=5)
        failures = check_walk(gui, register, register.repo, "register dialog")
        register.reject()
        show(gui, "settings")
        window.settings.server.choose_server()
        connect = window.settings.server.dialog
        assert connect is not None
        gui.wait(connect.isVisible, timeout=5)
        failures += check_walk(gui, connect, connect.url, "connect dialog")
        connect.reject()
        return failures

    failures = in_both_schemes(gui, both_dialogs)
    assert not failures, "\n".join(failures)


def focus_on(gui: App, widget: QWidget) -> None:
    # A window manager gives the window back its activation when a dialog closes; the
    # offscreen platform has none.
    widget.window().activateWindow()
    widget.setFocus(Qt.FocusReason.TabFocusReason)
    gui.wait(widget.hasFocus, timeout=5)


def test_space_and_enter_act_escape_closes(shown: App) -> None:
    gui = shown
    window = gui.desktop.window
    # Overview: Space on Copy puts the endpoint on the clipboard.
    show(gui, "overview")
    QGuiApplication.clipboard().clear()
    copy = next(b for b in window.overview.findChildren(QAbstractButton) if b.text() == "Copy")
    focus_on(gui, copy)
    QTest.keyClick(copy, Qt.Key.Key_Space)
    gui.wait(lambda: QGuiApplication.clipboard().text() == window.overview.endpoint_url())
    # …and so does Enter, as in a dialog.
    QGuiApplication.clipboard().clear()
    QTest.keyClick(copy, Qt.Key.Key_Return)
    gui.wait(lambda: QGuiApplication.clipboard().text() == window.overview.endpoint_url())
    # The Hub's Register button opens the dialog; Enter there registers (an empty repo is
    # refused in words); Escape closes it.
    show(gui, "model-hub")
    focus_on(gui, window.hub.register_button)
    QTest.keyClick(window.hub.register_button, Qt.Key.Key_Space)
    dialog = window.hub.dialog
    assert dialog is not None
    gui.wait(dialog.isVisible, timeout=5)
    focus_on(gui, dialog.repo)
    QTest.keyClick(dialog.repo, Qt.Key.Key_Return)
    gui.wait(lambda: dialog.error.isVisible() and "repo" in dialog.error.text())
    QTest.keyClick(dialog.repo, Qt.Key.Key_Escape)
    gui.wait(lambda: not dialog.isVisible(), timeout=5)
    assert dialog.result() == QDialog.DialogCode.Rejected
    # Settings: Enter on Save saves.
    show(gui, "settings")
    focus_on(gui, window.settings.save_button)
    QTest.keyClick(window.settings.save_button, Qt.Key.Key_Enter)
    gui.wait(lambda: window.settings.result.text().startswith("Saved"))


def showing(window: MainWindow, index: int) -> Callable[[], bool]:
    """Whether the window shows its `index`th section."""
    return lambda: window.pages.currentIndex() == index


def test_the_sidebar_switches_pages_by_arrow_keys_and_ctrl_numbers(shown: App) -> None:
    gui = shown
    window = gui.desktop.window
    show(gui, "overview")
    focus_on(gui, window.sidebar)
    for i in range(1, len(PAGES)):
        QTest.keyClick(window.sidebar, Qt.Key.Key_Down)
        gui.wait(showing(window, i), timeout=5)
    QTest.keyClick(window.sidebar, Qt.Key.Key_Home)
    gui.wait(lambda: window.pages.currentIndex() == 0, timeout=5)
    # Ctrl+1…7 from anywhere in the window (here: the Playground's message box), and each
    # section says its key in its tooltip.
    show(gui, "playground")
    focus_on(gui, window.playground.chat.input)
    for i in range(len(PAGES), 0, -1):
        here = QApplication.focusWidget()
        assert here is not None
        QTest.keyClick(here, Qt.Key(Qt.Key.Key_0 + i), Qt.KeyboardModifier.ControlModifier)
        gui.wait(showing(window, i - 1), timeout=5)
        assert f"Ctrl+{i}" in window.sidebar.item(i - 1).toolTip()


def test_message_text_is_selected_and_copied_by_keyboard(shown: App) -> None:
    gui = shown
    window = gui.desktop.window
    show(gui, "playground")
    chat = window.playground.chat
    # Tab from the last setting reaches the user's message first, as it reads.
    focus_on(gui, chat.stop_words)
    QTest.keyClick(chat.stop_words, Qt.Key.Key_Tab)
    block = QApplication.focusWidget()
    assert isinstance(block, TextBlock), describe(block)
    assert block in chat.widgets[0].blocks
    QGuiApplication.clipboard().clear()
    # The caret moves and selects as in a text box: Home, then Shift+End.
    QTest.keyClick(block, Qt.Key.Key_Home)
    QTest.keyClick(block, Qt.Key.Key_End, Qt.KeyboardModifier.ShiftModifier)
    QTest.keyClick(block, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    gui.wait(lambda: QGuiApplication.clipboard().text() == "Hello, how are you?")
    # A paragraph that streams in after the answer was shown is read in its place: after the
    # one before it, before the next message.
    answer, code = chat.widgets[1], chat.widgets[2]
    answer.set_text("A first paragraph.\n\nA second one, streamed in later.")
    first, second = answer.blocks
    focus_on(gui, first)
    QTest.keyClick(first, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is second, describe(QApplication.focusWidget())
    QTest.keyClick(second, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is code.blocks[0], describe(QApplication.focusWidget())


def node(status: NodeStatus, inflight: int) -> NodeJson:
    """A node as the balancer lists it, with one slot and `inflight` requests."""
    return {  # type: ignore[typeddict-item]
        "id": "n1",
        "name": "box",
        "kind": "remote",
        "status": status,
        "url": "http://10.0.0.2:8081",
        "tags": [],
        "inflight": inflight,
        "ready_models": [1, 1],
        "models": [],
        "metrics": {},
        "metrics_stale": False,
        "registered_at": None,
        "gpu_devices": [],
    }


def test_a_nodes_load_is_said_in_words_not_only_by_its_colour(qapp: QApplication) -> None:
    model = NodesModel()
    model.set_nodes([node(NodeStatus.ONLINE, 0)])
    assert model.data(model.index(0, 1)) == "online"
    model.set_nodes([node(NodeStatus.ONLINE, 1)])
    said = str(model.data(model.index(0, 1)))
    assert said.startswith("online") and "full" in said, said


def test_a_failed_models_retry_comes_before_its_delete_as_they_read(qtbot: QtBot) -> None:
    failed = cast(
        HubEntry,
        {
            **load_catalog().entries[0].as_json(),
            "status": HubStatus.DOWNLOADED,
            "lifecycle_status": Lifecycle.ERROR,
            "ready_nodes": [],
            "error": "llama.cpp could not load the model",
        },
    )
    page = QWidget()  # the card between a search box and what follows, as in the Hub
    column = QVBoxLayout(page)
    search, card, after = QLineEdit(), ModelCard(failed, MACHINE), QPushButton("next")
    for w in (search, card, after):
        column.addWidget(w)
    qtbot.addWidget(page)
    with qtbot.waitExposed(page):
        page.show()
    with qtbot.waitActive(page):
        page.activateWindow()
    qtbot.waitUntil(card.retry_button.isVisible)
    search.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(search.hasFocus)
    walked = []
    for _ in range(3):
        here = QApplication.focusWidget()
        assert here is not None
        QTest.keyClick(here, Qt.Key.Key_Tab)
        walked.append(QApplication.focusWidget())
    assert walked == [card.retry_button, card.button, after], [describe(w) for w in walked]
