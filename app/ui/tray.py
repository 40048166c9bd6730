"""The tray icon: its colour shows the state; its menu opens, copies, pauses and quits."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QColor, QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.model_card import card_state
from app.ui.state import UiState
from app.ui.widgets import CardState, state_text


class TrayState(StrEnum):
    """What the tray icon's colour says about the whole app."""

    SERVING = "serving"
    DOWNLOADING = "downloading"
    ERROR = "error"
    PAUSED = "paused"
    IDLE = "idle"


STATE_COLORS = {
    TrayState.SERVING: "#1e8e3e",
    TrayState.DOWNLOADING: "#1a73e8",
    TrayState.ERROR: "#d93025",
    TrayState.PAUSED: "#80868b",
    TrayState.IDLE: "#80868b",
}


STATE_WORDS = {
    TrayState.SERVING: QT_TR_NOOP("serving"),
    TrayState.DOWNLOADING: QT_TR_NOOP("downloading"),
    TrayState.ERROR: QT_TR_NOOP("a model failed"),
    TrayState.PAUSED: QT_TR_NOOP("paused"),
    TrayState.IDLE: QT_TR_NOOP("idle"),
}


def state_icon(state: TrayState) -> QIcon:
    """A round icon in the state's colour."""
    pixmap = QPixmap(64, 64)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(STATE_COLORS[state]))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(4, 4, 56, 56)
    painter.setBrush(QColor("white"))
    painter.drawEllipse(22, 22, 20, 20)
    painter.end()
    return QIcon(pixmap)


class Tray(QObject):
    """Owns the QSystemTrayIcon and its menu."""

    def __init__(
        self,
        state: UiState,
        open_window: Callable[[], None],
        quit_app: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.icon = QSystemTrayIcon(state_icon(TrayState.IDLE))
        self.current = TrayState.IDLE
        self.notifications: list[tuple[str, str]] = []
        self._menu_entries: list[tuple[str, CardState]] | None = None
        self.menu = QMenu()
        self.open_action = QAction(tr("Open"), self.menu)
        self.open_action.triggered.connect(open_window)
        self.copy_action = QAction(tr("Copy endpoint URL"), self.menu)
        self.copy_action.triggered.connect(self.copy_url)
        self.models_menu = QMenu(tr("Models"), self.menu)
        self.pause_action = QAction(tr("Pause serving"), self.menu)
        self.pause_action.triggered.connect(self.toggle_pause)
        self.quit_action = QAction(tr("Quit"), self.menu)
        self.quit_action.triggered.connect(quit_app)
        for item in (self.open_action, self.copy_action):
            self.menu.addAction(item)
        self.menu.addMenu(self.models_menu)
        self.menu.addSeparator()
        self.menu.addAction(self.pause_action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(
            lambda reason: (
                open_window() if reason == QSystemTrayIcon.ActivationReason.Trigger else None
            )
        )
        state.hubChanged.connect(self.refresh)
        state.notify.connect(self.show_notification)
        self.refresh()
        self.icon.show()

    def retranslate(self) -> None:
        """Its menu in the language now installed."""
        self.open_action.setText(tr("Open"))
        self.copy_action.setText(tr("Copy endpoint URL"))
        self.models_menu.setTitle(tr("Models"))
        self.quit_action.setText(tr("Quit"))
        self._menu_entries = None  # the models submenu and tooltip, redone
        self.refresh()

    def overall_state(self) -> TrayState:
        """The worst news first: paused, a model failed, downloads under way, else serving."""
        if self.state.serving_paused:
            return TrayState.PAUSED
        states = [card_state(m) for m in self.state.models]
        if CardState.ERROR in states:
            return TrayState.ERROR
        if CardState.DOWNLOADING in states or CardState.REGISTERED in states:
            return TrayState.DOWNLOADING
        return TrayState.SERVING if CardState.READY in states else TrayState.IDLE

    def refresh(self) -> None:
        """Icon colour, tooltip, pause label, models submenu (each redone only on a change)."""
        state = self.overall_state()
        if state != self.current or self._menu_entries is None:
            self.current = state
            self.icon.setIcon(state_icon(state))
            words = tr(STATE_WORDS[state])
            self.icon.setToolTip(f"llmlb — {words}\n{self.state.client.openai_url}")
        self.pause_action.setText(
            tr("Resume serving") if self.state.serving_paused else tr("Pause serving")
        )
        entries = [(m.get("name") or m["id"], card_state(m)) for m in self.state.models]
        if entries == self._menu_entries:
            return
        self._menu_entries = entries
        self.models_menu.clear()
        for name, model_state in entries:
            self.models_menu.addAction(f"{name} — {state_text(model_state)}").setEnabled(False)
        if not entries:
            self.models_menu.addAction(tr("No model registered")).setEnabled(False)

    def toggle_pause(self) -> None:
        """Pause or resume /v1."""
        self.state.set_paused(not self.state.serving_paused)

    def copy_url(self) -> None:
        """Put the endpoint on the clipboard."""
        QGuiApplication.clipboard().setText(self.state.client.openai_url)

    def show_notification(self, title: str, text: str) -> None:
        """A desktop notification (kept for tests and for systems without a tray)."""
        self.notifications.append((title, text))
        if QSystemTrayIcon.supportsMessages() and QSystemTrayIcon.isSystemTrayAvailable():
            self.icon.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 5000)
