"""A model's reasoning in the Playground: kept apart from its answer as it streams, shown in a
collapsed "Thinking" block with how long it took, saved with the message, never sent back."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from app.core.wire import JsonObject
from app.ui.i18n import tr
from app.ui.widgets import selectable_by_keyboard

REASONING = "reasoning_content"  # the delta field a reasoning model's thinking arrives in


class Thought:
    """One answer's reasoning as it streams: its text, and how long the model thought (from
    its first reasoning to its first words of answer, or to the end)."""

    def __init__(self) -> None:
        self.text = ""
        self._started: float | None = None
        self._ended: float | None = None

    def take(self, field: str, text: str) -> str:
        """A streamed piece of the answer's `field`: reasoning is kept here; the answer's own
        text (which ends the thinking) is given back."""
        if field != REASONING:
            self.stop()
            return text
        if self._started is None:
            self._started = time.perf_counter()
        self.text += text
        return ""

    def stop(self) -> None:
        """The answer began (or ended): the thinking is over."""
        if self._started is not None and self._ended is None:
            self._ended = time.perf_counter()

    @property
    def seconds(self) -> float | None:
        """How long the model thought; None while it still does."""
        if self._started is None or self._ended is None:
            return None
        return self._ended - self._started

    def stats(self) -> JsonObject:
        """What is saved with the message (nothing for a model that did not think), once it
        ended."""
        self.stop()
        if not self.text:
            return {}
        seconds = self.seconds
        return {"reasoning": self.text, "thinking_s": round(seconds, 1) if seconds else None}


class ThinkingBlock(QWidget):
    """The reasoning above an answer: a toggle, "Thinking…" while it streams and "Thought for
    3.2 s" after, that expands to the text. Hidden for an answer without reasoning."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setProperty("tone", "muted")
        self.toggle.toggled.connect(self._expand)
        self.body = QLabel()
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        selectable_by_keyboard(self.body)
        # Never wider than the transcript: the text wraps instead.
        self.body.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.body.setObjectName("thought")  # a line at its left (app/ui/theme.py)
        self.body.setProperty("tone", "muted")
        self.body.hide()
        layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.body)
        self.hide()

    def show_thought(self, text: str, seconds: float | None, done: bool) -> None:
        """Show the reasoning so far; `done` once the answer began or ended (`seconds` is
        how long it took, when known)."""
        self.setVisible(bool(text))
        if not text:
            return
        if not done:
            label = tr("Thinking…")
        elif seconds is not None:
            label = tr("Thought for {seconds} s").format(seconds=f"{seconds:.1f}")
        else:
            label = tr("Thought")
        self.toggle.setText(label)
        self.toggle.setAccessibleName(label)
        if self.body.text() != text:
            self.body.setText(text)

    def follow(self, thought: Thought, done: bool) -> None:
        """Show a streaming answer's reasoning; `done` once its answer began or it ended."""
        self.show_thought(thought.text, thought.seconds, done)

    def show_saved(self, stats: JsonObject) -> None:
        """Show a saved answer's reasoning (kept in its stats)."""
        seconds = stats.get("thinking_s")
        seconds = float(seconds) if isinstance(seconds, int | float) else None
        self.show_thought(str(stats.get("reasoning") or ""), seconds, True)

    @property
    def expanded(self) -> bool:
        """Whether the reasoning's text is open."""
        return self.toggle.isChecked()

    def _expand(self, on: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(on)
