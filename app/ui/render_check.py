"""The self-test's window half: start Qt (a platform plugin that cannot load is a clear failure,
not an abort), check that Japanese text has glyphs, render every page of the real main window."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import qasync
from PySide6.QtCore import QMessageLogContext, Qt, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication, QWidget

from app.core.desktop_config import DesktopConfig
from app.ui.desktop import Desktop
from app.ui.fonts import SAMPLE, ensure_japanese, missing_glyphs
from app.ui.i18n import language, set_language, tr

FAILED = 1
# The offscreen platform's own notes (it has no window manager and no tray): not problems.
OFFSCREEN_NOTES = ("propagateSizeHints", "systemTrayWindowChanged", "does not support raise")


def _messages(mode: QtMsgType, _context: QMessageLogContext, message: str) -> None:
    """Qt's warnings to stderr; a fatal one (no platform plugin) ends the test, saying why."""
    if mode == QtMsgType.QtFatalMsg:
        platform = os.environ.get("QT_QPA_PLATFORM") or "the default"
        print(
            f"llmlb self-test FAILED: Qt cannot start (platform plugin {platform}): {message}",
            file=sys.stderr,
            flush=True,
        )
        os._exit(FAILED)  # Qt aborts right after this handler: leave with our own code first
    if mode in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg) and not any(
        note in message for note in OFFSCREEN_NOTES
    ):
        print(f"Qt: {message}", file=sys.stderr, flush=True)


def start_qt() -> QApplication:
    """The QApplication, as the app makes it, with the Japanese fallback font installed."""
    qInstallMessageHandler(_messages)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    app.setApplicationName("llmlb")
    family = ensure_japanese(app)
    print(
        f"Qt: platform {app.platformName()}; Japanese text: "
        + (f"bundled font {family}" if family else "an installed font"),
        file=sys.stderr,
    )
    return app


def run(app: object, main: Coroutine[Any, Any, int]) -> int:
    """Run `main` on qasync's loop, as the desktop app runs (Qt and asyncio on one loop)."""
    assert isinstance(app, QApplication)
    return int(qasync.run(main))


def japanese_problem(app: object) -> str | None:
    """Why Japanese text would not show (boxes, or nothing drawn), or None when it renders."""
    assert isinstance(app, QApplication)
    missing = missing_glyphs(app.font())
    if missing:
        return (
            f"Japanese text would show as boxes: no font has {missing!r} "
            "(install a Japanese font, e.g. fonts-noto-cjk on Debian; the bundle ships one)"
        )
    image = QImage(400, 60, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setFont(app.font())
    painter.setPen(QColor("black"))
    painter.drawText(image.rect(), Qt.AlignmentFlag.AlignCenter, SAMPLE)
    painter.end()
    return "Japanese text draws nothing" if _blank(image) else None


def translation_problem() -> str | None:
    """Why the Japanese UI would show English (its translation did not load), or None."""
    before = language()
    try:
        set_language("ja")
        shown = tr("Overview")
    finally:
        set_language(before)
    if shown != "Overview":
        return None
    return "the Japanese translation (app/ui/translations/llmlb_ja.qm) did not load"


def _blank(image: QImage) -> bool:
    """Whether every pixel has one colour (nothing was drawn on the background)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB32)  # kept alive while its bits are read
    data = bytes(rgb.constBits())
    return len(data) < 4 or data == data[:4] * (len(data) // 4)


def render_problem(widget: QWidget) -> str | None:
    """Why `widget` does not render (a null or tiny picture, or a blank one), or None."""
    pixmap = widget.grab()
    if pixmap.isNull() or pixmap.width() < 50 or pixmap.height() < 50:
        return f"renders as an empty picture ({pixmap.width()}x{pixmap.height()})"
    if _blank(pixmap.toImage()):
        return f"renders blank ({pixmap.width()}x{pixmap.height()}, one colour, no text)"
    return None


async def window_problems(app: object, base_url: str, token: str, data_dir: str) -> list[str]:
    """Open the real main window on the balancer at `base_url` (never on screen: the platform's
    window is made, not mapped) and render each page; the problems, each naming its page."""
    assert isinstance(app, QApplication)
    desktop = Desktop(app, base_url, token, DesktopConfig(), data_dir, lambda: None)
    window = desktop.window
    window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    problems: list[str] = []
    catalog = asyncio.Event()  # the pages are rendered with the catalog the balancer serves
    desktop.state.hubChanged.connect(lambda: catalog.set() if desktop.state.hub else None)
    desktop.state.start()
    try:
        try:
            async with asyncio.timeout(15.0):
                await catalog.wait()
        except TimeoutError:
            problems.append("the window got no model catalog from the balancer in 15 s")
        window.show()
        pages: list[tuple[str, Callable[[], QWidget]]] = [
            ("Overview", lambda: window.overview),
            ("Models › Model Hub", lambda: _tab(window.models, window.hub)),
            ("Models › Local", lambda: _tab(window.models, window.local)),
            ("Playground", lambda: window.playground),
            ("Nodes", lambda: window.nodes),
            ("Requests", lambda: window.requests),
            ("Logs", lambda: window.logs),
            ("Settings", lambda: window.settings),
        ]
        for name, page in pages:
            window.show_page(name.split(" ")[0])
            widget = page()
            await asyncio.sleep(0.05)  # the page's layout and first paint run on the loop
            problem = render_problem(widget)
            size = f"{widget.width()}x{widget.height()}"
            print(f"window: {name}: {problem or 'rendered'} ({size})", file=sys.stderr)
            if problem:
                problems.append(f"the {name} page {problem}")
    finally:
        await desktop.close()
        window.deleteLater()
    return problems


def _tab(tabs: Any, page: QWidget) -> QWidget:
    tabs.setCurrentWidget(page)
    return page
