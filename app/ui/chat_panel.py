"""The Playground's chat: settings, the transcript, the input, and one streamed turn at a time.

It holds the open conversation and saves each message to it through the balancer; the
conversation list beside it (`playground_page.py`) opens conversations here.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.types import Lifecycle, MessageStatus, Role
from app.core.wire import ConversationDetail, JsonObject, JsonValue
from app.ui import attachments
from app.ui.asyncs import spawn
from app.ui.chat_widgets import ChatKeys, MessageWidget
from app.ui.client import ApiError, ChatStream
from app.ui.state import UiState

REPAINT_MS = 50  # streamed text is shown at most 20 times a second


class ChatPanel(QWidget):
    """Title, model, system prompt and parameters; the messages; the input and its buttons.

    `saved` is emitted when the conversation list changed (a conversation was created on the
    first message, or renamed)."""

    saved = Signal()

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.conversation_id: str | None = None
        self.history: list[JsonObject] = []  # what is sent back as context
        self.pending: list[attachments.Attachment] = []
        self.task: asyncio.Task[None] | None = None
        self.current: MessageWidget | None = None
        self.widgets: list[MessageWidget] = []
        layout = QVBoxLayout(self)
        layout.addLayout(self._settings())
        self.scroller = QScrollArea()
        self.scroller.setWidgetResizable(True)
        holder = QWidget()
        self.messages = QVBoxLayout(holder)
        self.messages.addStretch(1)
        self.scroller.setWidget(holder)
        layout.addWidget(self.scroller, 1)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: #b3261e;")
        layout.addWidget(self.notice)
        self.files = QLabel()
        layout.addWidget(self.files)
        layout.addLayout(self._input_row())
        state.hubChanged.connect(self.refresh_models)
        self._repaint = QTimer(self)
        self._repaint.setInterval(REPAINT_MS)
        self._repaint.timeout.connect(self._flush)
        self._streamed = ""

    # -- layout -----------------------------------------------------------------------
    def _settings(self) -> QFormLayout:
        top = QFormLayout()
        self.title = QLineEdit()
        self.title.setAccessibleName("conversation title")
        self.title.editingFinished.connect(self._rename)
        self.model = QComboBox()
        self.model.setAccessibleName("model")
        self.system = QPlainTextEdit()
        self.system.setAccessibleName("system prompt")
        self.system.setPlaceholderText("System prompt (optional)")
        self.system.setMaximumHeight(54)
        params = QHBoxLayout()
        self.temperature = _spin(QDoubleSpinBox(), 0, 2, 0.7, "temperature")
        self.top_p = _spin(QDoubleSpinBox(), 0, 1, 1.0, "top p")
        self.max_tokens = _spin(QSpinBox(), 1, 32768, 512, "max tokens")
        self.seed = QLineEdit()
        self.seed.setPlaceholderText("seed")
        self.seed.setAccessibleName("seed")
        self.stop_words = QLineEdit()
        self.stop_words.setPlaceholderText("stop (comma-separated)")
        self.stop_words.setAccessibleName("stop sequences")
        # Seed and stop words on a row of their own, each at least as wide as its placeholder:
        # on one row with the rest they shrank to "s…" in a narrow window.
        sampling = QHBoxLayout()
        for field in (self.seed, self.stop_words):
            width = field.fontMetrics().horizontalAdvance(field.placeholderText())
            field.setMinimumWidth(width + 16)  # the frame and text margins
        for label, w, row in (
            ("temp", self.temperature, params),
            ("top p", self.top_p, params),
            ("max", self.max_tokens, params),
            ("", self.seed, sampling),
            ("", self.stop_words, sampling),
        ):
            if label:
                row.addWidget(QLabel(label))
            row.addWidget(w)
        params.addStretch(1)
        sampling.setStretch(1, 1)
        top.addRow("Title", self.title)
        top.addRow("Model", self.model)
        top.addRow("System", self.system)
        top.addRow("Parameters", params)
        top.addRow("", sampling)
        return top

    def _input_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.input = QPlainTextEdit()
        self.input.setAccessibleName("message")
        self.input.setPlaceholderText("Message (Enter sends, Shift+Enter new line, Esc stops)")
        self.input.setMaximumHeight(90)
        self.keys = ChatKeys(self)
        self.keys.send.connect(self.send)
        self.keys.stop.connect(self.stop)
        self.input.installEventFilter(self.keys)
        self.attach_button = QPushButton("Attach…")
        self.attach_button.clicked.connect(self._pick_files)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send_or_stop)
        row.addWidget(self.input, 1)
        row.addWidget(self.attach_button)
        row.addWidget(self.send_button)
        return row

    # -- models and the open conversation ----------------------------------------------
    def refresh_models(self) -> None:
        """The picker lists ready models, with the nodes that will serve them."""
        chosen = self.model.currentData()
        self.model.blockSignals(True)
        self.model.clear()
        for m in self.state.models:
            if m.get("lifecycle_status") == Lifecycle.READY:
                nodes = len(m["ready_nodes"])
                self.model.addItem(f"{m['name'] or m['id']}  ({nodes} node(s))", m["id"])
        index = self.model.findData(chosen)
        self.model.setCurrentIndex(max(0, index))
        self.model.blockSignals(False)

    def _vision(self, model_id: str) -> bool:
        return any(m["id"] == model_id and "Vision" in m["capabilities"] for m in self.state.models)

    def show_conversation(self, conv: ConversationDetail) -> None:
        """Open a saved conversation: its settings and its messages."""
        self.stop()
        self.conversation_id = conv["id"]
        self.title.setText(conv["title"])
        self.system.setPlainText(conv["system_prompt"])
        index = self.model.findData(conv["model"])
        if index >= 0:
            self.model.setCurrentIndex(index)
        self._clear_messages()
        self.history = []
        for m in conv["messages"]:
            widget = self._add(str(m["role"]), m["content"])
            if m["status"] == MessageStatus.ERROR:
                widget.show_error(m["content"])
            else:
                self.history.append({"role": str(m["role"]), "content": m["content"]})
            if m["stats"]:
                widget.stats.setText(stats_text(m["stats"], str(m["status"])))

    def reset(self) -> None:
        """Start over in a fresh conversation (created when the first message is sent)."""
        self.stop()
        self.conversation_id = None
        self.history = []
        self.title.clear()
        self._clear_messages()

    def _rename(self) -> None:
        title = self.title.text().strip()
        if self.conversation_id and title:
            spawn(
                self.state.client.rename_conversation(self.conversation_id, title),
                on_error=self.say,
                on_done=lambda _r: self.saved.emit(),
            )

    # -- attachments --------------------------------------------------------------------
    def _pick_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Attach files")
        for path in paths:
            self.attach(Path(path))

    def attach(self, path: Path) -> bool:
        """Attach a file to the next message; say why not when it cannot be."""
        try:
            item = attachments.load(path, self._vision(str(self.model.currentData())))
        except attachments.AttachmentError as exc:
            self.say(str(exc))
            return False
        self.pending.append(item)
        self.files.setText("Attached: " + ", ".join(a.name for a in self.pending))
        return True

    # -- sending ------------------------------------------------------------------------
    def send_or_stop(self) -> None:
        """The button: Send, or Stop while an answer streams."""
        if self.task is not None and not self.task.done():
            self.stop()
        else:
            self.send()

    def send(self) -> None:
        """Send the input (and attachments) and stream the answer."""
        text = self.input.toPlainText().strip()
        model = self.model.currentData()
        if self.task is not None and not self.task.done():
            return
        if not text and not self.pending:
            return
        if not model:
            self.say("No model is ready yet: register one in the Model Hub.")
            return
        self.notice.clear()
        files, self.pending = self.pending, []
        self.files.clear()
        self.input.clear()
        content: JsonValue = text
        if files:
            content = [{"type": "text", "text": text}, *(f.part() for f in files)]
        self.task = spawn(self._turn(str(model), text, content, files), on_error=self.say)
        self.send_button.setText("Stop")

    def retry_last(self) -> None:
        """Ask again for the answer that failed."""
        if self.task is not None and not self.task.done():
            return
        model = str(self.model.currentData() or "")
        if model and self.history and self.history[-1]["role"] == Role.USER:
            self.task = spawn(self._answer(model), on_error=self.say)
            self.send_button.setText("Stop")

    def stop(self) -> None:
        """Stop the answer now (the request is cancelled; the node stops generating)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _turn(
        self, model: str, text: str, content: JsonValue, files: list[attachments.Attachment]
    ) -> None:
        client = self.state.client
        if self.conversation_id is None:
            conv = await client.create_conversation(
                (text or files[0].name)[:60], model, self.system.toPlainText(), self._params()
            )
            self.conversation_id = conv["id"]
            self.title.setText(conv["title"])
            self.saved.emit()
        saved = text + "".join(f"\n\n[{f.name}]\n{f.text}" for f in files if f.text)
        meta: list[JsonValue] = [{"name": f.name, "kind": f.kind, "size": f.size} for f in files]
        await client.add_message(self.conversation_id, Role.USER, saved, attachments=meta)
        self._add(str(Role.USER), text + "".join(f"\n\n📎 {f.name}" for f in files))
        self.history.append({"role": str(Role.USER), "content": content})
        await self._answer(model)

    async def _answer(self, model: str) -> None:
        widget = self._add(str(Role.ASSISTANT), "")
        widget.retry.connect(self.retry_last)
        self.current, self._streamed = widget, ""
        messages: list[JsonValue] = list[JsonValue](self.history)
        if self.system.toPlainText().strip():
            messages.insert(0, {"role": str(Role.SYSTEM), "content": self.system.toPlainText()})
        chat = ChatStream(
            self.state.client, {"model": model, "messages": messages, **self._params()}
        )
        started = time.perf_counter()
        first: float | None = None
        status = MessageStatus.DONE
        self._repaint.start()
        try:
            async for piece in chat.deltas():
                first = first or time.perf_counter()
                self._streamed += piece
        except asyncio.CancelledError:
            status = MessageStatus.STOPPED
        except ApiError as exc:
            status = MessageStatus.ERROR
            self._streamed = exc.message
        finally:
            self._repaint.stop()
            self.send_button.setText("Send")
        ended = time.perf_counter()
        tokens = chat.completion_tokens
        stats: JsonObject = {
            "tokens": tokens,
            "node": chat.node,
            "ttft_ms": round((first - started) * 1000) if first else None,
            "tokens_per_s": round(tokens / (ended - first), 1)
            if tokens and first and ended > first
            else None,
        }
        if status == MessageStatus.ERROR:
            widget.show_error(self._streamed)
        else:
            widget.set_text(self._streamed)
            self.history.append({"role": str(Role.ASSISTANT), "content": self._streamed})
        widget.stats.setText(stats_text(stats, str(status)))
        self.current = None
        if self.conversation_id is not None:
            await self.state.client.add_message(
                self.conversation_id, Role.ASSISTANT, self._streamed, status=status, stats=stats
            )

    def _flush(self) -> None:
        if self.current is not None and self.current.text != self._streamed:
            self.current.set_text(self._streamed)
            bar = self.scroller.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _params(self) -> JsonObject:
        params: JsonObject = {
            "temperature": self.temperature.value(),
            "top_p": self.top_p.value(),
            "max_tokens": self.max_tokens.value(),
        }
        if self.seed.text().strip().lstrip("-").isdigit():
            params["seed"] = int(self.seed.text().strip())
        stops: list[JsonValue] = [s for s in self.stop_words.text().split(",") if s.strip()]
        if stops:
            params["stop"] = stops[:4]
        return params

    def _add(self, role: str, text: str) -> MessageWidget:
        widget = MessageWidget(role, text)
        self.messages.insertWidget(self.messages.count() - 1, widget)
        self.widgets.append(widget)
        return widget

    def _clear_messages(self) -> None:
        for widget in self.widgets:
            self.messages.removeWidget(widget)
            widget.deleteLater()
        self.widgets = []

    def say(self, text: str) -> None:
        """Show why something failed, under the transcript."""
        self.notice.setText(text)


def stats_text(stats: JsonObject, status: str) -> str:
    """'stopped · 24 tokens · first token 80 ms · 41.2 tok/s · node n1' for a message."""
    parts = [] if status == MessageStatus.DONE else [status]
    if stats.get("tokens") is not None:
        parts.append(f"{stats['tokens']} tokens")
    if stats.get("ttft_ms") is not None:
        parts.append(f"first token {stats['ttft_ms']} ms")
    if stats.get("tokens_per_s"):
        parts.append(f"{stats['tokens_per_s']} tok/s")
    if stats.get("node"):
        parts.append(f"node {stats['node']}")
    return " · ".join(parts)


def _spin(spin: Any, lo: float, hi: float, value: float, name: str) -> Any:
    spin.setRange(lo, hi)
    if isinstance(spin, QDoubleSpinBox):
        spin.setSingleStep(0.05)
    spin.setValue(value)
    spin.setAccessibleName(name)
    return spin
