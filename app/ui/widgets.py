"""Small shared widgets: status badges, a banner for errors, non-blocking confirmations."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.system import Fit
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.theme import set_property


class CardState(StrEnum):
    """A model as the GUI shows it (badge, tray, Local tab): its wire states folded in one."""

    AVAILABLE = "available"
    REGISTERED = "registered"
    DOWNLOADING = "downloading"
    READY = "ready"
    ERROR = "error"


# What a badge says, marked for Qt's lupdate (tr() looks the words up when they are shown).
STATE_TEXT: dict[str, str] = {
    CardState.AVAILABLE: QT_TR_NOOP("available"),
    CardState.REGISTERED: QT_TR_NOOP("registered"),
    CardState.DOWNLOADING: QT_TR_NOOP("downloading"),
    CardState.READY: QT_TR_NOOP("ready"),
    CardState.ERROR: QT_TR_NOOP("error"),
}
FIT_TEXT: dict[str, str] = {
    Fit.FITS: QT_TR_NOOP("fits"),
    Fit.SLOW: QT_TR_NOOP("may be slow"),
    Fit.TOO_BIG: QT_TR_NOOP("won't fit"),
}


def state_text(state: str) -> str:
    """A model's or a fit's state in words, in the language in force."""
    return tr(STATE_TEXT.get(state) or FIT_TEXT.get(state) or state)


class Badge(QLabel):
    """A coloured pill naming a state."""

    def __init__(self, state: str = CardState.AVAILABLE, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = ""
        self._shown: tuple[str, str | None] | None = None
        self.set_state(state)

    def set_state(self, state: str, text: str | None = None) -> None:
        """Show `state` (its colours) with `text` (default: the state's name)."""
        if (state, text) == self._shown:
            return  # restyling costs milliseconds per badge: only on a change
        self._shown = (state, text)
        self.state = state
        label = text or state_text(state)
        if state == CardState.READY:
            label = "✓ " + label
        self.setText(label)
        self.setAccessibleName(tr("status: {state}").format(state=label))
        set_property(self, "badge", str(state))  # its colours: app/ui/theme.py


class Banner(QFrame):
    """A strip at the top of the window: a problem that needs attention (dismissible), or a
    state the user chose (an action button undoes it, e.g. Resume)."""

    def __init__(
        self,
        parent: QWidget | None = None,
        kind: str = "error",
        action: str | None = None,
        dismissible: bool = True,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setProperty("kind", kind)  # its colours: app/ui/theme.py
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self.action: QPushButton | None = None
        if action is not None:
            self.action = QPushButton(action)
            layout.addWidget(self.action)
        if dismissible:
            close = QPushButton("✕")
            close.setAccessibleName(tr("dismiss message"))
            close.setFlat(True)
            close.clicked.connect(self.hide)
            layout.addWidget(close)
        self.hide()

    def show_message(self, text: str) -> None:
        """Show a problem in plain words."""
        self.label.setText(text)
        self.setAccessibleDescription(text)
        self.show()


def selectable_by_keyboard(label: QLabel) -> None:
    """Text a user copies (a message, a command): a Tab stop, selected with Shift+arrows and
    copied with Ctrl+C, with a focus ring (app/ui/theme.py), as well as by mouse."""
    label.setTextInteractionFlags(
        Qt.TextInteractionFlag.TextSelectableByMouse
        | Qt.TextInteractionFlag.TextSelectableByKeyboard
    )
    label.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Qt gives such a label click focus only
    set_property(label, "keyboard", True)


class FormDialog(QDialog):
    """A dialog of fields above an error line and OK (named by the subclass) / Cancel; OK
    runs submit(), which sends and calls busy(), then accept() or show_error()."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.body = QVBoxLayout(self)  # the subclass adds its fields, then calls finish()

    def finish(self, ok_text: str, width: int) -> None:
        """The error line (hidden until needed) and the buttons, below the fields."""
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setProperty("tone", "error")
        self.error.setAccessibleName(tr("Error"))
        self.error.hide()
        self.body.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        self.body.addWidget(self.buttons)
        self.resize(width, self.sizeHint().height())

    def submit(self) -> None:
        """Check the fields and send them (the subclass's)."""
        raise NotImplementedError

    def busy(self) -> None:
        """Sent: the buttons wait for the answer, the old error goes."""
        self.buttons.setEnabled(False)
        self.error.hide()

    def show_error(self, text: str) -> None:
        """Why it did not work, in words; the buttons work again."""
        self.buttons.setEnabled(True)
        self.error.setText(text)
        self.error.show()


def confirm(
    parent: QWidget,
    title: str,
    text: str,
    on_yes: Callable[[], object],
    action: str | None = None,
) -> QMessageBox:
    """Ask before a destructive action (`action` names its button: Delete by default), without
    blocking the event loop."""
    box = QMessageBox(
        QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Cancel, parent
    )
    yes = box.addButton(action or tr("Delete"), QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)

    def done(_result: int) -> None:
        if box.clickedButton() is yes:
            on_yes()

    box.finished.connect(done)
    box.open()
    parent.setProperty("confirmation", box)
    return box


def human_bytes(n: int | float | None) -> str:
    """1234567 → '1.2 MB' (decimal units, as disks and Hugging Face count)."""
    if not n:
        return "—"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def human_count(n: int | None) -> str:
    """12345 → '12.3k'."""
    if n is None:
        return "—"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)
