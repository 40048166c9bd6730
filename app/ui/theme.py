"""Light and dark themes that follow the OS colour scheme, live: every colour the UI shows.

Widgets never name a colour. They say what a text is (a `tone`: muted, error, warning), what a
badge shows (`badge`: its state) or which part they are (an object name), and one application
style sheet, made from the scheme's colours, styles them all. A scheme switch sets the palette
and that sheet again, which restyles every widget, including those with style sheets of their
own: Qt keeps the palette such a widget had when it was styled, which is why the sidebar stayed
light after a switch while it had its own sheet.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleOption, QWidget

# Pairs chosen for WCAG AAA (7:1) for text on the window and base colours of each scheme, and
# at least 3:1 for the edges of controls (checkboxes, focus rings) against them.
LIGHT = {
    "window": "#f6f7f9",
    "base": "#ffffff",
    "text": "#111418",
    "muted": "#3d4450",
    "accent": "#0b57d0",
    "button": "#e8eaef",
    "error": "#a50e0e",
    "warning": "#7a4100",
    "edge": "#5f6670",  # control outlines (non-text: 3:1 is enough, this has more)
    "user": "#dde7fb",  # the user's own messages
    "code": "#e9ebef",
    "banner": "#8a1010",
    "banner_paused": "#6b3f00",
    "banner_text": "#ffffff",
}
DARK = {
    "window": "#16181c",
    "base": "#1f2227",
    "text": "#f1f3f6",
    "muted": "#c3c8d0",
    "accent": "#8ab4f8",
    "button": "#2b2f36",
    "error": "#ffb4ab",
    "warning": "#ffcc80",
    "edge": "#9aa3b0",
    "user": "#25344b",
    "code": "#2a2e35",
    "banner": "#8a1010",
    "banner_paused": "#6b3f00",
    "banner_text": "#ffffff",
}

# A state's (text, background) as a badge or a table cell shows it, per scheme.
LIGHT_STATES = {
    "available": ("#3d4450", "#e8eaef"),
    "registered": ("#6b3f00", "#ffe8c2"),
    "downloading": ("#0b3d91", "#d6e4ff"),
    "ready": ("#0b5c2a", "#d3f5df"),
    "error": ("#8a1010", "#ffd9d9"),
    "fits": ("#0b5c2a", "#d3f5df"),
    "slow": ("#6b3f00", "#ffe8c2"),
    "too_big": ("#8a1010", "#ffd9d9"),
    # Nodes (their status cell) and their load.
    "online": ("#0b5c2a", "#d3f5df"),
    "registering": ("#0b3d91", "#d6e4ff"),
    "pending": ("#6b3f00", "#ffe8c2"),
    "offline": ("#3d4450", "#e8eaef"),
    "high": ("#5c4a00", "#fff1a8"),
    "full": ("#8a1010", "#ffd9d9"),
}
DARK_STATES = {
    "available": ("#d5d9e0", "#2b2f36"),
    "registered": ("#ffd08a", "#3d2a0c"),
    "downloading": ("#bcd3ff", "#17294d"),
    "ready": ("#a8e6bd", "#10331d"),
    "error": ("#ffb4ab", "#4a1414"),
    "fits": ("#a8e6bd", "#10331d"),
    "slow": ("#ffd08a", "#3d2a0c"),
    "too_big": ("#ffb4ab", "#4a1414"),
    "online": ("#a8e6bd", "#10331d"),
    "registering": ("#bcd3ff", "#17294d"),
    "pending": ("#ffd08a", "#3d2a0c"),
    "offline": ("#d5d9e0", "#2b2f36"),
    "high": ("#ffe58a", "#3b3208"),
    "full": ("#ffb4ab", "#4a1414"),
}

_scheme = Qt.ColorScheme.Unknown
_following: list[bool] = []
_style: list[QStyle] = []  # the style installed once for the app (kept alive here)


def is_dark() -> bool:
    """True when the dark scheme is in force."""
    return _scheme == Qt.ColorScheme.Dark


def colors() -> dict[str, str]:
    """The colours in force."""
    return DARK if is_dark() else LIGHT


def state_colors(state: str) -> tuple[str, str]:
    """(text, background) for a state's badge or cell, in the scheme in force."""
    table = DARK_STATES if is_dark() else LIGHT_STATES
    return table.get(state, table["available"])


def style_sheet() -> str:
    """The application's style sheet for the scheme in force."""
    c = colors()
    states = DARK_STATES if is_dark() else LIGHT_STATES
    badges = "".join(
        f'QLabel[badge="{state}"] {{ color: {fg}; background: {bg}; }}'
        for state, (fg, bg) in states.items()
    )
    return (
        f'QLabel[tone="muted"], QToolButton[tone="muted"] {{ color: {c["muted"]}; }}'
        f'QLabel[tone="error"] {{ color: {c["error"]}; }}'
        f'QLabel[tone="warning"] {{ color: {c["warning"]}; }}'
        "QLabel[badge] { border-radius: 9px; padding: 2px 9px; font-weight: 600; }"
        f"{badges}"
        # Any app sheet widens spin boxes by their buttons' width again (Qt's sheet style adds
        # it to what the base style counted); this gives most of it back, keeping the
        # Playground's settings within an 800 px window.
        "QAbstractSpinBox { padding-right: -16px; }"
        # A ring while the sidebar has focus (arrows switch sections), in a border kept clear.
        "QListWidget#sidebar { border: 2px solid transparent; font-size: 11pt; }"
        f"QListWidget#sidebar:focus {{ border-color: {c['accent']}; }}"
        "QListWidget#sidebar::item { padding: 9px 14px; }"
        f"QFrame#banner {{ background: {c['banner']}; }}"
        f'QFrame#banner[kind="paused"] {{ background: {c["banner_paused"]}; }}'
        f'QFrame#banner QLabel, QFrame#banner QPushButton[flat="true"] '
        f"{{ color: {c['banner_text']}; }}"
        "QFrame#message { border-radius: 8px; }"
        f'QFrame#message[role="user"] {{ background: {c["user"]}; }}'
        "QLabel#who { font-weight: 600; }"
        f'QLabel[code="true"] {{ background: {c["code"]}; padding: 4px; }}'
        f"QLabel#thought {{ border-left: 3px solid {c['edge']}; padding-left: 8px; }}"
        "QLabel#omitted { font-style: italic; padding: 4px; }"
        # Text selected from the keyboard (messages, commands): a ring while it has focus.
        'QLabel[keyboard="true"] { border: 2px solid transparent; border-radius: 3px; }'
        f'QLabel[keyboard="true"]:focus {{ border-color: {c["accent"]}; }}'
        f"QFrame#chip {{ border: 1px solid {c['edge']}; border-radius: 6px; }}"
        f'QFrame#card[highlighted="true"] {{ border: 2px solid {c["accent"]}; '
        "border-radius: 6px; }"
    )


def set_property(widget: QWidget, name: str, value: object) -> None:
    """Set a property the style sheet selects on, and restyle the widget for it (Qt does not
    restyle on a property change by itself)."""
    if widget.property(name) == value:
        return  # restyling costs a little per widget: only on a change
    widget.setProperty(name, value)
    if not widget.testAttribute(Qt.WidgetAttribute.WA_WState_Polished):
        return  # styled when first shown, with the property as it is then
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)


_FOCUS_RING = (
    QStyle.PrimitiveElement.PE_PanelButtonCommand,
    QStyle.PrimitiveElement.PE_PanelButtonBevel,
    QStyle.PrimitiveElement.PE_FrameLineEdit,
    QStyle.PrimitiveElement.PE_PanelButtonTool,
    QStyle.PrimitiveElement.PE_Frame,  # lists, tables, text boxes: the base style marks none
)


class ReadableStyle(QProxyStyle):
    """The platform's style, with what it draws too faintly on a dark window made to read:
    checkbox and radio edges in the `edge` colour, and a 2 px focus ring in the accent."""

    def drawPrimitive(
        self,
        element: QStyle.PrimitiveElement,
        option: QStyleOption,
        painter: QPainter,
        widget: QWidget | None = None,
    ) -> None:
        """Draw as the base style does, then the edges and rings it leaves faint."""
        c = colors()
        if element == QStyle.PrimitiveElement.PE_FrameFocusRect:
            self._ring(painter, option, c["accent"])  # instead of the base style's faint one
            return
        super().drawPrimitive(element, option, painter, widget)
        focused = bool(option.state & QStyle.StateFlag.State_HasFocus)
        if element == QStyle.PrimitiveElement.PE_IndicatorCheckBox:
            self._box(painter, option, c["accent"] if focused else c["edge"], 2.0)
        elif element == QStyle.PrimitiveElement.PE_IndicatorRadioButton:
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(QColor(c["accent"] if focused else c["edge"]), 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(QRectF(option.rect).adjusted(1, 1, -1, -1))
            painter.restore()
        elif element in _FOCUS_RING and focused:
            self._ring(painter, option, c["accent"])

    def drawControl(
        self,
        element: QStyle.ControlElement,
        option: QStyleOption,
        painter: QPainter,
        widget: QWidget | None = None,
    ) -> None:
        """Draw as the base style does, and ring a focused tab, which it leaves unmarked."""
        super().drawControl(element, option, painter, widget)
        focused = bool(option.state & QStyle.StateFlag.State_HasFocus)
        if element == QStyle.ControlElement.CE_TabBarTabLabel and focused:
            self._ring(painter, option, colors()["accent"])

    @staticmethod
    def _box(painter: QPainter, option: QStyleOption, color: str, radius: float) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(color), 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(
            QRectF(option.rect).adjusted(0.75, 0.75, -0.75, -0.75), radius, radius
        )
        painter.restore()

    @staticmethod
    def _ring(painter: QPainter, option: QStyleOption, color: str) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(color), 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(QRectF(option.rect).adjusted(1, 1, -1, -1), 3, 3)
        painter.restore()


def apply(app: QApplication, scheme: Qt.ColorScheme | None = None) -> None:
    """Set the palette and style sheet for `scheme` (default: what the OS says now)."""
    global _scheme
    scheme = scheme if scheme is not None else QGuiApplication.styleHints().colorScheme()
    if _style and scheme == _scheme and app.styleSheet():
        return  # restyling every widget costs: only on a change
    _scheme = scheme
    if not _style:  # once: later, app.style() is the sheet's style wrapping it
        _style.append(ReadableStyle(app.style().name()))
        app.setStyle(_style[0])
    c = colors()
    palette = QPalette()
    roles = QPalette.ColorRole
    for role, key in (
        (roles.Window, "window"),
        (roles.WindowText, "text"),
        (roles.Base, "base"),
        (roles.AlternateBase, "window"),
        (roles.Text, "text"),
        (roles.Button, "button"),
        (roles.ButtonText, "text"),
        (roles.Highlight, "accent"),
        (roles.HighlightedText, "base"),
        (roles.PlaceholderText, "muted"),
        (roles.ToolTipBase, "base"),
        (roles.ToolTipText, "text"),
        (roles.Link, "accent"),
        (roles.Accent, "accent"),
    ):
        palette.setColor(role, QColor(c[key]))
    # Disabled text: still readable (4.5:1), told apart by its muted colour.
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(c["muted"]))
    app.setPalette(palette)
    # A new sheet restyles every widget, with the palette just set.
    app.setStyleSheet(style_sheet())


def follow_os(app: QApplication) -> None:
    """Apply now and again whenever the OS scheme changes."""
    apply(app)
    if not _following:  # once per app, however many windows it makes
        _following.append(True)
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda s: apply(app, s))
