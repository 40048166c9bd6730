"""Playground pieces: one message (Markdown, rendered alone), file chips, the input's keys."""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QFontDatabase,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.types import MessageStatus
from app.core.wire import JsonObject
from app.ui.chat_thinking import ThinkingBlock
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.theme import set_property
from app.ui.widgets import selectable_by_keyboard

BLOCK_CHARS = 1500  # a paragraph longer than this is shown as several, cut at spaces
BREAK_EVERY = 24  # a run of text with no space may wrap after this many characters
_LONG_RUN = re.compile(rf"\S{{{BREAK_EVERY + 1},}}")
ZWSP = "\u200b"  # zero-width space: a place to wrap that shows nothing


def breakable(text: str) -> str:
    """`text` with a place to wrap every BREAK_EVERY characters of an unbroken run (a URL,
    long output), so a bubble never needs more width than the window has."""

    def cut(m: re.Match[str]) -> str:
        run = m.group(0)
        return ZWSP.join(run[i : i + BREAK_EVERY] for i in range(0, len(run), BREAK_EVERY))

    return _LONG_RUN.sub(cut, text)


class TextBlock(QLabel):
    """One block of a message: selectable, and copied as written (without the invisible wrap
    points `breakable` adds, which would break a copied URL or command)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Its height at each width, until its text, font or style changes. Qt's label lays its
        # whole text out again each time the layout asks, and while an answer streams the
        # layout asks every block of the message at each repaint: 7,000 characters cost
        # 20 ms a repaint without this, 4 ms with it (bench/ui.py's Playground stall).
        self._heights: dict[int, int] = {}

    def setText(self, text: str) -> None:
        """As QLabel's; the heights it had are forgotten."""
        self._heights.clear()
        super().setText(text)

    def setTextFormat(self, fmt: Qt.TextFormat) -> None:
        """As QLabel's; the heights it had are forgotten."""
        self._heights.clear()
        super().setTextFormat(fmt)

    def heightForWidth(self, width: int) -> int:
        """QLabel's answer, remembered per width."""
        height = self._heights.get(width)
        if height is None:
            height = self._heights[width] = super().heightForWidth(width)
        return height

    def changeEvent(self, event: QEvent) -> None:
        """A new font or style lays the text out differently: forget the heights."""
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._heights.clear()
        super().changeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Ctrl+C (the platform's Copy) puts the clean selection on the clipboard."""
        if event.matches(QKeySequence.StandardKey.Copy) and self.hasSelectedText():
            QGuiApplication.clipboard().setText(self.selectedText().replace(ZWSP, ""))
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        """Copy and Select all, copying the clean text."""
        menu = QMenu(self)
        copy = menu.addAction(tr("Copy"))
        copy.setEnabled(self.hasSelectedText())
        copy.triggered.connect(
            lambda: QGuiApplication.clipboard().setText(self.selectedText().replace(ZWSP, ""))
        )
        menu.addAction(tr("Select all"), lambda: self.setSelection(0, len(self.text())))
        menu.exec(event.globalPos())


def shown_markdown(block: str) -> str:
    """A Markdown paragraph as shown: the writer's line breaks kept (as hard breaks)."""
    return "  \n".join(breakable(block).split("\n"))


def fenced_code(block: str) -> str | None:
    """The code inside a fenced block, or None for other blocks."""
    if not block.lstrip().startswith("```"):
        return None
    lines = block.strip("\n").split("\n")[1:]
    if lines and lines[-1].strip().startswith("```"):
        lines = lines[:-1]
    return "\n".join(lines)


def split_blocks(text: str) -> list[str]:
    """Markdown paragraphs (a fenced code block stays whole); long paragraphs cut at spaces."""
    blocks: list[str] = []
    current: list[str] = []
    fence = False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fence = not fence
        if not line.strip() and not fence and current:
            blocks.append("\n".join(current))
            current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    out: list[str] = []
    for block in blocks:
        while len(block) > BLOCK_CHARS and not block.lstrip().startswith("```"):
            cut = block.rfind(" ", BLOCK_CHARS // 2, BLOCK_CHARS)
            cut = cut if cut > 0 else BLOCK_CHARS
            out.append(block[:cut])
            block = block[cut:].lstrip(" ")
        out.append(block)
    return out or [""]


def figures(timings: JsonObject | None, arrival_ms: int | None) -> JsonObject:
    """An answer's time to first token and tokens/s as the node measured them (its
    `timings`): tokens arrive gathered, so their arrival times say nothing of the speed.
    Without timings (a server that sends none) no speed, and the first token as it came."""
    if not timings:
        return {"ttft_ms": arrival_ms, "tokens_per_s": None}
    n, ms, prompt_ms = (timings.get(k) for k in ("predicted_n", "predicted_ms", "prompt_ms"))
    # One token has no generation time to speak of (it ends the prompt's evaluation).
    fast = isinstance(n, int) and n > 1 and isinstance(ms, int | float) and ms > 0
    return {
        "ttft_ms": round(prompt_ms) if isinstance(prompt_ms, int | float) else arrival_ms,
        "tokens_per_s": round(n * 1000 / ms, 1) if fast else None,  # type: ignore[operator]
        "timings": timings,
    }


ENDED: dict[str, str] = {  # how a message ended, in words (a finished one says nothing)
    MessageStatus.STOPPED: QT_TR_NOOP("stopped"),
    MessageStatus.ERROR: QT_TR_NOOP("error"),
    MessageStatus.INTERRUPTED: QT_TR_NOOP("interrupted"),
}


def stats_text(stats: JsonObject, status: str) -> str:
    """'stopped · 24 tokens · first token 80 ms · 41.2 tok/s · node n1' for a message."""
    parts = [] if status == MessageStatus.DONE else [tr(ENDED.get(status, status))]
    if stats.get("tokens") is not None:
        parts.append(tr("{n} tokens").format(n=stats["tokens"]))
    if stats.get("ttft_ms") is not None:
        parts.append(tr("first token {ms} ms").format(ms=stats["ttft_ms"]))
    if stats.get("tokens_per_s"):
        parts.append(f"{stats['tokens_per_s']} tok/s")
    if stats.get("node"):
        parts.append(tr("node {node}").format(node=stats["node"]))
    return " · ".join(parts)


class MessageWidget(QFrame):
    """A chat message; streaming updates only this widget (the rest is never re-rendered)."""

    retry = Signal()

    def __init__(
        self,
        role: str,
        text: str = "",
        files: list[str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.role = role
        self.setObjectName("message")
        self.setProperty("role", role)  # the user's own messages are tinted (app/ui/theme.py)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        self.who = QLabel(tr("You") if role == "user" else tr("Assistant"))
        self.who.setObjectName("who")
        layout.addWidget(self.who)
        self.thinking = ThinkingBlock()  # a reasoning model's thought, collapsed
        layout.addWidget(self.thinking)
        # The text is shown as a column of Markdown blocks (paragraphs, code blocks): while
        # an answer streams in, only the block that changed is rendered again.
        self.body = QVBoxLayout()
        self.body.setSpacing(4)
        layout.addLayout(self.body)
        self.files = AttachmentChips(removable=False)
        self.files.set_names(files or [])
        layout.addWidget(self.files)
        self.blocks: list[TextBlock] = []
        self._error = False
        bottom = QHBoxLayout()
        self.stats = QLabel()
        self.stats.setProperty("tone", "muted")
        # Wraps: on one line the figures and the node's id made the message wider than a narrow
        # transcript, which then scrolled sideways and cut every message's start.
        self.stats.setWordWrap(True)
        self.retry_button = QPushButton(tr("Retry"))
        self.retry_button.setAccessibleName(tr("retry this answer"))
        self.retry_button.clicked.connect(self.retry.emit)
        self.retry_button.hide()
        self.copy_button = QPushButton(tr("Copy code"))
        self.copy_button.setAccessibleName(tr("copy the code blocks of this message"))
        self.copy_button.clicked.connect(self.copy_code)
        self.copy_button.hide()
        bottom.addWidget(self.stats, 1)
        bottom.addWidget(self.copy_button)
        bottom.addWidget(self.retry_button)
        layout.addLayout(bottom)
        self.text = ""
        self.set_text(text)

    def set_text(self, text: str) -> None:
        """Show `text` as Markdown."""
        self.text = text
        parts = split_blocks(text or "…")
        for i, part in enumerate(parts):
            if i == len(self.blocks):
                label = TextBlock()
                label.setWordWrap(True)
                selectable_by_keyboard(label)
                # Never wider than the transcript: the text wraps instead (at BREAK_EVERY).
                label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
                if self._error:
                    label.setProperty("tone", "error")
                self.body.addWidget(label)
                # Tab reads the message in order: its thinking, its blocks, then its buttons
                # (a block added as the answer streams would otherwise come last).
                QWidget.setTabOrder(self.blocks[-1] if self.blocks else self.thinking.body, label)
                self.blocks.append(label)
                QWidget.setTabOrder(label, self.copy_button)
                QWidget.setTabOrder(self.copy_button, self.retry_button)
            self._show_block(self.blocks[i], part)
        while len(self.blocks) > len(parts):
            label = self.blocks.pop()
            self.body.removeWidget(label)
            label.deleteLater()
        self.copy_button.setVisible("```" in text)
        self.setAccessibleName(f"{self.who.text()}: {text[:200]}")

    def tab_stops(self) -> list[QWidget]:
        """What Tab visits in this message, in order (shown or not)."""
        thinking = [self.thinking.toggle, self.thinking.body]
        return [*thinking, *self.blocks, self.copy_button, self.retry_button]

    def _show_block(self, label: QLabel, part: str) -> None:
        # A code block as plain monospaced text (Markdown's <pre> would not wrap at all).
        code = fenced_code(part)
        fmt = Qt.TextFormat.PlainText if code is not None else Qt.TextFormat.MarkdownText
        shown = breakable(code) if code is not None else shown_markdown(part)
        if label.textFormat() != fmt:
            label.setTextFormat(fmt)
            mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
            label.setFont(mono if code is not None else self.font())
            set_property(label, "code", code is not None)
        if label.text() != shown:
            label.setText(shown)

    def code_blocks(self) -> list[str]:
        """The contents of the message's fenced code blocks."""
        parts = self.text.split("```")
        return [block.split("\n", 1)[1] if "\n" in block else block for block in parts[1::2]]

    def copy_code(self) -> None:
        """Put the code blocks on the clipboard."""
        QGuiApplication.clipboard().setText("\n".join(self.code_blocks()).strip("\n"))

    def show_stats(self, stats: JsonObject, status: str) -> None:
        """Show the answer's figures under it, and its reasoning (saved in the stats) above."""
        self.stats.setText(stats_text(stats, status))
        self.thinking.show_saved(stats)

    def show_error(self, reason: str) -> None:
        """A failed answer: the error replaces what had arrived, with a Retry button."""
        self._error = True
        self.set_text(f"**Error:** {reason}")
        for label in self.blocks:
            set_property(label, "tone", "error")
        self.retry_button.show()


def tab_after(messages: list[MessageWidget], first: QWidget, stops: list[QWidget]) -> None:
    """Put `stops` (a new message's, the files to send's) after the messages' own in the Tab
    order, or after `first` before any message, as the page reads: a widget added to a built
    window comes last otherwise."""
    anchor = messages[-1].tab_stops()[-1] if messages else first
    for stop in stops:
        QWidget.setTabOrder(anchor, stop)
        anchor = stop


class AttachmentChips(QWidget):
    """Files as chips: a file icon (a standard one, so no font can lack it) and the name;
    pending files also get a button that takes them off the message."""

    removed = Signal(int)

    def __init__(self, removable: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.removable = removable
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.chips: list[QFrame] = []
        self._names: list[str] = []

    def set_names(self, names: list[str]) -> None:
        """Show one chip per file name."""
        while self.row.count():
            item = self.row.takeAt(0)
            if item is not None and (w := item.widget()) is not None:
                w.deleteLater()
        self.chips, self._names = [], list(names)
        style = self.style()
        for i, name in enumerate(names):
            chip = QFrame()
            chip.setObjectName("chip")
            chip.setAccessibleName(tr("attached file {name}").format(name=name))
            line = QHBoxLayout(chip)
            line.setContentsMargins(6, 2, 6, 2)
            icon = QLabel()
            icon.setPixmap(style.standardIcon(QStyle.StandardPixmap.SP_FileIcon).pixmap(16, 16))
            line.addWidget(icon)
            line.addWidget(QLabel(name))
            if self.removable:
                remove = QToolButton()
                remove.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_DialogCloseButton))
                remove.setAccessibleName(tr("remove {name}").format(name=name))
                remove.setToolTip(tr("Remove this file"))
                remove.setAutoRaise(True)
                remove.clicked.connect(lambda _c=False, i=i: self.removed.emit(i))
                line.addWidget(remove)
            self.row.addWidget(chip)
            self.chips.append(chip)
        self.row.addStretch(1)
        self.setVisible(bool(names))

    def names(self) -> list[str]:
        """The files shown, in order."""
        return list(self._names)

    def tab_stops(self) -> list[QWidget]:
        """The remove buttons, in order (what Tab visits here)."""
        return list(self.findChildren(QToolButton))


class ChatKeys(QObject):
    """Enter sends, Shift+Enter starts a new line, Esc stops the answer."""

    send = Signal()
    stop = Signal()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier
            ):
                self.send.emit()
                return True
            if key == Qt.Key.Key_Escape:
                self.stop.emit()
                return True
        return False
