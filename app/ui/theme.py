"""Light and dark palettes that follow the OS colour scheme, live."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

# High-contrast pairs (WCAG AAA for body text on both schemes).
LIGHT = {
    "window": "#f6f7f9",
    "base": "#ffffff",
    "text": "#111418",
    "muted": "#3d4450",
    "accent": "#0b57d0",
    "button": "#e8eaef",
}
DARK = {
    "window": "#16181c",
    "base": "#1f2227",
    "text": "#f1f3f6",
    "muted": "#c3c8d0",
    "accent": "#8ab4f8",
    "button": "#2b2f36",
}


_scheme = Qt.ColorScheme.Unknown


def is_dark() -> bool:
    """True when the OS asks for dark."""
    return _scheme == Qt.ColorScheme.Dark


def colors() -> dict[str, str]:
    """The colours in force."""
    return DARK if is_dark() else LIGHT


def apply(app: QApplication, scheme: Qt.ColorScheme | None = None) -> None:
    """Set the palette for `scheme` (default: what the OS says now)."""
    global _scheme
    _scheme = scheme if scheme is not None else QGuiApplication.styleHints().colorScheme()
    c = colors()
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Window, QColor(c["window"]))
    palette.setColor(QPalette.ColorRole.WindowText, QColor(c["text"]))
    palette.setColor(QPalette.ColorRole.Base, QColor(c["base"]))
    palette.setColor(QPalette.ColorRole.AlternateBase, QColor(c["window"]))
    palette.setColor(QPalette.ColorRole.Text, QColor(c["text"]))
    palette.setColor(QPalette.ColorRole.Button, QColor(c["button"]))
    palette.setColor(QPalette.ColorRole.ButtonText, QColor(c["text"]))
    palette.setColor(QPalette.ColorRole.Highlight, QColor(c["accent"]))
    palette.setColor(QPalette.ColorRole.HighlightedText, QColor(c["base"]))
    palette.setColor(QPalette.ColorRole.PlaceholderText, QColor(c["muted"]))
    palette.setColor(QPalette.ColorRole.ToolTipBase, QColor(c["base"]))
    palette.setColor(QPalette.ColorRole.ToolTipText, QColor(c["text"]))
    app.setPalette(palette)


def follow_os(app: QApplication) -> None:
    """Apply now and again whenever the OS scheme changes."""
    apply(app)
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda scheme: apply(app, scheme))
