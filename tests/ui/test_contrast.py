"""Every page reads in light and in dark: WCAG contrast measured on the real widgets' pixels.

Each page is shown in the window, the scheme switched live as the OS does it, and the whole
window grabbed: a widget's own grab would paint its palette's background, not the bubble or
banner it sits on. For every visible text (labels, buttons, checkboxes, fields, list and table
items, tabs, group titles) the background is the colour most of its pixels have and the
foreground the colour, drawn in at least a few pixels, that differs most from it (a glyph's
stem, as anti-aliasing leaves its edges in between). That is the contrast a reader gets,
whatever stylesheet, palette or style drew it. Message text needs AAA (7:1), the rest AA (4.5:1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from PySide6.QtCore import QAbstractListModel, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QStyle,
    QStyleOptionButton,
    QStyleOptionGroupBox,
    QTabBar,
    QWidget,
)

from app.ui import theme
from app.ui.chat_widgets import TextBlock
from app.ui.main_window import MainWindow
from tests.ui.conftest import App
from tests.ui.test_playground import press, ready_chat

SCHEMES = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}
AA, AAA = 4.5, 7.0
EDGE = 3.0  # WCAG 1.4.11: the edges of controls and focus indicators
PAGES = (
    "overview", "model-hub", "local", "playground", "nodes", "requests", "logs", "settings"
)  # fmt: skip


def luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB colours (…, 3) in 0-255."""
    c = rgb.astype(float) / 255
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.asarray(c @ np.array([0.2126, 0.7152, 0.0722]))


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """WCAG contrast ratio between colours."""
    la, lb = luminance(a), luminance(b)
    return np.asarray((np.maximum(la, lb) + 0.05) / (np.minimum(la, lb) + 0.05))


def hex_of(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def pixels(image: QImage) -> np.ndarray:
    """An image as an (h, w, 3) array."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, line = image.height(), image.width(), image.bytesPerLine()
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(h, line)
    return rows[:, : w * 3].reshape(h, w, 3).copy()  # a copy: the bits go with the image


@dataclass
class Reading:
    """One text's colours as drawn."""

    what: str
    fg: np.ndarray
    bg: np.ndarray
    ratio: float
    needed: float

    def __str__(self) -> str:
        return (
            f"{self.what}: {self.ratio:.2f}:1 < {self.needed}:1 "
            f"({hex_of(self.fg)} on {hex_of(self.bg)})"
        )


def read(shot: np.ndarray, rect: QRect, what: str, needed: float) -> Reading | None:
    """The contrast of the text drawn in `rect` of the window's pixels (None: nothing drawn)."""
    area = shot[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1].reshape(-1, 3)
    if not len(area):
        return None
    colours, counts = np.unique(area, axis=0, return_counts=True)
    bg = colours[counts.argmax()]
    drawn = counts >= 3  # a colour in a stroke, not one pixel of an edge's blend
    contrasts = np.where(drawn, ratio(colours, bg), 1.0)
    if contrasts.max() <= 1.05:
        return None
    best = int(contrasts.argmax())
    return Reading(what, colours[best], bg, float(contrasts[best]), needed)


def text_rects(widget: QWidget) -> Iterator[tuple[QRect, str, float]]:
    """Where `widget` draws text, in its own coordinates, with what it says and the contrast
    that text needs."""
    style = widget.style()
    if isinstance(widget, QLabel) and widget.text().strip() and widget.pixmap().isNull():
        needed = AAA if isinstance(widget, TextBlock) else AA
        yield widget.contentsRect(), widget.text(), needed
    elif isinstance(widget, QCheckBox | QRadioButton) and widget.text():
        option = QStyleOptionButton()
        widget.initStyleOption(option)
        element = (
            QStyle.SubElement.SE_CheckBoxContents
            if isinstance(widget, QCheckBox)
            else QStyle.SubElement.SE_RadioButtonContents
        )
        yield style.subElementRect(element, option, widget), widget.text(), AA
    elif isinstance(widget, QAbstractButton) and widget.text().strip():
        yield widget.rect().adjusted(5, 5, -5, -5), widget.text(), AA
    elif isinstance(widget, QLineEdit) and (widget.text() or widget.placeholderText()):
        yield widget.rect().adjusted(4, 4, -4, -4), widget.text() or widget.placeholderText(), AA
    elif isinstance(widget, QComboBox) and widget.currentText():
        yield widget.rect().adjusted(4, 4, -24, -4), widget.currentText(), AA
    elif isinstance(widget, QGroupBox) and widget.title():
        group = QStyleOptionGroupBox()
        widget.initStyleOption(group)
        label = QStyle.SubControl.SC_GroupBoxLabel
        rect = style.subControlRect(QStyle.ComplexControl.CC_GroupBox, group, label, widget)
        yield rect, widget.title(), AA
    elif isinstance(widget, QTabBar):
        for i in range(widget.count()):
            yield widget.tabRect(i).adjusted(4, 4, -4, -4), widget.tabText(i), AA
    elif isinstance(widget, QAbstractItemView) and widget.model() is not None:
        yield from item_rects(widget)


def item_rects(view: QAbstractItemView) -> Iterator[tuple[QRect, str, float]]:
    """Each shown item's text, as rects in the view's own coordinates."""
    model = view.model()
    origin = view.viewport().mapTo(view, QPoint(0, 0))
    root = view.rootIndex()
    for row in range(min(model.rowCount(root), 50)):
        # A list model hides its columnCount (one column).
        columns = 1 if isinstance(model, QAbstractListModel) else model.columnCount(root)
        for column in range(columns):
            index = model.index(row, column, root)
            text = str(model.data(index) or "")
            rect = view.visualRect(index)
            if text.strip() and rect.isValid():
                yield rect.translated(origin).adjusted(3, 2, -3, -2), text, AA


def readings(window: MainWindow) -> list[Reading]:
    """Every visible text of the window, measured on one grab of it."""
    shot = pixels(window.grab().toImage())
    bounds = QRect(0, 0, shot.shape[1], shot.shape[0])
    found = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or widget.visibleRegion().isEmpty():
            continue
        shown = widget.visibleRegion().boundingRect()
        for rect, text, needed in text_rects(widget):
            part = rect.intersected(shown)
            if part.isEmpty():
                continue
            where = part.translated(widget.mapTo(window, QPoint(0, 0))).intersected(bounds)
            name = f"{type(widget).__name__} {text[:40]!r}"
            reading = read(shot, where, name, needed)
            if reading is not None:
                found.append(reading)
    return found


def switch(gui: App, scheme: str) -> None:
    """Switch the colour scheme as the OS does, live."""
    QGuiApplication.styleHints().colorSchemeChanged.emit(SCHEMES[scheme])
    gui.settle(0.1)


def show(gui: App, page: str) -> None:
    window = gui.desktop.window
    if page in ("model-hub", "local"):
        window.show_page("Models")
        window.models.setCurrentWidget(window.hub if page == "model-hub" else window.local)
    else:
        window.show_page(page.capitalize())
    gui.settle(0.1)


def fill_the_playground(gui: App) -> None:
    """A conversation with every kind of text a chat shows: the user's message, an answer with
    its stats line and reasoning, a code block, a failed answer with its error."""
    ready_chat(gui)
    window = gui.desktop.window
    window.show_page("Playground")
    page = window.playground.chat
    page.max_tokens.setValue(16)
    page.input.setPlainText("Hello, how are you?")
    press(page.input, Qt.Key.Key_Return)
    gui.wait(lambda: page.task.done(), timeout=30)
    answer = page.widgets[-1]
    answer.thinking.show_thought("The user greets me; I answer in kind.", 1.2, True)
    answer.thinking.toggle.setChecked(True)
    code = page._add("assistant", "Here is code:\n\n```\nprint('hi')\n```")
    code.show_stats({"tokens": 9, "ttft_ms": 12, "tokens_per_s": 300.0}, "done")
    page._add("assistant", "").show_error("the node went away before it answered")


@pytest.fixture
def pages_shown(gui: App) -> Iterator[App]:
    """The app with content on every page."""
    window = gui.desktop.window
    window.resize(QSize(1280, 1000))
    fill_the_playground(gui)
    gui.wait(lambda: window.nodes.table.model().rowCount() > 0)
    try:
        yield gui
    finally:
        switch(gui, "light")


def backgrounds_follow(gui: App, scheme: str) -> None:
    """The sidebar and the user's own message have the scheme's colours (a widget that kept
    the palette it was styled in, as the sidebar did, shows the other scheme's)."""
    window = gui.desktop.window
    colours = theme.DARK if scheme == "dark" else theme.LIGHT
    shot = pixels(window.grab().toImage())
    sidebar = window.sidebar
    below_items = sidebar.mapTo(window, QPoint(sidebar.width() // 2, sidebar.height() - 5))
    assert hex_of(shot[below_items.y(), below_items.x()]) == colours["base"], scheme
    if window.pages.currentWidget() is window.playground:
        user = window.playground.chat.widgets[0]
        inside = user.mapTo(window, QPoint(3, user.height() // 2))
        assert hex_of(shot[inside.y(), inside.x()]) == colours["user"], scheme


def test_every_page_reads_in_light_and_dark_and_follows_a_live_switch(
    pages_shown: App,
) -> None:
    gui = pages_shown
    window = gui.desktop.window
    failures: list[str] = []
    for scheme in SCHEMES:
        switch(gui, scheme)
        for page in PAGES:
            show(gui, page)
            backgrounds_follow(gui, scheme)
            gui.screenshot(window, f"{page}-{scheme}")
            measured = readings(window)
            assert len(measured) > 5, f"{page} ({scheme}): no text found to measure"
            failures += [f"{page} ({scheme}) {r}" for r in measured if r.ratio < r.needed]
            if page == "playground":
                bodies = [r for r in measured if r.needed == AAA]
                # The user's message, the answer, the code and the error are all measured.
                assert len(bodies) >= 4, [str(r) for r in bodies]

        # The banners: a problem, and serving paused.
        def both_banners() -> list[Reading] | None:
            # Shown again at each try: the window's own state refresh (serving, not paused)
            # may hide the strip between a show and the grab on a busy machine.
            window.banner.show_message("Lost connection to the balancer: test.")
            window.paused.show()
            found = [
                r for r in readings(window) if "Lost connection" in r.what or "paused" in r.what
            ]
            return found if len(found) == 2 else None

        banners: list[Reading] = gui.wait(both_banners, timeout=10)
        failures += [f"banner ({scheme}) {r}" for r in banners if r.ratio < r.needed]
        window.banner.hide()
        window.paused.hide()
    assert not failures, "\n".join(failures)
    switch(gui, "light")  # and back, live
    for page in ("playground", "nodes"):
        show(gui, page)
        backgrounds_follow(gui, "light")


def test_checkboxes_and_focus_rings_are_visible_in_both_schemes(pages_shown: App) -> None:
    gui = pages_shown
    window = gui.desktop.window
    settings = window.settings
    box: QCheckBox = settings.lan
    for scheme in SCHEMES:
        switch(gui, scheme)
        show(gui, "settings")
        button: QPushButton = next(
            b for b in settings.findChildren(QPushButton) if b.isVisible() and b.isEnabled()
        )
        window.activateWindow()
        option = QStyleOptionButton()
        box.initStyleOption(option)
        indicator = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, option, box)
        where = indicator.translated(box.mapTo(window, QPoint(0, 0)))
        edge = read(pixels(window.grab().toImage()), where, "checkbox", EDGE)
        assert edge is not None and edge.ratio >= EDGE, f"{scheme}: {edge}"
        # A focus ring: what focus adds around the button stands out from what is behind it.
        rect = QRect(button.mapTo(window, QPoint(0, 0)), button.size()).adjusted(-3, -3, 3, 3)
        window.setFocus()
        gui.settle(0.05)
        before = pixels(window.grab(rect).toImage()).copy()
        button.setFocus(Qt.FocusReason.TabFocusReason)
        gui.wait(button.hasFocus, timeout=5)
        gui.settle(0.05)
        after = pixels(window.grab(rect).toImage())
        changed = np.any(before != after, axis=2)
        assert changed.any(), f"{scheme}: focus draws nothing"
        ring = ratio(after[changed], before[changed]).max()
        assert ring >= EDGE, f"{scheme}: focus ring {ring:.2f}:1"
