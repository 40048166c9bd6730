"""Playground pieces: one message (Markdown, rendered alone), the input box's keys."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

BLOCK_CHARS = 1500  # a paragraph longer than this is shown as several, cut at spaces


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


class MessageWidget(QFrame):
    """A chat message; streaming updates only this widget (the rest is never re-rendered)."""

    retry = Signal()

    def __init__(self, role: str, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.setObjectName("message")
        tint = "#e8f0fe" if role == "user" else "transparent"
        self.setStyleSheet(f"#message {{ background: {tint}; border-radius: 8px; }}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        self.who = QLabel("You" if role == "user" else "Assistant")
        self.who.setStyleSheet("font-weight: 600;")
        layout.addWidget(self.who)
        # The text is shown as a column of Markdown blocks (paragraphs, code blocks): while
        # an answer streams in, only the block that changed is rendered again.
        self.body = QVBoxLayout()
        self.body.setSpacing(4)
        layout.addLayout(self.body)
        self.blocks: list[QLabel] = []
        self._error = False
        bottom = QHBoxLayout()
        self.stats = QLabel()
        self.stats.setStyleSheet("color: #5f6368;")
        self.retry_button = QPushButton("Retry")
        self.retry_button.setAccessibleName("retry this answer")
        self.retry_button.clicked.connect(self.retry.emit)
        self.retry_button.hide()
        self.copy_button = QPushButton("Copy code")
        self.copy_button.setAccessibleName("copy the code blocks of this message")
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
                label = QLabel()
                label.setWordWrap(True)
                label.setTextFormat(Qt.TextFormat.MarkdownText)
                label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                if self._error:
                    label.setStyleSheet("color: #b3261e;")
                self.body.addWidget(label)
                self.blocks.append(label)
            if self.blocks[i].text() != part:
                self.blocks[i].setText(part)
        while len(self.blocks) > len(parts):
            label = self.blocks.pop()
            self.body.removeWidget(label)
            label.deleteLater()
        self.copy_button.setVisible("```" in text)
        self.setAccessibleName(f"{self.who.text()}: {text[:200]}")

    def code_blocks(self) -> list[str]:
        """The contents of the message's fenced code blocks."""
        parts = self.text.split("```")
        return [block.split("\n", 1)[1] if "\n" in block else block for block in parts[1::2]]

    def copy_code(self) -> None:
        """Put the code blocks on the clipboard."""
        QGuiApplication.clipboard().setText("\n".join(self.code_blocks()).strip("\n"))

    def show_error(self, reason: str) -> None:
        """A failed answer: the error replaces what had arrived, with a Retry button."""
        self._error = True
        self.set_text(f"**Error:** {reason}")
        for label in self.blocks:
            label.setStyleSheet("color: #b3261e;")
        self.retry_button.show()


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
